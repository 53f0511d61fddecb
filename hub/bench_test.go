package hub

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSocketData measures the socket data path one way through the hub
// API (Producer.Send → Consumer.Recv over loopback TCP), per pattern, security
// and message size: what a consumer that cannot map the ring gets.
func BenchmarkSocketData(b *testing.B) {
	for _, pat := range []Pattern{PatternPipeline, PatternPubSub} {
		for _, sec := range []string{"NULL", "CURVE"} {
			for _, size := range []int{64, 4096, 65536} {
				name := string(pat) + "/" + sec + "/" + sizeName(size)
				b.Run(name, func(b *testing.B) { benchSocketData(b, pat, sec == "NULL", size) })
			}
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func benchSocketData(b *testing.B, pat Pattern, null bool, size int) {
	s := startBroker(b)
	pm, cm := newMessenger(b, s), newMessenger(b, s)
	ctx := context.Background()
	p, err := NewProducer(ctx, pm, ProducerOptions{Channel: chanName("bench"), Pattern: pat, NoCurve: null})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c, err := Connect(ctx, cm, ConsumerOptions{Channel: p.Channel()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	errc := make(chan error, 1)
	go func() {
		for i := range b.N {
			msg[0] = byte(i)
			if err := p.Send(ctx, msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for i := range b.N {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := c.Recv(rctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		if len(m) != size || m[0] != byte(i) {
			b.Fatalf("message %d: %d bytes, first %d", i, len(m), m[0])
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	// CPU time per message (user+system, both sides): steadier than msg/s on a
	// shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
