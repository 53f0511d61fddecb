package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/shm"
)

// The hub benchmark, as users run it: the producer in this process, the consumer in
// a second one (this binary re-executed with --consumer). Over the DataBlock:
// SyncedWrite / Pull against the bare DataBlock Writer/Reader measured the same way
// in the same run (copy in, copy out, Single_reader, 256 slots, no checksum,
// default waits). Over the peer link: Pipeline SendFunc / RecvFunc (the bulk-data
// API: no copy on either side), NULL and CURVE, 64 B,
// 4 KiB and 64 KiB, against libzmq PUSH/PULL through pyzmq in the same run.
//
// Every rate is taken by the consumer over the messages after the first tenth
// (connection set-up and the first credit round excluded alike for all paths).
func init() { register("hub", runHub) }

const hubMsg = 4096

func runHub(args []string) int {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short run (≤ 90 s)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the producer process to this file")
	consumer := fs.String("consumer", "", "internal: run as the consumer process (bare|shm|pipe|pipecopy)")
	socketOnly := fs.Bool("socket", false, "only the socket path rows (no DataBlock rows)")
	fs.IntVar(&benchSize, "size", 0, "only the socket path rows of this message size (0: 64, 4096 and 65536)")
	fs.StringVar(&benchSec, "sec", "", "only the socket path rows of this security (NULL or CURVE; empty: both)")
	fs.BoolVar(&benchCopying, "copying", false, "socket rows through Send/Recv (the copying API: a copy in, an owned slice out) instead of SendFunc/RecvFunc")
	fs.BoolVar(&benchNull, "null", false, "NULL security on the broker instead of CURVE (the default configuration)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *consumer != "" {
		if err := hubConsumer(*consumer, fs.Args(), *prof); err != nil {
			fmt.Fprintln(os.Stderr, "hub consumer:", err)
			return 1
		}
		return 0
	}
	stop, err := startCPUProfile(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		return 1
	}
	defer stop()
	if err := hubBench(*quick, *socketOnly); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		return 1
	}
	return 0
}

// benchSize and benchSec select socket path rows (--size, --sec);
// benchCopying measures them through Send/Recv (--copying).
var (
	benchSize    int
	benchSec     string
	benchCopying bool
)

// socketCase is one row of the socket path: message size and count per run.
type socketCase struct {
	label string
	size  int
	n     int
}

func hubBench(quick, socketOnly bool) error {
	nShm, runs, scale := 3_000_000, 5, 3
	if quick {
		nShm, runs, scale = 500_000, 3, 1
	}
	b, err := startBenchBroker("tcp://127.0.0.1:0")
	if err != nil {
		return err
	}
	defer b.Close()
	m, err := connectMessenger(b.Endpoint(), hub.MessengerConfig{})
	if err != nil {
		return err
	}
	defer m.Close()
	env := &hubEnv{m: m, endpoint: b.Endpoint(), key: b.PublicKey()}
	fmt.Printf("hub benchmark: producer and consumer in two processes; SHM: 4 KiB, median of %d interleaved runs of %d\n", runs, nShm)
	fmt.Printf("machine load before: %s\n", loadAvg())
	var rings, hubs []float64
	if socketOnly {
		runs = 0
		rings, hubs = []float64{math.NaN()}, []float64{math.NaN()}
	}
	for range runs {
		r, err := env.bareRing(nShm)
		if err != nil {
			return fmt.Errorf("bare ring: %w", err)
		}
		h, err := env.hubSHM(nShm)
		if err != nil {
			return fmt.Errorf("hub shm: %w", err)
		}
		rings, hubs = append(rings, r), append(hubs, h)
	}
	ring, hubShm := median(rings), median(hubs)
	fmt.Printf("%-44s %12s %10s\n", "path (4 KiB)", "msg/s", "GB/s")
	fmt.Printf("%-44s %12.0f %10.2f\n", "bare DataBlock Writer/Reader", ring, ring*hubMsg/1e9)
	fmt.Printf("%-44s %12.0f %10.2f\n", "hub over SHM (SyncedWrite/Pull)", hubShm, hubShm*hubMsg/1e9)
	ratio("hub SHM 4 KiB msg/s, hub/bare ring", hubShm/ring, atLeast, 0.9)

	zmqErr := pyzmqAvailable()
	if zmqErr != nil {
		fmt.Printf("\nlibzmq reference: NOT MEASURED (%v): no ratio to libzmq is printed\n", zmqErr)
	}
	cases := []socketCase{{"64 B", 64, 60_000 * scale}, {"4 KiB", 4096, 30_000 * scale}, {"64 KiB", 64 << 10, 3_000 * scale}}
	fmt.Printf("\nsocket path, one way over TCP loopback: hub Pipeline against libzmq %s PUSH/PULL (pyzmq), median of 3 interleaved runs\n", pyzmqVersion())
	if benchCopying {
		fmt.Println("  hub API: Producer.Send (copies the message in) and Consumer.Recv (an owned slice, copied out): the copying API (--copying);")
	} else {
		fmt.Println("  hub API: Producer.SendFunc (writes a sequence byte into the pooled send buffer, the rest is its previous content)")
		fmt.Println("  and Consumer.RecvFunc (reads the message in the buffer it arrived in, checks its length, no copy): the bulk-data API;")
	}
	fmt.Println("  libzmq: one prepared buffer sent and received without a copy at 64 KiB, copied below (pyzmq copy=True)")
	fmt.Printf("%-8s %-6s %14s %14s %8s %16s\n", "size", "sec", "hub msg/s", "libzmq msg/s", "hub/zmq", "hub CPU ns/msg")
	res := map[string]float64{}
	for _, c := range cases {
		for _, sec := range []string{"NULL", "CURVE"} {
			if (benchSize != 0 && c.size != benchSize) || (benchSec != "" && sec != benchSec) {
				continue
			}
			var hs, zs, cpus []float64
			for range 3 {
				h, cpu, err := env.hubPipeline(c, sec == "NULL")
				if err != nil {
					return fmt.Errorf("hub pipeline %s %s: %w", c.label, sec, err)
				}
				hs, cpus = append(hs, h), append(cpus, cpu)
				if zmqErr == nil {
					z, err := libzmqRate(c, sec == "CURVE")
					if err != nil {
						return fmt.Errorf("libzmq %s %s: %w", c.label, sec, err)
					}
					zs = append(zs, z)
				}
			}
			h, z := median(hs), math.NaN()
			if zmqErr == nil {
				z = median(zs)
			}
			res[c.label+"/"+sec+"/hub"], res[c.label+"/"+sec+"/zmq"] = h, z
			fmt.Printf("%-8s %-6s %14.0f %14.0f %8s %16.0f\n", c.label, sec, h, z, fmtRatio(h/z), median(cpus))
		}
	}
	fmt.Printf("machine load after: %s\n", loadAvg())
	for _, c := range cases {
		for _, sec := range []string{"NULL", "CURVE"} {
			ratio(fmt.Sprintf("hub Pipeline %s %s msg/s, hub/libzmq", c.label, sec), res[c.label+"/"+sec+"/hub"]/res[c.label+"/"+sec+"/zmq"], atLeast, 1.0)
		}
	}
	f := func(k string) string {
		if v := res[k]; !math.IsNaN(v) {
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		return "NaN"
	}
	fmt.Printf("RESULT hub_shm_4k_msgs=%.0f ring_4k_msgs=%.0f hub_zmq_4k_msgs=%s hub_zmq_null_4k_msgs=%s libzmq_curve_4k_msgs=%s libzmq_null_4k_msgs=%s "+
		"hub_zmq_64_msgs=%s hub_zmq_null_64_msgs=%s libzmq_curve_64_msgs=%s libzmq_null_64_msgs=%s "+
		"hub_zmq_64k_msgs=%s hub_zmq_null_64k_msgs=%s libzmq_curve_64k_msgs=%s libzmq_null_64k_msgs=%s\n",
		hubShm, ring, f("4 KiB/CURVE/hub"), f("4 KiB/NULL/hub"), f("4 KiB/CURVE/zmq"), f("4 KiB/NULL/zmq"),
		f("64 B/CURVE/hub"), f("64 B/NULL/hub"), f("64 B/CURVE/zmq"), f("64 B/NULL/zmq"),
		f("64 KiB/CURVE/hub"), f("64 KiB/NULL/hub"), f("64 KiB/CURVE/zmq"), f("64 KiB/NULL/zmq"))
	return nil
}

// startCPUProfile writes a CPU profile to path until stop ("" = none).
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func benchShmConfig() shm.Config {
	return shm.Config{PageSize: shm.Page4K, Capacity: 256, Policy: shm.PolicyRingBuffer, Sync: shm.SingleReader,
		Checksum: shm.ChecksumNone, Secret: 0x4B5B}
}

var hubBenchSeq int

func hubBenchName(label string) string {
	hubBenchSeq++
	return fmt.Sprintf("plh_bench_hub_%s_%d_%d", label, os.Getpid(), hubBenchSeq)
}

// hubEnv is the producer side: the broker and this process's Messenger.
type hubEnv struct {
	m        *hub.Messenger
	endpoint string
	key      string
}

// consumerProc is a running consumer process.
type consumerProc struct {
	cmd  *exec.Cmd
	out  *bufio.Reader
	done chan error // the consumer's END (nil) or its failure
	rate float64
	cpu  float64 // the consumer's CPU ns per message over the same window ("END … cpu"), NaN if not told
}

// startConsumer starts the consumer process and waits for its READY. Its END
// line (or its failure) arrives on done; stop the producer when it does.
func (e *hubEnv) startConsumer(mode, target string, n, size int) (*consumerProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"hub", "--consumer", mode}
	if p := os.Getenv("PLH_BENCH_CONSUMER_PROFILE"); p != "" {
		args = append(args, "--cpuprofile", p)
	}
	cmd := exec.Command(self, append(args, e.endpoint, target, strconv.Itoa(n), strconv.Itoa(size))...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), benchKeyEnv+"="+e.key)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &consumerProc{cmd: cmd, out: bufio.NewReader(stdout), done: make(chan error, 1)}
	if _, err := expectLine(c.out, "READY"); err != nil {
		c.kill()
		return nil, fmt.Errorf("consumer process: %w", err)
	}
	go func() {
		f, err := expectLine(c.out, "END")
		if err == nil {
			c.rate, err = windowRate(f)
			c.cpu = windowCPU(f)
		}
		c.done <- err
	}()
	return c, nil
}

// windowRate parses "END k tk tn n [cpu]": (n − k) messages from tk to tn ns.
func windowRate(f []string) (float64, error) {
	if len(f) != 5 && len(f) != 6 {
		return 0, fmt.Errorf("consumer said %q, want END k tk tn n", f)
	}
	var v [4]float64
	for i := range v {
		x, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return 0, fmt.Errorf("consumer said %q: %w", f, err)
		}
		v[i] = x
	}
	if v[2] <= v[1] || v[3] <= v[0] {
		return 0, fmt.Errorf("consumer said %q: empty window", f)
	}
	return (v[3] - v[0]) / ((v[2] - v[1]) / 1e9), nil
}

// windowCPU parses the CPU ns per message of "END k tk tn n cpu" (NaN without it).
func windowCPU(f []string) float64 {
	if len(f) != 6 {
		return math.NaN()
	}
	v, err := strconv.ParseFloat(f[5], 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

func (c *consumerProc) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

// run feeds the consumer with produce (which must stop when ctx ends) and returns
// the consumer's rate; a failure on either side ends both at once.
func (c *consumerProc) run(produce func(ctx context.Context) error) (float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	perr := make(chan error, 1)
	go func() { perr <- produce(ctx) }()
	var err error
	select {
	case err = <-c.done:
		cancel()
		if err != nil {
			err = fmt.Errorf("consumer process: %w", err)
		} else if perr := <-perr; perr != nil && !errors.Is(perr, context.Canceled) {
			err = fmt.Errorf("producer: %w", perr)
		}
	case err = <-perr:
		if err == nil { // all sent: wait for the consumer, boundedly
			select {
			case err = <-c.done:
			case <-time.After(30 * time.Second):
				err = errors.New("consumer process did not finish within 30 s of the last message")
			}
		} else {
			err = fmt.Errorf("producer: %w", err)
		}
	}
	if err != nil {
		c.kill()
		return 0, err
	}
	if werr := c.cmd.Wait(); werr != nil {
		return 0, fmt.Errorf("consumer process: %w", werr)
	}
	return c.rate, nil
}

// bareRing: shm.Writer.Write here, Reader.AcquireRead + copy out in the consumer.
func (e *hubEnv) bareRing(n int) (float64, error) {
	name := hubBenchName("ring")
	blk, err := shm.Create(name, benchShmConfig())
	if err != nil {
		return 0, err
	}
	defer blk.Close()
	w, err := blk.NewWriter(shm.WaitOptions{})
	if err != nil {
		return 0, err
	}
	c, err := e.startConsumer("bare", name, n, hubMsg)
	if err != nil {
		return 0, err
	}
	return c.run(func(ctx context.Context) error {
		msg := make([]byte, hubMsg)
		for i := range n {
			msg[0] = byte(i)
			if _, err := w.Write(ctx, 5*time.Second, msg); err != nil {
				return err
			}
		}
		return nil
	})
}

// hubSHM: Producer.SyncedWrite (copy in) here, Consumer.Pull (copy out) in the
// consumer.
func (e *hubEnv) hubSHM(n int) (float64, error) {
	cfg := benchShmConfig()
	p, err := hub.NewProducer(context.Background(), e.m, hub.ProducerOptions{Channel: hubBenchName("shm"), SHM: &cfg})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	c, err := e.startConsumer("shm", p.Channel(), n, hubMsg)
	if err != nil {
		return 0, err
	}
	return c.run(func(ctx context.Context) error {
		msg := make([]byte, hubMsg)
		write := func(tx *hub.WriteTxn) error {
			s, err := tx.Next()
			if err != nil {
				return err
			}
			copy(s.Bytes(), msg)
			return nil
		}
		for i := range n {
			msg[0] = byte(i)
			if err := p.SyncedWrite(ctx, 5*time.Second, write); err != nil {
				return err
			}
		}
		return nil
	})
}

// hubPipeline: Producer.SendFunc on a Pipeline channel here, Consumer.RecvFunc
// in the consumer, over TCP loopback. It returns the consumer's rate and the CPU ns per
// message of both processes (this one's over the whole send loop, the
// consumer's over its measured window).
func (e *hubEnv) hubPipeline(c socketCase, null bool) (rate, cpu float64, err error) {
	p, err := hub.NewProducer(context.Background(), e.m, hub.ProducerOptions{Channel: hubBenchName("zmq"), Pattern: hub.PatternPipeline, NoCurve: null})
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	mode := "pipe"
	if benchCopying {
		mode = "pipecopy"
	}
	cp, err := e.startConsumer(mode, p.Channel(), c.n, c.size)
	if err != nil {
		return 0, 0, err
	}
	var sent int
	c0 := processCPU()
	rate, err = cp.run(func(ctx context.Context) error {
		var seq byte
		fill := func(b []byte) error { b[0] = seq; return nil }
		msg := make([]byte, c.size)
		for i := range c.n {
			seq = byte(i)
			var err error
			if benchCopying {
				msg[0] = seq
				err = p.Send(ctx, msg)
			} else {
				err = p.SendFunc(ctx, c.size, fill)
			}
			if err != nil {
				return err
			}
			sent++
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return rate, float64(processCPU()-c0)/float64(max(sent, 1)) + cp.cpu, nil
}
