package main

// plh-bench ring: DataBlock vs a Unix stream socket vs in-process copy, with the
// producer and the consumer in two processes (this binary re-executes itself as the
// peer with --peer). Waits spin (no futex sleep) on both sides.

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
)

func init() { register("ring", runRing) }

// spin makes waits busy-poll (latency runs): the measurement is of the transport,
// not of futex wake-up latency. Throughput runs use the default waits (spin 50 µs,
// then sleep on the futex), which behave far better when the two cores are shared.
var spin = shm.WaitOptions{Spin: time.Hour}

const ringSecret = 0x5EC2E7

func runRing(args []string) int {
	fs := flag.NewFlagSet("ring", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short run (≤ 40 s)")
	peer := fs.String("peer", "", "internal: run as the peer process")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *peer != "" {
		if err := runPeer(*peer, fs.Args()); err != nil {
			fmt.Fprintln(os.Stderr, "ring peer:", err)
			return 1
		}
		return 0
	}
	if err := ringBench(*quick); err != nil {
		fmt.Fprintln(os.Stderr, "ring:", err)
		return 1
	}
	return 0
}

type sizeCase struct {
	label string
	size  int
	n     int // messages per throughput run
}

func ringBench(quick bool) error {
	scale := 4
	if quick {
		scale = 1
	}
	cases := []sizeCase{{"64 B", 64, 400_000 * scale}, {"4 KiB", 4096, 150_000 * scale}, {"1 MiB", 1 << 20, 3000 * scale}}
	latN := 20_000 * scale
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("ring benchmark: DataBlock (Single_reader, 256 slots (4 for 1 MiB), no checksum; default waits for throughput, spinning waits for latency) vs Unix stream socket vs in-process copy; throughput = median of 3 runs, in-process copy = best of 5\n")
	fmt.Printf("machine load before: %s\n", strings.TrimSpace(string(load)))
	fmt.Printf("shm: producer copies in; consumer copies out, or zero-copy (zc) reads in place touching every cache line\n")
	fmt.Printf("%-8s %14s %14s %14s %14s %10s %10s %10s %10s\n", "size", "shm msg/s", "shm zc msg/s", "uds msg/s", "copy msg/s", "shm GB/s", "zc GB/s", "uds GB/s", "copy GB/s")
	res := map[string]float64{}
	for _, c := range cases {
		shmRate, err := median3(func() (float64, error) { return shmThroughput(c, "shm-consume") })
		if err != nil {
			return fmt.Errorf("shm %s: %w", c.label, err)
		}
		zcRate, err := median3(func() (float64, error) { return shmThroughput(c, "shm-touch") })
		if err != nil {
			return fmt.Errorf("shm zero-copy %s: %w", c.label, err)
		}
		udsN := c.n
		if c.size == 64 {
			udsN = c.n / 4 // the socket is slower; keep the run short
		}
		udsRate, err := median3(func() (float64, error) { return udsThroughput(sizeCase{c.label, c.size, udsN}) })
		if err != nil {
			return fmt.Errorf("uds %s: %w", c.label, err)
		}
		// The machine's copy capability: best of 5 (conservative: a larger reference).
		copyRate := 0.0
		for range 5 {
			copyRate = max(copyRate, memcpyRate(c.size))
		}
		gb := func(r float64) float64 { return r * float64(c.size) / 1e9 }
		fmt.Printf("%-8s %14.0f %14.0f %14.0f %14.0f %10.2f %10.2f %10.2f %10.2f\n", c.label, shmRate, zcRate, udsRate, copyRate,
			gb(shmRate), gb(zcRate), gb(udsRate), gb(copyRate))
		res[c.label+"/shm"], res[c.label+"/uds"], res[c.label+"/copy"] = shmRate, udsRate, copyRate
		res[c.label+"/shmgb"], res[c.label+"/zcgb"], res[c.label+"/copygb"] = gb(shmRate), gb(zcRate), gb(copyRate)
	}
	shmLat, err := shmLatency(latN)
	if err != nil {
		return fmt.Errorf("shm latency: %w", err)
	}
	udsLat, err := udsLatency(latN / 2)
	if err != nil {
		return fmt.Errorf("uds latency: %w", err)
	}
	fmt.Printf("\n64 B one-way latency (ping-pong / 2, %d round trips)\n", latN)
	fmt.Printf("%-10s %10s %10s %10s\n", "transport", "p50 ns", "p99 ns", "p99.9 ns")
	for _, l := range []struct {
		name string
		q    [3]int64
	}{{"DataBlock", shmLat}, {"UDS", udsLat}} {
		fmt.Printf("%-10s %10d %10d %10d\n", l.name, l.q[0], l.q[1], l.q[2])
	}
	load, _ = os.ReadFile("/proc/loadavg")
	fmt.Printf("machine load after: %s\n", strings.TrimSpace(string(load)))
	fmt.Printf("ratios: latency uds/shm %.1fx (target ≥ 8), 4 KiB shm/uds %.1fx (target ≥ 3), 1 MiB zero-copy shm/copy %.2f, copy-out shm/copy %.2f (target ≥ 0.5)\n",
		float64(udsLat[0])/float64(shmLat[0]), res["4 KiB/shm"]/res["4 KiB/uds"], res["1 MiB/zcgb"]/res["1 MiB/copygb"], res["1 MiB/shmgb"]/res["1 MiB/copygb"])
	fmt.Printf("(in RESULT, tput4k is the copy-out consumer and tput1m the zero-copy consumer)\n")
	fmt.Printf("RESULT lat64_p50_ns=%d uds_lat64_p50_ns=%d tput4k_msgs=%.0f uds_tput4k_msgs=%.0f tput1m_gbs=%.2f memcpy1m_gbs=%.2f\n",
		shmLat[0], udsLat[0], res["4 KiB/shm"], res["4 KiB/uds"], res["1 MiB/zcgb"], res["1 MiB/copygb"])
	return nil
}

// median3 runs a measurement three times and returns the median: the machine is
// shared, so single runs swing widely.
func median3(f func() (float64, error)) (float64, error) {
	var v [3]float64
	for i := range v {
		r, err := f()
		if err != nil {
			return 0, err
		}
		v[i] = r
	}
	slices.Sort(v[:])
	return v[1], nil
}

// startPeer re-executes this binary as the peer and returns its stdout reader.
func startPeer(role string, args ...string) (*exec.Cmd, *bufio.Reader, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self, append([]string{"ring", "--peer", role}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, bufio.NewReader(out), nil
}

// expectLine reads the peer's next line and checks its first word.
func expectLine(r *bufio.Reader, word string) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != word {
		return nil, fmt.Errorf("peer said %q, want %s", line, word)
	}
	return f, nil
}

func benchName(tag string) string {
	return fmt.Sprintf("plh_bench_%s_%d_%d", tag, os.Getpid(), time.Now().UnixNano()%1e6)
}

func benchBlock(name string, size, capacity int) (*shm.Block, error) {
	stride := max(4096, (size+4095)/4096*4096)
	return shm.Create(name, shm.Config{Secret: ringSecret, PageSize: shm.Page4K, SlotSize: uint32(stride), Capacity: uint32(capacity),
		Policy: shm.PolicyRingBuffer, Sync: shm.SingleReader, Checksum: shm.ChecksumNone})
}

// shmThroughput: we write n messages of size bytes (copy in), the peer reads them
// (copy out); rate = n / (peer's end − our start), both CLOCK_MONOTONIC.
func shmThroughput(c sizeCase, role string) (float64, error) {
	name := benchName("tput")
	blk, err := benchBlock(name, c.size, ringCap(c.size))
	if err != nil {
		return 0, err
	}
	defer blk.Close()
	w, err := blk.NewWriter(shm.WaitOptions{})
	if err != nil {
		return 0, err
	}
	cmd, out, err := startPeer(role, name, strconv.Itoa(c.n), strconv.Itoa(c.size))
	if err != nil {
		return 0, err
	}
	defer cmd.Wait()
	if _, err := expectLine(out, "READY"); err != nil {
		return 0, err
	}
	src := make([]byte, c.size)
	ctx := context.Background()
	start := proc.Now()
	for i := range c.n {
		s, err := w.AcquireWrite(ctx, -1)
		if err != nil {
			return 0, err
		}
		src[0] = byte(i)
		copy(s.Bytes(), src)
		s.Commit(c.size)
		s.Release()
	}
	f, err := expectLine(out, "END")
	if err != nil {
		return 0, err
	}
	end, _ := strconv.ParseInt(f[1], 10, 64)
	return float64(c.n) / (float64(end-start) / 1e9), nil
}

func udsThroughput(c sizeCase) (float64, error) {
	dir, err := os.MkdirTemp("", "plh-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	cmd, out, err := startPeer("uds-consume", path, strconv.Itoa(c.n), strconv.Itoa(c.size))
	if err != nil {
		return 0, err
	}
	defer cmd.Wait()
	conn, err := ln.Accept()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := expectLine(out, "READY"); err != nil {
		return 0, err
	}
	src := make([]byte, c.size)
	start := proc.Now()
	for range c.n {
		if _, err := conn.Write(src); err != nil {
			return 0, err
		}
	}
	f, err := expectLine(out, "END")
	if err != nil {
		return 0, err
	}
	end, _ := strconv.ParseInt(f[1], 10, 64)
	return float64(c.n) / (float64(end-start) / 1e9), nil
}

// memcpyRate is in-process copy of size bytes between two cache-resident buffers.
func memcpyRate(size int) float64 {
	src, dst := make([]byte, size), make([]byte, size)
	n := max(2000, (256<<20)/size)
	start := time.Now()
	for range n {
		copy(dst, src)
	}
	return float64(n) / time.Since(start).Seconds()
}

func quantiles(rtt []int64) [3]int64 {
	slices.Sort(rtt)
	q := func(p float64) int64 { return rtt[min(len(rtt)-1, int(p*float64(len(rtt))))] / 2 }
	return [3]int64{q(0.50), q(0.99), q(0.999)}
}

// shmLatency: ping through one block, pong back through another.
func shmLatency(n int) ([3]int64, error) {
	pingName, pongName := benchName("ping"), benchName("pong")
	ping, err := benchBlock(pingName, 64, 8)
	if err != nil {
		return [3]int64{}, err
	}
	defer ping.Close()
	pong, err := benchBlock(pongName, 64, 8)
	if err != nil {
		return [3]int64{}, err
	}
	defer pong.Close()
	w, err := ping.NewWriter(spin)
	if err != nil {
		return [3]int64{}, err
	}
	r, err := pong.NewReader(shm.ReaderOptions{Name: "bench", Wait: spin})
	if err != nil {
		return [3]int64{}, err
	}
	warm := 2000
	cmd, out, err := startPeer("shm-pong", pingName, pongName, strconv.Itoa(n+warm))
	if err != nil {
		return [3]int64{}, err
	}
	defer cmd.Wait()
	if _, err := expectLine(out, "READY"); err != nil {
		return [3]int64{}, err
	}
	ctx := context.Background()
	msg := make([]byte, 64)
	rtt := make([]int64, 0, n)
	for i := range n + warm {
		t0 := time.Now()
		s, err := w.AcquireWrite(ctx, -1)
		if err != nil {
			return [3]int64{}, err
		}
		copy(s.Bytes(), msg)
		s.Commit(64)
		s.Release()
		rs, err := r.AcquireRead(ctx, -1)
		if err != nil {
			return [3]int64{}, err
		}
		copy(msg, rs.Bytes()[:64])
		rs.Release()
		if i >= warm {
			rtt = append(rtt, int64(time.Since(t0)))
		}
	}
	return quantiles(rtt), nil
}

func udsLatency(n int) ([3]int64, error) {
	dir, err := os.MkdirTemp("", "plh-bench-")
	if err != nil {
		return [3]int64{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		return [3]int64{}, err
	}
	defer ln.Close()
	warm := 1000
	cmd, out, err := startPeer("uds-pong", path, strconv.Itoa(n+warm))
	if err != nil {
		return [3]int64{}, err
	}
	defer cmd.Wait()
	conn, err := ln.Accept()
	if err != nil {
		return [3]int64{}, err
	}
	defer conn.Close()
	if _, err := expectLine(out, "READY"); err != nil {
		return [3]int64{}, err
	}
	msg := make([]byte, 64)
	rtt := make([]int64, 0, n)
	for i := range n + warm {
		t0 := time.Now()
		if _, err := conn.Write(msg); err != nil {
			return [3]int64{}, err
		}
		if _, err := io.ReadFull(conn, msg); err != nil {
			return [3]int64{}, err
		}
		if i >= warm {
			rtt = append(rtt, int64(time.Since(t0)))
		}
	}
	return quantiles(rtt), nil
}

// ringCap is the slot count of a throughput run: 256 slots for small messages (a
// 1 MiB ring, about what a Unix socket buffers, so each process hand-over on a busy
// machine moves many messages), 4 for 1 MiB messages (a 4 MiB ring stays in the
// last-level cache, as a ring of big frames would be sized).
func ringCap(size int) int {
	if v, _ := strconv.Atoi(os.Getenv("PLH_BENCH_CAP")); v > 0 {
		return v
	}
	if size >= 1<<20 {
		return 4
	}
	return 256
}
