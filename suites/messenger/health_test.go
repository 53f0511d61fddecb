package messenger_test

import (
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/suites/support"
)

var _ = Describe("Broker health notifications (behaviours §7)", func() {
	It("tells the producer its channel closed when heartbeats stop (7.1)", func() {
		cfg := brokerCfg()
		cfg.ChannelTimeout = time.Second
		cfg.LivenessInterval = -1
		b := startBroker(cfg)
		m := connected(b.Endpoint(), hub.MessengerConfig{HeartbeatInterval: -1})
		ch := uniq("closing")
		closing := make(chan string, 1)
		m.OnChannelClosing(ch, func(reason string) { closing <- reason })
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())
		Eventually(closing).WithTimeout(10 * time.Second).Should(Receive(Equal(proto.ReasonHeartbeatTimeout)))
		_, err := m.Discover(ctx5(), ch)
		Expect(err).To(MatchError(hub.ErrChannelNotFound))
	})

	It("keeps a channel alive with periodic heartbeats (7.1, counter-case)", func() {
		cfg := brokerCfg()
		cfg.ChannelTimeout = time.Second
		b := startBroker(cfg)
		m := connected(b.Endpoint(), hub.MessengerConfig{HeartbeatInterval: 100 * time.Millisecond})
		ch := uniq("alive")
		closing := make(chan string, 1)
		m.OnChannelClosing(ch, func(reason string) { closing <- reason })
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())
		Consistently(closing, 2500*time.Millisecond).ShouldNot(Receive())
		_, err := m.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
	})

	It("lets the same name be registered again at once after UnregisterChannel (7.3)", func() {
		cfg := brokerCfg()
		cfg.ChannelTimeout = 30 * time.Second
		b := startBroker(cfg)
		a := connected(b.Endpoint(), hub.MessengerConfig{})
		c := connected(b.Endpoint(), hub.MessengerConfig{})
		ch := uniq("rereg")
		Expect(a.RegisterProducer(ctx5(), ch, hub.ProducerInfo{SchemaHash: []byte{1}})).To(Succeed())
		Expect(c.RegisterProducer(ctx5(), ch, hub.ProducerInfo{SchemaHash: []byte{2}})).To(MatchError(hub.ErrSchemaMismatch))
		Expect(a.UnregisterChannel(ctx5(), ch)).To(Succeed())
		Expect(c.RegisterProducer(ctx5(), ch, hub.ProducerInfo{SchemaHash: []byte{2}})).To(Succeed())
		info, err := a.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.SchemaHash).To(Equal([]byte{2}))
	})

	It("tells the owner about a schema mismatch and refuses the intruder (7.5)", func() {
		b := startBroker(brokerCfg())
		owner := connected(b.Endpoint(), hub.MessengerConfig{})
		intruder := connected(b.Endpoint(), hub.MessengerConfig{})
		ch := uniq("schema")
		notices := make(chan hub.ChannelNotice, 2)
		second := make(chan hub.ChannelNotice, 2)
		owner.OnChannelError(ch, func(n hub.ChannelNotice) { notices <- n })
		owner.OnChannelError(ch, func(n hub.ChannelNotice) { second <- n }) // any number of callbacks
		Expect(owner.RegisterProducer(ctx5(), ch, hub.ProducerInfo{SchemaHash: []byte{0xaa, 0xbb, 0xcc, 0xdd}})).To(Succeed())

		err := intruder.RegisterProducer(ctx5(), ch, hub.ProducerInfo{SchemaHash: []byte{0x11, 0x22, 0x33, 0x44}})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))

		var n hub.ChannelNotice
		Eventually(notices).WithTimeout(5 * time.Second).Should(Receive(&n))
		Expect(n.Channel).To(Equal(ch))
		Expect(n.Type).To(Equal(string(proto.TypeChannelErrorNotify)))
		Expect(n.Event).To(Equal(proto.EventSchemaMismatch))
		Expect(n.ExistingSchemaHash).To(Equal("aabbccdd"))
		Expect(n.AttemptedSchemaHash).To(Equal("11223344"))
		Expect(n.AttemptedPid).To(Equal(intruder.Pid()))
		Eventually(second).WithTimeout(5 * time.Second).Should(Receive())
		info, err := owner.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.SchemaHashHex).To(Equal("aabbccdd"))
	})

	It("tells the producer when a consumer process is killed (7.4, pidfd)", func() {
		cfg := brokerCfg()
		cfg.ChannelTimeout = 30 * time.Second
		b := startBroker(cfg)
		m := connected(b.Endpoint(), hub.MessengerConfig{})
		ch := uniq("died")
		type death struct {
			pid    uint64
			reason string
		}
		died := make(chan death, 1)
		m.OnConsumerDied(ch, func(pid uint64, reason string) { died <- death{pid, reason} })
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())

		p, err := support.Start("consumer", GinkgoWriter, nil, bins["plh-msgconsumer"], b.Endpoint(), ch, b.PublicKey())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			if done, _ := p.Exited(); !done {
				p.Kill()
			}
		})
		Eventually(func() bool { _, ok := p.Find("registered", nil); return ok }).
			WithTimeout(60*time.Second).Should(BeTrue(), "consumer never registered: %s", p.Stderr())
		Expect(consumerCount(m, ch)()).To(BeEquivalentTo(1))

		Expect(p.Signal(syscall.SIGKILL)).To(Succeed())
		var d death
		Eventually(died).WithTimeout(10 * time.Second).Should(Receive(&d))
		Expect(d.pid).To(BeEquivalentTo(p.Cmd.Process.Pid))
		Expect(d.reason).To(Equal(proto.ReasonProcessDead))
		Expect(consumerCount(m, ch)()).To(BeZero())
		Eventually(p.Done()).WithTimeout(10 * time.Second).Should(BeClosed())
	})

	It("keeps a consumer registered with consumer heartbeats, and reports it dead when they stop (B-3)", func() {
		cfg := brokerCfg()
		cfg.ConsumerTimeout = time.Second
		cfg.ChannelTimeout = 30 * time.Second
		b := startBroker(cfg)
		prod := connected(b.Endpoint(), hub.MessengerConfig{})
		cons := connected(b.Endpoint(), hub.MessengerConfig{HeartbeatInterval: 100 * time.Millisecond})
		ch := uniq("chb")
		died := make(chan string, 1)
		prod.OnConsumerDied(ch, func(_ uint64, reason string) { died <- reason })
		Expect(prod.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())
		Expect(cons.RegisterConsumer(ctx5(), ch)).To(Succeed())
		Consistently(died, 2500*time.Millisecond).ShouldNot(Receive())
		Expect(consumerCount(prod, ch)()).To(BeEquivalentTo(1))

		Expect(cons.Disconnect()).To(Succeed()) // heartbeats stop; the process lives on
		Eventually(died).WithTimeout(10 * time.Second).Should(Receive(Equal(proto.ReasonHeartbeatTimeout)))
		Expect(consumerCount(prod, ch)()).To(BeZero())
	})

	It("survives panicking and slow callbacks: replies keep flowing", func() {
		b := startBroker(brokerCfg())
		m := connected(b.Endpoint(), hub.MessengerConfig{})
		ch := uniq("cb")
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())
		release := make(chan struct{})
		entered := make(chan struct{})
		got := make(chan string, 1)
		unsub := m.OnChannelClosing(ch, func(string) { close(entered); <-release })
		m.OnChannelClosing(ch, func(string) { panic("callback bug") })
		m.OnChannelClosing(ch, func(reason string) { got <- reason })
		gone := make(chan string, 1)
		undo := m.OnChannelClosing(ch, func(reason string) { gone <- reason })
		undo()
		undo()
		Expect(b.CloseChannel(ch)).To(Succeed())
		Eventually(entered).WithTimeout(5 * time.Second).Should(BeClosed())
		// The callback goroutine is blocked: requests are still answered.
		for range 20 {
			_, err := m.Ping(ctx5())
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{})).To(Succeed())
		close(release)
		Eventually(got).WithTimeout(5 * time.Second).Should(Receive(Equal(proto.ReasonExplicitClose)))
		Expect(gone).NotTo(Receive())
		unsub()
	})
})
