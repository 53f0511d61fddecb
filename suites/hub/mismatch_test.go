package hub_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire/curve"
	"github.com/pylabhub/plh/suites/support"
)

// Security mismatches (docs/security.md): bad input from another process gets a
// clear error, never a hang, and every Close returns promptly. The deadlines the
// calls get are far away (farDeadline): only a fast failure passes. The
// goroutine check (support.CheckLeaks) runs after every spec.

// farDeadline is the context of a call that must fail long before it ends.
const farDeadline = time.Minute

// closeQuickly asserts that close returns within a few seconds.
func closeQuickly(what string, close func() error) {
	GinkgoHelper()
	done := make(chan error, 1)
	go func() { done <- close() }()
	Eventually(done).WithTimeout(5*time.Second).Should(Receive(Succeed()), "%s: Close did not return", what)
}

// unconnected returns a Messenger that is not connected (Close is also deferred,
// so a failed assertion still stops it).
func unconnected() *hub.Messenger {
	m, err := hub.NewMessenger(hub.MessengerConfig{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(m.Close)
	return m
}

// connectFails asserts that Connect fails well before its far deadline with an
// error wrapping ErrNotConnected and naming the endpoint.
func connectFails(m *hub.Messenger, endpoint, key string) error {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), farDeadline)
	defer cancel()
	err := m.Connect(ctx, endpoint, key)
	Expect(err).To(MatchError(hub.ErrNotConnected))
	Expect(err.Error()).To(ContainSubstring(endpoint))
	Expect(ctx.Err()).NotTo(HaveOccurred(), "Connect waited for its deadline: %v", err)
	return err
}

var _ = Describe("Security mismatches fail fast and close promptly", func() {
	Context("between a Messenger and the broker", func() {
		It("(a) a NULL Messenger facing a CURVE broker", func(_ SpecContext) {
			s := startBroker(broker.Config{})
			Expect(s.PublicKey()).To(HaveLen(40))
			m := unconnected()
			err := connectFails(m, s.Endpoint(), "")
			Expect(err).To(MatchError(hub.ErrBrokerSecurity))
			closeQuickly("messenger", m.Close)
			closeQuickly("broker", s.Close)
		}, SpecTimeout(2*farDeadline))

		It("(b) a CURVE Messenger facing a NULL broker", func(_ SpecContext) {
			s := startBroker(broker.Config{Curve: broker.CurveConfig{Disabled: true}})
			Expect(s.PublicKey()).To(BeEmpty())
			keys, err := curve.GenerateKeyPair()
			Expect(err).NotTo(HaveOccurred())
			m := unconnected()
			err = connectFails(m, s.Endpoint(), keys.Public.String())
			Expect(err).To(MatchError(hub.ErrBrokerSecurity))
			Expect(err).To(MatchError(curve.ErrHandshake))
			closeQuickly("messenger", m.Close)
			closeQuickly("broker", s.Close)
		}, SpecTimeout(2*farDeadline))

		It("(c) a Messenger given the wrong server key", func(_ SpecContext) {
			s := startBroker(broker.Config{})
			other, err := curve.GenerateKeyPair()
			Expect(err).NotTo(HaveOccurred())
			m := unconnected()
			err = connectFails(m, s.Endpoint(), other.Public.String())
			Expect(err).To(MatchError(hub.ErrBrokerSecurity))
			Expect(err).To(MatchError(curve.ErrHandshake))
			// The broker still serves a client with the right key.
			good := newMessenger(s, 0, proc.Identity{})
			_, err = good.Ping(context.Background())
			Expect(err).NotTo(HaveOccurred())
			closeQuickly("messenger", m.Close)
			closeQuickly("good messenger", good.Close)
			closeQuickly("broker", s.Close)
		}, SpecTimeout(2*farDeadline))

		It("(f) the broker restarted with a different key under a connected Messenger", func(ctx SpecContext) {
			s := startBroker(broker.Config{})
			ep := s.Endpoint()
			m, err := hub.NewMessenger(hub.MessengerConfig{HeartbeatInterval: 100 * time.Millisecond, PingInterval: 200 * time.Millisecond})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(m.Close)
			Expect(m.Connect(ctx, ep, s.PublicKey())).To(Succeed())
			lost := make(chan error, 4)
			m.OnBrokerLost(func(cause error) { lost <- cause })
			ch := support.UniqueName("rekey")
			Expect(m.RegisterProducer(ctx, ch, hub.ProducerInfo{ShmName: ch})).To(Succeed())

			closeQuickly("old broker", s.Close)
			s2, err := broker.Start(context.Background(), broker.Config{Endpoint: ep})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s2.Close)
			Expect(s2.PublicKey()).NotTo(Equal(s.PublicKey()))

			Eventually(lost).WithTimeout(10 * time.Second).Should(Receive(MatchError(hub.ErrBrokerLost)))
			Consistently(m.Connected).WithTimeout(time.Second).Should(BeFalse(), "the old key must never reach the new broker")
			cctx, cancel := context.WithTimeout(ctx, farDeadline)
			defer cancel()
			_, err = m.Discover(cctx, ch)
			Expect(err).To(MatchError(hub.ErrNotConnected))
			Expect(cctx.Err()).NotTo(HaveOccurred(), "Discover waited for its deadline")
			closeQuickly("messenger", m.Close)
			closeQuickly("new broker", s2.Close)
		}, SpecTimeout(2*farDeadline))
	})

	Context("between a consumer and a producer", func() {
		var (
			s *broker.Service
			m *hub.Messenger
		)
		BeforeEach(func() {
			s = startBroker(broker.Config{})
			m = newMessenger(s, 0, proc.Identity{})
		})

		// alias registers, through another Messenger, a channel pointing at p's
		// peer socket with key as the producer key ("" = NULL).
		alias := func(ctx context.Context, p *hub.Producer, key string) string {
			rogue := newMessenger(s, 0, proc.Identity{})
			name := support.UniqueName("alias")
			Expect(rogue.RegisterProducer(ctx, name, hub.ProducerInfo{Pattern: hub.PatternPubSub,
				CtrlEndpoint: p.Endpoint(), DataEndpoint: p.Endpoint(), PubKey: key})).To(Succeed())
			return name
		}

		// consumerFails asserts a fast ErrPeerSecurity naming the producer, and
		// that the producer keeps serving a good consumer.
		consumerFails := func(ctx context.Context, p *hub.Producer, opts hub.ConsumerOptions) {
			GinkgoHelper()
			cctx, cancel := context.WithTimeout(ctx, farDeadline)
			defer cancel()
			opts.Timeout = farDeadline
			c, err := hub.Connect(cctx, m, opts)
			if c != nil {
				closeQuickly("consumer", c.Close)
			}
			Expect(c).To(BeNil())
			Expect(err).To(MatchError(hub.ErrPeerSecurity))
			Expect(err.Error()).To(ContainSubstring(p.Endpoint()))
			Expect(cctx.Err()).NotTo(HaveOccurred(), "Connect waited for its deadline: %v", err)

			Expect(p.ConnectedConsumers()).To(BeEmpty())
			good := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
			Expect(p.Send(ctx, u32(7))).To(Succeed())
			Expect(recv(good, 5*time.Second)).To(Equal(u32(7)))
			closeQuickly("good consumer", good.Close)
			closeQuickly("producer", p.Close)
		}

		It("(d) a NULL consumer facing a CURVE producer", func(ctx SpecContext) {
			p := newProducer(m, hub.ProducerOptions{})
			Expect(p.PublicKey()).To(HaveLen(40))
			Expect(p.Start()).To(Succeed())
			consumerFails(ctx, p, hub.ConsumerOptions{Channel: alias(ctx, p, "")})
		}, SpecTimeout(2*farDeadline))

		It("(e) a CURVE consumer facing a NULL (NoCurve) producer", func(ctx SpecContext) {
			p := newProducer(m, hub.ProducerOptions{NoCurve: true})
			Expect(p.PublicKey()).To(BeEmpty())
			Expect(p.Start()).To(Succeed())
			keys, err := curve.GenerateKeyPair()
			Expect(err).NotTo(HaveOccurred())
			consumerFails(ctx, p, hub.ConsumerOptions{Channel: alias(ctx, p, keys.Public.String())})
		}, SpecTimeout(2*farDeadline))
	})
})
