package hub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/shm"
)

// Unit tests of the channel layer with an in-process broker; the behaviour
// catalogue lives in suites/hub.

var chanSeq int

func chanName(label string) string {
	chanSeq++
	return fmt.Sprintf("plh_unit_%s_%d_%d", label, os.Getpid(), chanSeq)
}

func startBroker(t testing.TB) *broker.Service {
	t.Helper()
	s, err := broker.Start(context.Background(), broker.Config{Endpoint: "tcp://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newMessenger(t testing.TB, s *broker.Service) *Messenger {
	t.Helper()
	m, err := NewMessenger(MessengerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Connect(context.Background(), s.Endpoint(), s.PublicKey()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestPipelineBalancesAndPubSubFansOut(t *testing.T) {
	for _, pat := range []Pattern{PatternPipeline, PatternPubSub} {
		t.Run(string(pat), func(t *testing.T) {
			s := startBroker(t)
			m := newMessenger(t, s)
			ctx := context.Background()
			p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("pat"), Pattern: pat, SlowConsumer: SlowConsumerBlock})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var cs []*Consumer
			for range 3 {
				c, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Window: 8})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				cs = append(cs, c)
			}
			const n = 300
			got := make([][]uint64, 3)
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for i, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
						b, err := c.Recv(rctx)
						cancel()
						if err != nil {
							select {
							case <-stop:
								return
							default:
								continue
							}
						}
						got[i] = append(got[i], binary.LittleEndian.Uint64(b))
					}
				}()
			}
			for i := range n {
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], uint64(i))
				if err := p.Send(ctx, b[:]); err != nil {
					t.Fatal(err)
				}
			}
			fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := p.Flush(fctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			close(stop)
			wg.Wait()
			total := 0
			for i := range got {
				total += len(got[i])
				if len(got[i]) == 0 {
					t.Errorf("consumer %d got nothing", i)
				}
			}
			want := n
			if pat == PatternPubSub {
				want = 3 * n
			}
			if total != want {
				t.Fatalf("got %d messages, want %d", total, want)
			}
		})
	}
}

func TestShmSyncedWritePull(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	ctx := context.Background()
	cfg := &shm.Config{PageSize: shm.Page4K, Capacity: 4, Policy: shm.PolicyRingBuffer, Sync: shm.LatestOnly, Secret: 0xDEADBEEFCAFEBABE,
		HubUID: "hub_uid_test_42", ProducerName: "TestProducer"}
	p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("shm"), Pattern: PatternPubSub, SHM: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	type slot struct{ A, B uint32 }
	err = SyncedWriteTyped(ctx, p, time.Second, func(w WriteCtx[struct{}, slot]) error {
		s, err := w.Slot()
		if err != nil {
			return err
		}
		s.A, s.B = 0xCAFEBABE, 0x12345678
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Secret: cfg.Secret, UID: "cuid", Name: "cname"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.HasSHM() {
		t.Fatal(c.SHMError())
	}
	var got slot
	err = PullTyped(ctx, c, time.Second, func(r ReadCtx[struct{}, slot]) error {
		s, err := r.Slot()
		if err != nil {
			return err
		}
		got = *s
		return nil
	})
	if err != nil || got.A != 0xCAFEBABE || got.B != 0x12345678 {
		t.Fatalf("pull: %v %+v", err, got)
	}
	if id := c.SHM().Identity(); id.HubUID != "hub_uid_test_42" || id.ProducerName != "TestProducer" {
		t.Fatalf("identity %+v", id)
	}
	bad, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Secret: 0xBAD})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if bad.HasSHM() || !errors.Is(bad.SHMError(), shm.ErrSecret) {
		t.Fatalf("wrong secret attached: %v", bad.SHMError())
	}
	if err := p.Send(ctx, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	for _, cc := range []*Consumer{c, bad} {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b, err := cc.Recv(rctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		_ = b
	}
	_ = bytes.Equal
}

// FuzzPeerDecode feeds untrusted peer bodies to the P2C decoders: they must
// return a value or an ErrPeerProtocol error, never panic.
func FuzzPeerDecode(f *testing.F) {
	f.Add([]byte(`{"consumer_pid":1,"window":8,"heartbeat_ms":50}`))
	f.Add([]byte(`{"n":3}`))
	f.Add([]byte(`{"window":-1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := decodeHello(b); err == nil && (h.Window <= 0 || h.Window > maxWindow) {
			t.Fatalf("accepted window %d", h.Window)
		} else if err != nil && !errors.Is(err, ErrPeerProtocol) {
			t.Fatalf("untyped error %v", err)
		}
		if n, err := decodeCredit(b); err == nil && (n <= 0 || n > maxWindow) {
			t.Fatalf("accepted credit %d", n)
		}
		_, _ = parsePeer([][]byte{b[:len(b)/2], b[len(b)/2:]})
	})
}
