package hub

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/shm"
)

// groupItem is item i of a group test: its index, big-endian.
func groupItem(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

// collect receives on c until ctx ends, recording each index.
func collect(ctx context.Context, c *Consumer, out *[]int, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		b, err := c.Recv(ctx)
		if err != nil {
			return
		}
		*out = append(*out, int(binary.BigEndian.Uint32(b)))
	}
}

// B-7: the members of a group split the stream (each item to exactly one),
// each group gets every item, a consumer without a group gets every item.
func TestConsumerGroupsSplitAndFanOut(t *testing.T) {
	for _, pat := range []Pattern{PatternPubSub, PatternPipeline} {
		t.Run(string(pat), func(t *testing.T) {
			s := startBroker(t)
			m := newMessenger(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("groups"), Pattern: pat, NoCurve: true,
				SlowConsumer: SlowConsumerBlock})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			// PubSub: "" is a consumer of its own; Pipeline: "" is the channel's
			// own group.
			names := []string{"a", "a", "a", "b", "b", ""}
			got := make([][]int, len(names))
			rctx, rcancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for i, g := range names {
				c, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Group: g, Window: 16})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				wg.Add(1)
				go collect(rctx, c, &got[i], &wg)
			}
			const n = 900
			for i := range n {
				if err := p.Send(ctx, groupItem(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			rcancel()
			wg.Wait()
			per := map[string][]int{}
			for i, g := range names {
				if len(got[i]) == 0 {
					t.Errorf("consumer %d (group %q) got nothing", i, g)
				}
				per[g] = append(per[g], got[i]...)
			}
			for g, idx := range per {
				seen := make([]int, n)
				for _, i := range idx {
					seen[i]++
				}
				for i, k := range seen {
					if k != 1 {
						t.Fatalf("group %q: item %d delivered %d times, want 1", g, i, k)
					}
				}
			}
			if st := p.Stats(); st.Redelivered != 0 {
				t.Fatalf("redelivered %d with every member alive", st.Redelivered)
			}
		})
	}
}

// A member that leaves (BYE) or vanishes (its link stops without BYE: pruned
// after PeerTimeout) holding items it never consumed loses none of them: they
// go to the other member, and no item is delivered twice. One that says HELLO
// again (as after REJOIN) drops what it held, which the producer handed back.
func TestConsumerGroupHandsBackUnconsumed(t *testing.T) {
	for _, how := range []string{"bye", "vanish", "hello"} {
		t.Run(how, func(t *testing.T) {
			s := startBroker(t)
			m := newMessenger(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("handback"), Pattern: PatternPubSub, NoCurve: true,
				PeerTimeout: 400 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			opts := ConsumerOptions{Channel: p.Channel(), Group: "w", Window: 8, PeerHeartbeat: 100 * time.Millisecond}
			holder, err := Connect(ctx, m, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()
			// The holder takes its window (items 0..7) and reads nothing.
			for i := range 8 {
				if err := p.Send(ctx, groupItem(i)); err != nil {
					t.Fatal(err)
				}
			}
			worker, err := Connect(ctx, m, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer worker.Close()
			var got []int
			var wg sync.WaitGroup
			rctx, rcancel := context.WithCancel(ctx)
			wg.Add(1)
			go collect(rctx, worker, &got, &wg)
			const n = 40
			for i := 8; i < n; i++ {
				if err := p.Send(ctx, groupItem(i)); err != nil {
					t.Fatal(err)
				}
			}
			var held []int
			switch how {
			case "bye":
				holder.Close()
			case "vanish":
				holder.consumerLink.stop() // no BYE, no heartbeats: as a killed process
			case "hello":
				holder.consumerLink.rejoin() // HELLO again; rejoining ends after its HELLO_ACK was handled
				deadline := time.Now().Add(20 * time.Second)
				for holder.consumerLink.rejoining.Load() && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				wg.Add(1)
				go collect(rctx, holder, &held, &wg)
			}
			deadline := time.Now().Add(20 * time.Second)
			for p.Stats().Redelivered < 8 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			rcancel()
			wg.Wait()
			seen := make([]int, n)
			for _, i := range append(got, held...) {
				seen[i]++
			}
			for i, k := range seen {
				if k != 1 {
					t.Fatalf("item %d delivered %d times in the group, want 1 (redelivered %d)", i, k, p.Stats().Redelivered)
				}
			}
		})
	}
}

// Bad group names and groups where they cannot split are refused with clear
// errors; a HELLO with a bad group is a peer protocol error.
func TestConsumerGroupRefused(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("refused"), Pattern: PatternBidir, NoCurve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, g := range []string{"bad\xff", "tab\there", "nl\n", strings.Repeat("g", MaxGroupBytes+1), "\ufffd"} {
		if _, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Group: g}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("group %q: %v, want ErrInvalidArgument", g, err)
		}
		body := mustJSON(helloBody{ConsumerPid: 1, Group: g})
		if _, err := decodeHello(body); !errors.Is(err, ErrPeerProtocol) {
			t.Errorf("HELLO group %q: %v, want ErrPeerProtocol", g, err)
		}
	}
	if _, err := decodeHello(mustJSON(helloBody{ConsumerPid: 1, Group: strings.Repeat("é", MaxGroupBytes/2)})); err != nil {
		t.Errorf("a %d-byte group: %v", MaxGroupBytes, err)
	}
	if _, err := Connect(ctx, m, ConsumerOptions{Channel: p.Channel(), Group: "g"}); !errors.Is(err, ErrWrongPattern) {
		t.Errorf("Bidir with a group: %v, want ErrWrongPattern", err)
	}
}

// A producer that predates consumer groups answers HELLO_ACK without the
// group: the consumer refuses to run as a member that would get every item.
func TestConsumerGroupOldProducer(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := wire.Listen(wire.Config{}, "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	name := chanName("old")
	if err := m.RegisterProducer(ctx, name, ProducerInfo{Pattern: PatternPubSub, CtrlEndpoint: r.Endpoint(), DataEndpoint: r.Endpoint()}); err != nil {
		t.Fatal(err)
	}
	go func() { // an old producer: HELLO_ACK as before groups, BYE_ACK
		for {
			msg, err := r.Recv(ctx)
			if err != nil {
				return
			}
			f, err := proto.Parse(msg.Frames)
			if err != nil {
				continue
			}
			switch f.Type {
			case TypeHello:
				_ = r.Send(msg.Peer, proto.ControlFrames(TypeHelloAck, []byte(`{"channel_name":"`+name+`","pattern":"PubSub","window":256}`))...)
			case TypeBye:
				_ = r.Send(msg.Peer, proto.ControlFrames(TypeByeAck, nil)...)
			}
		}
	}()
	if _, err := Connect(ctx, m, ConsumerOptions{Channel: name, Group: "g"}); !errors.Is(err, ErrGroupUnsupported) {
		t.Fatalf("group against an old producer: %v, want ErrGroupUnsupported", err)
	}
	c, err := Connect(ctx, m, ConsumerOptions{Channel: name})
	if err != nil {
		t.Fatalf("no group against an old producer: %v", err)
	}
	c.Close()
}

// A group consumer with a Secret joins the group on a Sync_reader ring (no
// sole-reader lock: two members attach) and is refused on rings with no cursor
// per reader (Latest_only, Single_reader).
func TestConsumerGroupRingPolicy(t *testing.T) {
	s := startBroker(t)
	m := newMessenger(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, pol := range []shm.SyncPolicy{shm.SyncReader, shm.LatestOnly, shm.SingleReader} {
		t.Run(pol.String(), func(t *testing.T) {
			const secret = 0x6B07
			p, err := NewProducer(ctx, m, ProducerOptions{Channel: chanName("ringgroup"), Pattern: PatternPubSub, NoCurve: true,
				SHM: &shm.Config{PageSize: shm.Page4K, Capacity: 4, Policy: shm.PolicyRingBuffer, Sync: pol, Secret: secret}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			opts := ConsumerOptions{Channel: p.Channel(), Group: "g", Secret: secret}
			c1, err := Connect(ctx, m, opts)
			if pol != shm.SyncReader {
				if !errors.Is(err, ErrGroupUnsupported) || !strings.Contains(err.Error(), pol.String()) {
					t.Fatalf("group on a %s ring: %v, want ErrGroupUnsupported naming the policy", pol, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c1.Close()
			c2, err := Connect(ctx, m, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			if !c1.HasSHM() || !c2.HasSHM() {
				t.Fatalf("members attached: %v (%v), %v (%v)", c1.HasSHM(), c1.SHMError(), c2.HasSHM(), c2.SHMError())
			}
		})
	}
}
