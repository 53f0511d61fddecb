package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/shm"
)

// The hub benchmark: end-to-end 4 KiB throughput producer → consumer through the
// hub API over the DataBlock (SyncedWrite / Pull) and over the peer link
// (Pipeline Send / Recv), against the bare DataBlock Writer/Reader measured the
// same way in the same run (two goroutines of one process, copy in and copy out,
// Single_reader, 256 slots, no checksum, default waits).
func init() { register("hub", runHub) }

const hubMsg = 4096

func runHub(args []string) int {
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "short run (≤ 40 s)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the SHM runs to this file")
	fs.BoolVar(&benchNull, "null", false, "NULL security on the broker and Pipeline links instead of CURVE (the default configuration)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	stop, err := startCPUProfile(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		return 1
	}
	defer stop()
	if err := hubBench(*quick); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		return 1
	}
	return 0
}

func hubBench(quick bool) error {
	// Each SHM run lasts ~0.5-2 s (100k messages took 40-150 ms: scheduler noise
	// dominated); runs alternate ring/hub so load drift hits both alike.
	nShm, nZmq, runs := 3_000_000, 100_000, 5
	if quick {
		nShm, nZmq = 1_000_000, 30_000
	}
	cc, err := benchCurve()
	if err != nil {
		return err
	}
	b, err := broker.Start(context.Background(), broker.Config{Endpoint: "tcp://127.0.0.1:0", Curve: cc})
	if err != nil {
		return err
	}
	defer b.Close()
	m, err := hub.NewMessenger(hub.MessengerConfig{})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Connect(context.Background(), b.Endpoint(), b.PublicKey()); err != nil {
		return err
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("hub benchmark: 4 KiB messages producer → consumer, two goroutines of one process; SHM: median of %d runs of %d\n", runs, nShm)
	fmt.Printf("machine load before: %s\n", strings.TrimSpace(string(load)))
	var rings, hubs []float64
	for range runs {
		r, err := bareRing(nShm)
		if err != nil {
			return fmt.Errorf("bare ring: %w", err)
		}
		h, err := hubSHM(m, nShm)
		if err != nil {
			return fmt.Errorf("hub shm: %w", err)
		}
		rings, hubs = append(rings, r), append(hubs, h)
	}
	sort.Float64s(rings)
	sort.Float64s(hubs)
	ring, hubShm := rings[runs/2], hubs[runs/2]
	hubZmq, err := median3Hub(func() (float64, error) { return hubPipeline(m, nZmq) })
	if err != nil {
		return fmt.Errorf("hub pipeline: %w", err)
	}
	rows := []benchRow{{"bare DataBlock Writer/Reader", ring}, {"hub over SHM (SyncedWrite/Pull)", hubShm},
		{"hub Pipeline socket (Send/Recv), " + securityName(), hubZmq}}
	if !benchNull { // the same over NULL, for comparison
		benchNull = true
		v, err := median3Hub(func() (float64, error) { return hubPipeline(m, nZmq) })
		benchNull = false
		if err != nil {
			return fmt.Errorf("hub pipeline over NULL: %w", err)
		}
		rows = append(rows, benchRow{"hub Pipeline socket, NULL", v})
	}
	fmt.Printf("%-40s %12s %10s\n", "path", "msg/s", "GB/s")
	for _, r := range rows {
		fmt.Printf("%-40s %12.0f %10.2f\n", r.name, r.v, r.v*hubMsg/1e9)
	}
	fmt.Printf("ratio hub SHM / bare ring: %.2f (target ≥ 0.8)\n", hubShm/ring)
	fmt.Printf("RESULT hub_shm_4k_msgs=%.0f ring_4k_msgs=%.0f hub_zmq_4k_msgs=%.0f\n", hubShm, ring, hubZmq)
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

func median3Hub(f func() (float64, error)) (float64, error) {
	var rs []float64
	for range 3 {
		r, err := f()
		if err != nil {
			return 0, err
		}
		rs = append(rs, r)
	}
	sort.Float64s(rs)
	return rs[1], nil
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

// bareRing: shm.Writer.Write in one goroutine, Reader.AcquireRead + copy out in
// another.
func bareRing(n int) (float64, error) {
	name := hubBenchName("ring")
	blk, err := shm.Create(name, benchShmConfig())
	if err != nil {
		return 0, err
	}
	defer blk.Close()
	att, err := shm.Attach(name, 0x4B5B, nil)
	if err != nil {
		return 0, err
	}
	defer att.Close()
	w, err := blk.NewWriter(shm.WaitOptions{})
	if err != nil {
		return 0, err
	}
	r, err := att.NewReader(shm.ReaderOptions{})
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		msg := make([]byte, hubMsg)
		for i := range n {
			msg[0] = byte(i)
			if _, err := w.Write(ctx, 5*time.Second, msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	out := make([]byte, hubMsg)
	for range n {
		s, err := r.AcquireRead(ctx, 5*time.Second)
		if err != nil {
			return 0, err
		}
		copy(out, s.Bytes()[:hubMsg])
		if err := s.Release(); err != nil {
			return 0, err
		}
	}
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// hubSHM: Producer.SyncedWrite (copy in) vs Consumer.Pull (copy out).
func hubSHM(m *hub.Messenger, n int) (float64, error) {
	cfg := benchShmConfig()
	p, err := hub.NewProducer(context.Background(), m, hub.ProducerOptions{Channel: hubBenchName("shm"), SHM: &cfg})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	c, err := hub.Connect(context.Background(), m, hub.ConsumerOptions{Channel: p.Channel(), Secret: cfg.Secret})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if !c.HasSHM() {
		return 0, fmt.Errorf("consumer not attached: %w", c.SHMError())
	}
	ctx := context.Background()
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
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
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	out := make([]byte, hubMsg)
	read := func(tx *hub.ReadTxn) error {
		s, err := tx.Next()
		if err != nil {
			return err
		}
		copy(out, s.Bytes()[:hubMsg])
		return nil
	}
	for range n {
		if err := c.Pull(ctx, 5*time.Second, read); err != nil {
			return 0, err
		}
	}
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// hubPipeline: Producer.Send on a Pipeline channel vs Consumer.Recv over TCP
// loopback.
func hubPipeline(m *hub.Messenger, n int) (float64, error) {
	p, err := hub.NewProducer(context.Background(), m, hub.ProducerOptions{Channel: hubBenchName("zmq"), Pattern: hub.PatternPipeline, NoCurve: benchNull})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	c, err := hub.Connect(context.Background(), m, hub.ConsumerOptions{Channel: p.Channel()})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx := context.Background()
	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		msg := make([]byte, hubMsg)
		for i := range n {
			msg[0] = byte(i)
			if err := p.Send(ctx, msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	out := make([]byte, hubMsg)
	for range n {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		b, err := c.Recv(rctx)
		cancel()
		if err != nil {
			return 0, err
		}
		if len(b) != hubMsg {
			return 0, errors.New("short message")
		}
		copy(out, b)
	}
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
