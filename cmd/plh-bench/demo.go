package main

// plh-bench demo: a real multi-process DataBlock demonstration. This process
// orchestrates; it re-executes itself as one producer and two consumers
// (demo --role ...). The producer creates a Sync_reader ring with BLAKE2b-checked
// typed slots, waits for both consumers, and streams frames for a few seconds; each
// consumer verifies every frame (order, payload, checksum) and reports.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/pylabhub/plh/shm"
)

func init() { register("demo", runDemo) }

const demoSecret = 0xD3E0

// demoFrame is one 4 KiB slot: a sequence number and a payload derived from it.
type demoFrame struct {
	Seq     uint64     `blds:"seq"`
	SentNs  int64      `blds:"sent_ns"`
	Payload [4080]byte `blds:"payload"`
}

// demoMeta is the flex zone: who produces, and how many frames in total.
type demoMeta struct {
	ProducerPid uint64 `blds:"producer_pid"`
	Total       uint64 `blds:"total"`
}

func (f *demoFrame) fill(seq uint64) {
	f.Seq = seq
	for i := 0; i < len(f.Payload); i += 8 {
		f.Payload[i] = byte(seq + uint64(i))
	}
}

func (f *demoFrame) ok() bool {
	for i := 0; i < len(f.Payload); i += 8 {
		if f.Payload[i] != byte(f.Seq+uint64(i)) {
			return false
		}
	}
	return true
}

func runDemo(args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	role := fs.String("role", "", "internal: producer|consumer")
	name := fs.String("name", "", "internal: segment name")
	total := fs.Uint64("frames", 20_000, "frames to stream")
	fs.Bool("quick", false, "accepted for symmetry with the benchmarks")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	switch *role {
	case "":
		err = demoOrchestrate(*total)
	case "producer":
		err = demoProducer(*name, *total)
	case "consumer":
		err = demoConsumer(*name)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	return 0
}

type demoProc struct {
	label string
	cmd   *exec.Cmd
	out   *bufio.Scanner
}

func startDemo(label string, args ...string) (*demoProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"demo"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &demoProc{label, cmd, bufio.NewScanner(out)}, nil
}

// line returns the next line the process prints (its report lines start with a word).
func (p *demoProc) line() (string, error) {
	if !p.out.Scan() {
		return "", fmt.Errorf("%s ended early", p.label)
	}
	return p.out.Text(), nil
}

func demoOrchestrate(total uint64) error {
	name := fmt.Sprintf("plh_demo_%d", os.Getpid())
	fmt.Printf("plh DataBlock demo: 1 producer process, 2 consumer processes, segment /dev/shm/%s\n", name)
	start := time.Now()
	prod, err := startDemo("producer", "--role", "producer", "--name", name, "--frames", strconv.FormatUint(total, 10))
	if err != nil {
		return err
	}
	defer prod.cmd.Wait()
	l, err := prod.line()
	if err != nil {
		return err
	}
	fmt.Println("  producer:", l)
	var cons []*demoProc
	for i := range 2 {
		c, err := startDemo(fmt.Sprintf("consumer %d", i+1), "--role", "consumer", "--name", name)
		if err != nil {
			return err
		}
		defer c.cmd.Wait()
		cons = append(cons, c)
	}
	for _, c := range cons {
		l, err := c.line()
		if err != nil {
			return err
		}
		fmt.Printf("  %s: %s\n", c.label, l)
	}
	failed := false
	for _, p := range append([]*demoProc{prod}, cons...) {
		for {
			l, err := p.line()
			if err != nil {
				break
			}
			fmt.Printf("  %s: %s\n", p.label, l)
			if strings.HasPrefix(l, "FAILED") {
				failed = true
			}
		}
		if err := p.cmd.Wait(); err != nil {
			failed = true
			fmt.Printf("  %s: exit %v\n", p.label, err)
		}
	}
	if _, err := os.Stat(shm.SegmentPath(name)); err == nil {
		failed = true
		fmt.Println("  segment left behind in /dev/shm")
	}
	fmt.Printf("demo finished in %.2f s: ", time.Since(start).Seconds())
	if failed {
		fmt.Println("FAILED")
		return errors.New("demo failed")
	}
	fmt.Println("every frame reached both consumers in order, verified (BLAKE2b + payload); segment removed")
	return nil
}

func demoProducer(name string, total uint64) error {
	blk, err := shm.CreateTyped[demoMeta, demoFrame](name, shm.Config{Secret: demoSecret, PageSize: shm.Page4K, Capacity: 64,
		Policy: shm.PolicyRingBuffer, Sync: shm.SyncReader, FlexSize: 4096, ProducerName: "demo-producer"})
	if err != nil {
		return err
	}
	defer blk.Close()
	w, err := shm.NewTypedWriter[demoMeta, demoFrame](blk, shm.WaitOptions{})
	if err != nil {
		return err
	}
	w.UpdateFlex(func(m *demoMeta) error { m.ProducerPid, m.Total = uint64(os.Getpid()), total; return nil })
	fmt.Printf("created %d-slot Sync_reader ring of 4 KiB slots (%d KiB), waiting for 2 consumers\n", blk.Capacity(), blk.Size()/1024)
	for deadline := time.Now().Add(20 * time.Second); blk.Metrics().ActiveConsumers < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("consumers did not attach within 20 s")
		}
	}
	start := time.Now()
	for seq := range total {
		if _, err := w.Write(context.Background(), 5*time.Second, func(_ *demoMeta, f *demoFrame) error {
			f.fill(seq)
			f.SentNs = time.Now().UnixNano()
			return nil
		}); err != nil {
			return fmt.Errorf("write %d: %w", seq, err)
		}
	}
	el := time.Since(start)
	fmt.Printf("wrote %d frames in %.2f s: %.0f frames/s, %.0f MB/s (backpressure from the slower consumer)\n",
		total, el.Seconds(), float64(total)/el.Seconds(), float64(total)*4096/el.Seconds()/1e6)
	// Stay until both consumers have read everything (they detach when done).
	for deadline := time.Now().Add(30 * time.Second); blk.Metrics().ActiveConsumers > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("consumers did not finish within 30 s")
		}
	}
	m := blk.Metrics()
	fmt.Printf("ring metrics: written %d, read %d, checksum failures %d, writer timeouts %d\n", m.TotalSlotsWritten, m.TotalSlotsRead, m.ChecksumFailures, m.WriterTimeoutCount)
	return nil
}

func demoConsumer(name string) error {
	blk, err := shm.AttachTyped[demoMeta, demoFrame](name, demoSecret, nil)
	if err != nil {
		return err
	}
	defer blk.Close()
	r, err := shm.NewTypedReader[demoMeta, demoFrame](blk, shm.ReaderOptions{UID: fmt.Sprint("demo-", os.Getpid()), Name: "demo-consumer"})
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Printf("attached (pid %d, heartbeat entry %d)\n", os.Getpid(), r.Reader().Entry())
	var next, total, bad uint64
	var latSum int64
	start := time.Now()
	for total == 0 || next < total {
		_, err := r.Read(context.Background(), 10*time.Second, func(m *demoMeta, f *demoFrame) error {
			total = m.Total
			if f.Seq != next || !f.ok() {
				bad++
			}
			latSum += time.Now().UnixNano() - f.SentNs
			next = f.Seq + 1
			return nil
		})
		if err != nil {
			fmt.Printf("FAILED after %d frames: %v\n", next, err)
			return err
		}
	}
	el := time.Since(start)
	if bad > 0 {
		fmt.Printf("FAILED: %d frames out of order or corrupt\n", bad)
		return errors.New("bad frames")
	}
	fmt.Printf("received %d frames in order, all verified, %.0f frames/s, mean age at read %.1f µs\n",
		next, float64(next)/el.Seconds(), float64(latSum)/float64(next)/1e3)
	return nil
}
