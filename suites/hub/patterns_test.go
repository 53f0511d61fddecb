package hub_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/wire"
)

// drainAll reads from every consumer until the producer's flush says all was
// consumed, and returns what each got.
func drainAll(p *hub.Producer, cs []*hub.Consumer, send func()) [][]uint64 {
	got := make([][]uint64, len(cs))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer GinkgoRecover()
			for {
				b, err := c.Recv(ctx)
				if err != nil {
					return
				}
				got[i] = append(got[i], binary.LittleEndian.Uint64(b))
			}
		}()
	}
	send()
	fctx, fcancel := context.WithTimeout(context.Background(), 20*time.Second)
	Expect(p.Flush(fctx)).To(Succeed())
	fcancel()
	cancel()
	wg.Wait()
	return got
}

// sendSeq sends messages 0..n-1 (seqMsg) from p, each expected to succeed.
func sendSeq(p *hub.Producer, n int) {
	for i := range n {
		Expect(p.Send(context.Background(), seqMsg(i))).To(Succeed())
	}
}

func seqMsg(i int) []byte { return binary.LittleEndian.AppendUint64(make([]byte, 0, 64), uint64(i)) }

var _ = Describe("Channel patterns", func() {
	var m *hub.Messenger
	BeforeEach(func() {
		_, m = brokerAndMessenger()
	})

	It("Pipeline delivers each of N messages to exactly one of 3 consumers, spread over all", func() {
		const n = 3000
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPipeline})
		var cs []*hub.Consumer
		for range 3 {
			cs = append(cs, connect(m, hub.ConsumerOptions{Channel: p.Channel(), Window: 16}))
		}
		got := drainAll(p, cs, func() {
			sendSeq(p, n)
		})
		seen := make([]int, n)
		for i, g := range got {
			Expect(len(g)).To(BeNumerically(">", n/10), "consumer %d got %d of %d", i, len(g), n)
			for k := 1; k < len(g); k++ {
				Expect(g[k]).To(BeNumerically(">", g[k-1]), "consumer %d out of order", i)
			}
			for _, v := range g {
				seen[v]++
			}
		}
		for v, k := range seen {
			Expect(k).To(Equal(1), "message %d delivered %d times", v, k)
		}
	})

	It("PubSub delivers all N messages to each of 3 consumers after HELLO", func() {
		const n = 2000
		// Every message to every consumer: the block policy (the default, drop,
		// would let a consumer lagging SlowConsumerAfter miss some).
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPubSub, SlowConsumer: hub.SlowConsumerBlock})
		var cs []*hub.Consumer
		for range 3 {
			cs = append(cs, connect(m, hub.ConsumerOptions{Channel: p.Channel(), Window: 32}))
		}
		got := drainAll(p, cs, func() {
			sendSeq(p, n)
		})
		want := make([]uint64, n)
		for i := range want {
			want[i] = uint64(i)
		}
		for i := range got {
			Expect(got[i]).To(Equal(want), "consumer %d", i)
		}
	})

	It("applies backpressure: Send waits for credit and fails at its deadline", func() {
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPipeline})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		Expect(p.Send(ctx, seqMsg(0))).To(MatchError(hub.ErrNoConsumers))
		cancel()
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel(), Window: 4})
		for i := range 4 {
			Expect(p.Send(context.Background(), seqMsg(i))).To(Succeed())
		}
		ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
		Expect(p.Send(ctx, seqMsg(4))).To(MatchError(hub.ErrBackpressure))
		cancel()
		// Consuming returns credit: the blocked send goes through.
		errc := make(chan error, 1)
		go func() { errc <- p.Send(context.Background(), seqMsg(5)) }()
		for range 4 {
			_, err := recv(c, time.Second)
			Expect(err).NotTo(HaveOccurred())
		}
		Eventually(errc).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
		Expect(le64(must(recv(c, time.Second)))).To(BeEquivalentTo(5))
	})

	It("Bidir: data both ways, addressed to one consumer", func() {
		type data struct {
			id []byte
			b  []byte
		}
		fromC := &calls[data]{}
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternBidir, Callbacks: hub.ProducerCallbacks{
			OnConsumerData: func(id hub.ConsumerIdentity, b []byte) { fromC.add(data{id.ID, b}) }}})
		Expect(p.Start()).To(Succeed())
		c1 := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		c2 := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		Expect(p.Send(context.Background(), u32(1))).To(MatchError(hub.ErrWrongPattern))
		Expect(p.SendTo(context.Background(), c2.Identity(), u32(2))).To(Succeed())
		Expect(recv(c2, time.Second)).To(Equal(u32(2)))
		_, err := recv(c1, 100*time.Millisecond)
		Expect(err).To(MatchError(context.DeadlineExceeded))
		Expect(c1.Send(u32(3))).To(Succeed())
		Eventually(fromC.list).Should(ConsistOf(data{c1.Identity(), u32(3)}))
	})

	It("two producers and a consumer of different channels in one process each get their own callbacks", func() {
		closingA, closingB := &calls[string]{}, &calls[string]{}
		closingC := &calls[string]{}
		joinedA, joinedB := &calls[hub.ConsumerIdentity]{}, &calls[hub.ConsumerIdentity]{}
		a := newProducer(m, hub.ProducerOptions{Callbacks: hub.ProducerCallbacks{OnChannelClosing: closingA.add, OnConsumerJoined: joinedA.add}})
		b := newProducer(m, hub.ProducerOptions{Callbacks: hub.ProducerCallbacks{OnChannelClosing: closingB.add, OnConsumerJoined: joinedB.add}})
		Expect(a.Start()).To(Succeed())
		Expect(b.Start()).To(Succeed())
		c := connect(m, hub.ConsumerOptions{Channel: b.Channel(), Callbacks: hub.ConsumerCallbacks{OnChannelClosing: closingC.add}})
		Eventually(joinedB.n).Should(Equal(1))
		Expect(joinedA.n()).To(Equal(0))
		Expect(m.CloseChannel(context.Background(), a.Channel())).To(Succeed())
		Eventually(closingA.list).Should(ConsistOf("explicit_close"))
		Consistently(func() int { return closingB.n() + closingC.n() }).WithTimeout(200 * time.Millisecond).Should(Equal(0))
		Expect(m.CloseChannel(context.Background(), b.Channel())).To(Succeed())
		Eventually(closingB.list).Should(ConsistOf("explicit_close"))
		Eventually(closingC.list).Should(ConsistOf("explicit_close"))
		Expect(closingA.n()).To(Equal(1))
		Expect(c.Valid()).To(BeTrue())
	})

	It("real-time write handlers can be swapped while running; Stop ends the loop", func() {
		p := newProducer(m, hub.ProducerOptions{SHM: shmCfg()})
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel(), Secret: secret})
		write := func(v uint32) func(hub.WriteCtx[struct{}, word]) error {
			return func(w hub.WriteCtx[struct{}, word]) error {
				s, err := w.Slot()
				if err != nil {
					return err
				}
				s.V = v
				return nil
			}
		}
		read := func() uint32 {
			var v uint32
			Expect(hub.PullTyped(context.Background(), c, time.Second, func(r hub.ReadCtx[struct{}, word]) error {
				s, err := r.Slot()
				if err != nil {
					return err
				}
				v = s.V
				return nil
			})).To(Succeed())
			return v
		}
		Expect(hub.SetWriteHandlerTyped(p, write(1))).To(Succeed())
		Expect(p.Mode()).To(Equal("realtime"))
		Expect(p.Start()).To(Succeed())
		Eventually(read).Should(Equal(uint32(1)))
		Expect(hub.SetWriteHandlerTyped(p, write(2))).To(Succeed())
		Eventually(read).Should(Equal(uint32(2)))
		Expect(hub.SetWriteHandlerTyped[struct{}, word](p, nil)).To(Succeed())
		Expect(p.Mode()).To(Equal("queue"))
		Expect(hub.PushTyped(p, write(3))).To(Succeed())
		Eventually(read).Should(Equal(uint32(3)))
		p.Stop()
	})

	It("Stop runs every queued Push job first", func() {
		p := newProducer(m, hub.ProducerOptions{SHM: shmCfg()})
		Expect(p.Start()).To(Succeed())
		var mu sync.Mutex
		ran := 0
		for range 50 {
			Expect(p.Push(func(tx *hub.WriteTxn) error {
				if _, err := tx.Next(); err != nil {
					return err
				}
				mu.Lock()
				ran++
				mu.Unlock()
				return nil
			})).To(Succeed())
		}
		p.Stop()
		mu.Lock()
		Expect(ran).To(Equal(50))
		mu.Unlock()
	})
})

var _ = Describe("Peer protocol with untrusted peers", func() {
	var m *hub.Messenger
	BeforeEach(func() {
		_, m = brokerAndMessenger()
	})

	rawPeer := func(p *hub.Producer) *wire.Dealer {
		d, err := wire.Dial(context.Background(), wire.Config{Security: curveClient(p.PublicKey())}, p.Endpoint())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(d.Close)
		return d
	}

	It("drops malformed messages, counts them and keeps serving", func() {
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPipeline})
		d := rawPeer(p)
		for _, frames := range [][][]byte{
			{[]byte("xx")},                            // not a frame layout
			{{'Z'}, []byte("?")},                      // unknown frame type
			proto.ControlFrames("HELLO", []byte("{")), // bad JSON
			proto.ControlFrames("HELLO", []byte(`{"window":-3}`)),
			proto.ControlFrames("CREDIT", []byte(`{"n":0}`)),    // credit from a stranger, and invalid
			proto.ControlFrames("CUSTOM", []byte("not joined")), // user message before HELLO
			proto.DataFrames([]byte("data before HELLO")),
		} {
			Expect(d.Send(frames...)).To(Succeed())
		}
		Eventually(func() uint64 { return p.Stats().Dropped }).Should(BeNumerically(">=", 7))
		Expect(p.ConnectedConsumers()).To(BeEmpty())
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		Expect(p.Send(context.Background(), u32(7))).To(Succeed())
		Expect(recv(c, time.Second)).To(Equal(u32(7)))
	})

	It("B-4: drops a consumer that announced peer heartbeats and went silent", func() {
		died := &calls[string]{}
		var diedPid uint64
		p := newProducer(m, hub.ProducerOptions{PeerTimeout: 300 * time.Millisecond, Callbacks: hub.ProducerCallbacks{
			OnConsumerDied: func(pid uint64, reason string) { diedPid = pid; died.add(reason) }}})
		Expect(p.Start()).To(Succeed())
		live := connect(m, hub.ConsumerOptions{Channel: p.Channel(), PeerHeartbeat: 50 * time.Millisecond})
		d := rawPeer(p)
		hello, _ := json.Marshal(map[string]any{"consumer_pid": 424242, "heartbeat_ms": 50})
		Expect(d.Send(proto.ControlFrames("HELLO", hello)...)).To(Succeed())
		Eventually(p.ConnectedConsumers).Should(HaveLen(2))
		Eventually(died.list).WithTimeout(3 * time.Second).Should(ConsistOf(hub.ReasonPeerTimeout))
		Expect(diedPid).To(BeEquivalentTo(424242))
		ids := p.ConnectedConsumers()
		Expect(ids).To(HaveLen(1))
		Expect(ids[0].ID).To(Equal(live.Identity()))
	})
})

func must[T any](v T, err error) T {
	Expect(err).NotTo(HaveOccurred())
	return v
}
