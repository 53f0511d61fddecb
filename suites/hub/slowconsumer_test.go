package hub_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/suites/support"
)

// readTotal is the number of items a plh-node consumer reported read so far.
func readTotal(p *support.Proc) float64 {
	var n float64
	for _, ev := range p.Events() {
		if ev.Kind == "read" {
			n += num(ev, "count")
		}
	}
	return n
}

func slowAction(action string) func(event.Event) bool {
	return func(e event.Event) bool { return e.Str("action") == action }
}

var _ = Describe("Slow PubSub consumers (plh-node processes, --slow-consumer)", func() {
	const rate = 500 // items per second

	// start runs a producer with policy and three consumers (a, b healthy, with
	// a credit window of healthyWindow; z to be paused, window 64), waits until
	// z has read, and SIGSTOPs z. It returns the producer, the healthy
	// consumers and z. A large healthy window keeps a and b from looking slow
	// themselves when this small machine deschedules them for a moment.
	start := func(policy string, healthyWindow int) (p, a, b, z *support.Proc) {
		s := startBroker(broker.Config{ConsumerTimeout: time.Minute})
		ch := support.UniqueName("slow")
		common := []string{"--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch}
		p = node("p", append([]string{"--role", "producer", "--pattern", "PubSub", "--rate", "500",
			"--slow-consumer", policy, "--peer-timeout", "1m"}, common...)...)
		Eventually(saw(p, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		cons := func(window int) []string {
			return append([]string{"--role", "consumer", "--window", strconv.Itoa(window)}, common...)
		}
		a = node("a", cons(healthyWindow)...)
		b = node("b", cons(healthyWindow)...)
		z = node("z", cons(64)...)
		Eventually(func() int { return p.Count("consumer_joined", nil) }).WithTimeout(10 * time.Second).Should(Equal(3))
		Eventually(func() float64 { return readTotal(z) }).WithTimeout(10 * time.Second).Should(BeNumerically(">", 0))
		Expect(z.Signal(syscall.SIGSTOP)).To(Succeed())
		DeferCleanup(func() { _ = z.Signal(syscall.SIGCONT) })
		return p, a, b, z
	}

	// keepsRate: while z is paused, a and b each read on: a second's worth of
	// items (a producer held back by z would give them at most two windows).
	keepsRate := func(a, b *support.Proc) {
		a0, b0 := readTotal(a), readTotal(b)
		Eventually(func() float64 { return readTotal(a) - a0 }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", rate))
		Eventually(func() float64 { return readTotal(b) - b0 }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", rate))
	}

	It("drop (the default): the others keep the producer's rate; the paused one is told how many it missed after SIGCONT", func() {
		p, a, b, z := start("drop", 2048)
		Eventually(saw(p, "slow_consumer", slowAction("drop"))).WithTimeout(5 * time.Second).Should(BeTrue())
		// The producer is not held back by z: a and b get a second's worth (a
		// producer waiting for z gets them one item per send deadline). How
		// often a write waited 100 ms is not asserted: under load any write can.
		keepsRate(a, b)
		Expect(z.Signal(syscall.SIGCONT)).To(Succeed())
		Eventually(saw(z, "missed", func(e event.Event) bool { return num(e, "missed") >= rate })).
			WithTimeout(10*time.Second).Should(BeTrue(), "z: %v", z.Events())
		Eventually(saw(z, "gap", nil)).WithTimeout(5 * time.Second).Should(BeTrue())
		// It reads on after the gap, still joined.
		z0 := readTotal(z)
		Eventually(func() float64 { return readTotal(z) - z0 }).WithTimeout(5 * time.Second).Should(BeNumerically(">=", 100))
		Expect(a.Count("missed", nil) + b.Count("missed", nil)).To(Equal(0))
		Expect(a.Count("gap", nil) + b.Count("gap", nil)).To(Equal(0))
		Expect(p.Count("consumer_died", nil)).To(Equal(0))
	})

	It("disconnect: the paused one is dropped at once, the others keep the rate, and it is told after SIGCONT", func() {
		p, a, b, z := start("disconnect", 2048)
		Eventually(saw(p, "slow_consumer", slowAction("disconnect"))).WithTimeout(5 * time.Second).Should(BeTrue())
		keepsRate(a, b)
		Expect(z.Signal(syscall.SIGCONT)).To(Succeed())
		Eventually(saw(z, "slow_disconnected", nil)).WithTimeout(10*time.Second).Should(BeTrue(), "z: %v", z.Events())
		Expect(z.Count("missed", nil)).To(Equal(0))
		// When it speaks again the producer re-admits it (REJOIN, HELLO).
		Eventually(func() int { return p.Count("consumer_joined", nil) }).WithTimeout(10 * time.Second).Should(Equal(4))
	})

	It("block: the producer waits for the paused one, the others stall; SIGCONT resumes everyone without a gap", func() {
		p, a, b, z := start("block", 64)
		Eventually(saw(p, "backpressure_stall_start", nil)).WithTimeout(5 * time.Second).Should(BeTrue())
		// Held back by z, a and b get no more than what was in flight (a
		// window each, and one more for reports still on their way) where a
		// free producer would give them a second's worth.
		a0, b0 := readTotal(a), readTotal(b)
		Consistently(func() float64 { return max(readTotal(a)-a0, readTotal(b)-b0) }).
			WithTimeout(time.Second).Should(BeNumerically("<=", 2*64))
		Expect(z.Signal(syscall.SIGCONT)).To(Succeed())
		Eventually(func() float64 { return readTotal(a) - a0 }).WithTimeout(5 * time.Second).Should(BeNumerically(">=", 100))
		Expect(p.Count("slow_consumer", nil)).To(Equal(0))
		// No GAP under block (plh-node's own 1 s send deadline may still skip
		// an item for z when the pause outlasts it: a sequence gap, not GAP).
		Expect(z.Count("missed", nil)).To(Equal(0))
	})
})

var _ = Describe("Slow consumers in process (hub API)", func() {
	var m *hub.Messenger
	BeforeEach(func() {
		_, m = brokerAndMessenger()
	})

	It("drop: Send does not wait for a consumer that holds its credit; it learns the count (OnMissed, GAP) when it reads on", func() {
		missed := &calls[uint64]{}
		slow := &calls[hub.SlowConsumerPolicy]{}
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPubSub, SlowConsumerAfter: 50 * time.Millisecond,
			Callbacks: hub.ProducerCallbacks{OnSlowConsumer: func(_ hub.ConsumerIdentity, a hub.SlowConsumerPolicy, _ uint64) { slow.add(a) }}})
		Expect(p.Start()).To(Succeed())
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel(), Window: 4,
			Callbacks: hub.ConsumerCallbacks{OnMissed: func(n uint64) { missed.add(n) }}})
		Expect(c.Start()).To(Succeed())
		t0 := time.Now()
		for i := range 104 {
			Expect(p.Send(context.Background(), u32(uint32(i)))).To(Succeed())
		}
		Expect(time.Since(t0)).To(BeNumerically("<", 2*time.Second), "Send waited for the slow consumer")
		Eventually(slow.list).Should(Equal([]hub.SlowConsumerPolicy{hub.SlowConsumerDrop}))
		Expect(p.Stats().Skipped).To(BeEquivalentTo(100))
		for i := range 4 {
			Expect(recv(c, time.Second)).To(Equal(u32(uint32(i))))
		}
		// Once its credit is back, the next item it gets is preceded by GAP
		// with everything it missed since the fourth.
		var got uint32
		for seq := uint32(104); ; seq++ {
			Expect(p.Send(context.Background(), u32(seq))).To(Succeed())
			if b, err := recv(c, 100*time.Millisecond); err == nil {
				got = binary.LittleEndian.Uint32(b)
				break
			}
		}
		Eventually(missed.list).Should(Equal([]uint64{uint64(got) - 4}))
		Expect(c.Stats().Missed).To(BeEquivalentTo(got - 4))
	})

	It("disconnect: the consumer without credit is dropped and told (SLOW_CONSUMER), then re-admitted when it speaks (REJOIN)", func() {
		slow := &calls[hub.SlowConsumerPolicy]{}
		notices := &calls[string]{}
		rejoined := &calls[bool]{}
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPubSub, SlowConsumer: hub.SlowConsumerDisconnect,
			SlowConsumerAfter: 50 * time.Millisecond,
			Callbacks:         hub.ProducerCallbacks{OnSlowConsumer: func(_ hub.ConsumerIdentity, a hub.SlowConsumerPolicy, _ uint64) { slow.add(a) }}})
		Expect(p.Start()).To(Succeed())
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel(), Window: 4, Callbacks: hub.ConsumerCallbacks{
			OnChannelError: func(n hub.ChannelNotice) { notices.add(n.Event) },
			OnRejoined:     func() { rejoined.add(true) }}})
		Expect(c.Start()).To(Succeed())
		for i := range 5 {
			Expect(p.Send(context.Background(), u32(uint32(i)))).To(Succeed())
		}
		Eventually(slow.list).Should(Equal([]hub.SlowConsumerPolicy{hub.SlowConsumerDisconnect}))
		Expect(p.ConnectedConsumers()).To(BeEmpty())
		for i := range 4 {
			Expect(recv(c, time.Second)).To(Equal(u32(uint32(i))))
		}
		Eventually(notices.list).Should(Equal([]string{hub.EventSlowConsumer}))
		Eventually(rejoined.n).WithTimeout(5 * time.Second).Should(Equal(1))
		Eventually(p.ConnectedConsumers).Should(HaveLen(1))
		Expect(p.Send(context.Background(), u32(77))).To(Succeed())
		Expect(recv(c, time.Second)).To(Equal(u32(77)))
	})

	It("rejects an unknown policy", func() {
		_, err := hub.NewProducer(context.Background(), m, hub.ProducerOptions{Channel: support.UniqueName("bad"), SlowConsumer: "sometimes"})
		Expect(err).To(MatchError(hub.ErrInvalidArgument))
	})
})

var _ = Describe("Peer table against foreign HELLOs", func() {
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
	recvType := func(d *wire.Dealer) string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		fr, err := d.Recv(ctx)
		Expect(err).NotTo(HaveOccurred())
		f, err := proto.Parse(fr)
		Expect(err).NotTo(HaveOccurred())
		return f.Type
	}

	It("a HELLO without heartbeat_ms is pruned when silent, and asked to HELLO again", func() {
		died := &calls[string]{}
		p := newProducer(m, hub.ProducerOptions{PeerTimeout: 300 * time.Millisecond, Callbacks: hub.ProducerCallbacks{
			OnConsumerDied: func(_ uint64, reason string) { died.add(reason) }}})
		Expect(p.Start()).To(Succeed())
		d := rawPeer(p)
		hello, _ := json.Marshal(map[string]any{"consumer_pid": 515151})
		Expect(d.Send(proto.ControlFrames("HELLO", hello)...)).To(Succeed())
		Expect(recvType(d)).To(Equal("HELLO_ACK"))
		Eventually(died.list).WithTimeout(3 * time.Second).Should(ConsistOf(hub.ReasonPeerTimeout))
		Expect(p.ConnectedConsumers()).To(BeEmpty())
		Expect(recvType(d)).To(Equal("REJOIN"))
	})

	It("refuses HELLOs beyond MaxPeers and keeps serving the joined ones", func() {
		p := newProducer(m, hub.ProducerOptions{MaxPeers: 2})
		live := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		d1, d2 := rawPeer(p), rawPeer(p)
		hello, _ := json.Marshal(map[string]any{"consumer_pid": 616161, "heartbeat_ms": 1000})
		Expect(d1.Send(proto.ControlFrames("HELLO", hello)...)).To(Succeed())
		Expect(recvType(d1)).To(Equal("HELLO_ACK"))
		dropped := p.Stats().Dropped
		Expect(d2.Send(proto.ControlFrames("HELLO", hello)...)).To(Succeed())
		Eventually(func() uint64 { return p.Stats().Dropped }).Should(Equal(dropped + 1))
		Expect(p.ConnectedConsumers()).To(HaveLen(2))
		Expect(p.Send(context.Background(), u32(9))).To(Succeed())
		Expect(recv(live, time.Second)).To(Equal(u32(9)))
	})
})

var _ = Describe("GAP and SLOW_CONSUMER from an untrusted producer", func() {
	It("drops malformed ones, counts them and keeps reading; a valid GAP counts", func(ctx SpecContext) {
		s, m := brokerAndMessenger()
		r, err := wire.Listen(wire.Config{}, "tcp://127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(r.Close)
		fake := support.UniqueName("fakegap")
		rogue := newMessenger(s, 0, proc.Identity{})
		Expect(rogue.RegisterProducer(ctx, fake, hub.ProducerInfo{Pattern: hub.PatternPubSub,
			CtrlEndpoint: r.Endpoint(), DataEndpoint: r.Endpoint()})).To(Succeed())
		// The fake producer answers HELLO, then sends bad and good notices and data.
		go func() {
			defer GinkgoRecover()
			msg, err := r.Recv(ctx)
			if err != nil {
				return
			}
			ack, _ := json.Marshal(map[string]any{"channel_name": fake, "pattern": "PubSub", "window": 256})
			for _, fr := range [][][]byte{
				proto.ControlFrames("HELLO_ACK", ack),
				proto.ControlFrames("GAP", []byte("{")),
				proto.ControlFrames("SLOW_CONSUMER", []byte(`{"missed":1,"reason":"`+strings.Repeat("x", 300)+`"}`)),
				proto.ControlFrames("GAP", []byte(`{"missed":3}`)),
				proto.DataFrames(u32(8)),
			} {
				Expect(r.Send(msg.Peer, fr...)).To(Succeed())
			}
		}()
		missed := &calls[uint64]{}
		c := connect(m, hub.ConsumerOptions{Channel: fake, Callbacks: hub.ConsumerCallbacks{
			OnMissed: func(n uint64) { missed.add(n) }}})
		Expect(c.Start()).To(Succeed())
		Expect(recv(c, 5*time.Second)).To(Equal(u32(8)))
		Expect(c.Stats().Dropped).To(BeEquivalentTo(2))
		Expect(c.Stats().Missed).To(BeEquivalentTo(3))
		Eventually(missed.list).Should(Equal([]uint64{3}))
	}, SpecTimeout(30*time.Second))
})
