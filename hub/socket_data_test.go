package hub

import (
	"context"
	"strconv"
	"sync/atomic"
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
	// One deadline for the whole loop, as a consumer would use it (a timer per
	// Recv costs more than a small message's path).
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for i := range b.N {
		m, err := c.Recv(rctx)
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

// Send's pooled copies are reused only after every write of them is done: a
// stream of messages whose every byte depends on its index arrives intact, in
// order, at each PubSub consumer and exactly once across Pipeline consumers.
func TestSocketDataIntact(t *testing.T) {
	for _, pat := range []Pattern{PatternPubSub, PatternPipeline} {
		t.Run(string(pat), func(t *testing.T) {
			s := startBroker(t)
			m := newMessenger(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("intact"), Pattern: pat, NoCurve: true,
				SlowConsumer: SlowConsumerBlock})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var cs []*Consumer
			for range 2 {
				c, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Window: 32})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				cs = append(cs, c)
			}
			const n = 3000
			want := n
			if pat == PatternPipeline {
				want = 0 // counted across consumers below
			}
			seen := make([]int, n)
			got := make(chan []int, len(cs))
			// The readers stop when everything arrived (n each on PubSub, n in
			// all on Pipeline) or the 60 s deadline passed, never on a quiet
			// moment: a loaded machine can pause the producer for a while.
			var total atomic.Int64
			all := map[Pattern]int64{PatternPubSub: int64(n * len(cs)), PatternPipeline: n}[pat]
			rctx, allRead := context.WithCancel(ctx)
			defer allRead()
			for _, c := range cs {
				go func() {
					var idx []int
					for {
						b, err := c.Recv(rctx)
						if err != nil {
							got <- idx
							return
						}
						if total.Add(1) == all {
							allRead()
						}
						i, ok := intactIndex(b)
						if !ok {
							t.Errorf("message %d corrupted", i)
							continue
						}
						idx = append(idx, i)
					}
				}()
			}
			buf := make([]byte, 3000)
			for i := range n {
				fillIntact(buf[:100+i%2900], i)
				if err := p.Send(ctx, buf[:100+i%2900]); err != nil {
					t.Fatal(err)
				}
				fillIntact(buf, -1) // Send copied: scribbling over the caller's buffer changes nothing
			}
			for range cs {
				idx := <-got
				for k, i := range idx {
					if pat == PatternPubSub && i != k {
						t.Fatalf("consumer got message %d at position %d", i, k)
					}
					seen[i]++
				}
				if pat == PatternPubSub && len(idx) != want {
					t.Fatalf("consumer got %d of %d", len(idx), want)
				}
			}
			for i, k := range seen {
				if w := map[Pattern]int{PatternPubSub: len(cs), PatternPipeline: 1}[pat]; k != w {
					t.Fatalf("message %d delivered %d times, want %d", i, k, w)
				}
			}
		})
	}
}

// fillIntact fills b with bytes derived from i (its index in the first 4).
func fillIntact(b []byte, i int) {
	for k := range b {
		b[k] = byte(i*7 + k)
	}
	if len(b) >= 4 {
		b[0], b[1], b[2], b[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	}
}

// intactIndex returns the index in b and whether every byte matches it.
func intactIndex(b []byte) (int, bool) {
	if len(b) < 4 {
		return -1, false
	}
	i := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	want := make([]byte, len(b))
	fillIntact(want, i)
	return i, i >= 0 && i < 1<<20 && string(want) == string(b) && len(b) == 100+i%2900
}
