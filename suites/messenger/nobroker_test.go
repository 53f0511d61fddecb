package messenger_test

import (
	"context"
	"net"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/hub"
)

// failsFast runs call and expects it to return an error matching every target
// well before a hang would end (the call's own context has a 30 s deadline).
func failsFast(call func(ctx context.Context) error, targets ...error) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	var err error
	Eventually(done).WithTimeout(5 * time.Second).Should(Receive(&err))
	for _, t := range targets {
		Expect(err).To(MatchError(t))
	}
}

// everyCall lists one invocation of each Messenger request.
func everyCall(m *hub.Messenger) map[string]func(ctx context.Context) error {
	ch := uniq("nb")
	return map[string]func(ctx context.Context) error{
		"RegisterProducer":   func(ctx context.Context) error { return m.RegisterProducer(ctx, ch, hub.ProducerInfo{}) },
		"UnregisterChannel":  func(ctx context.Context) error { return m.UnregisterChannel(ctx, ch) },
		"Discover":           func(ctx context.Context) error { _, err := m.Discover(ctx, ch); return err },
		"RegisterConsumer":   func(ctx context.Context) error { return m.RegisterConsumer(ctx, ch) },
		"DeregisterConsumer": func(ctx context.Context) error { return m.DeregisterConsumer(ctx, ch) },
		"ListChannels":       func(ctx context.Context) error { _, err := m.ListChannels(ctx); return err },
		"CloseChannel":       func(ctx context.Context) error { return m.CloseChannel(ctx, ch) },
		"Ping":               func(ctx context.Context) error { _, err := m.Ping(ctx); return err },
		"ReportChecksumError": func(context.Context) error {
			return m.ReportChecksumError(ch, 3, "bad")
		},
	}
}

var _ = Describe("Messenger without a broker (behaviours §1)", func() {
	It("fails every call fast with ErrNotConnected when never connected (1.2–1.5)", func() {
		m := newMessenger(hub.MessengerConfig{})
		for name, call := range everyCall(m) {
			By(name)
			failsFast(call, hub.ErrNotConnected)
		}
	})

	It("disconnects idempotently when never connected (1.6)", func() {
		m := newMessenger(hub.MessengerConfig{})
		Expect(m.Disconnect()).To(Succeed())
		Expect(m.Disconnect()).To(Succeed())
		Expect(m.Close()).To(Succeed())
		Expect(m.Close()).To(Succeed())
	})

	It("fails Connect within its context when nothing listens, then fails calls fast", func() {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		ep := "tcp://" + l.Addr().String()
		Expect(l.Close()).To(Succeed())

		m := newMessenger(hub.MessengerConfig{})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		Expect(m.Connect(ctx, ep, "")).To(MatchError(hub.ErrNotConnected))
		for name, call := range everyCall(m) {
			By(name)
			failsFast(call, hub.ErrNotConnected)
		}
	})

	It("fails every call fast with ErrBrokerLost once the broker is gone (B-2)", func() {
		b := startBroker(brokerCfg())
		m := connected(b.Endpoint(), hub.MessengerConfig{HeartbeatInterval: 200 * time.Millisecond})
		lost := make(chan error, 1)
		m.OnBrokerLost(func(err error) { lost <- err })
		Expect(b.Close()).To(Succeed())
		Eventually(lost).WithTimeout(10 * time.Second).Should(Receive(MatchError(hub.ErrBrokerLost)))
		Expect(m.Connected()).To(BeFalse())
		for name, call := range everyCall(m) {
			By(name)
			failsFast(call, hub.ErrNotConnected, hub.ErrBrokerLost)
		}
	})

	It("refuses bad Connect arguments", func() {
		m := newMessenger(hub.MessengerConfig{})
		Expect(m.Connect(ctx5(), "", "")).To(MatchError(hub.ErrInvalidArgument))
		Expect(m.Connect(ctx5(), "tcp://127.0.0.1:1", "tooshort")).To(MatchError(hub.ErrInvalidArgument))
		Expect(m.Connect(ctx5(), "udp://x", "")).To(MatchError(hub.ErrInvalidArgument))
	})
})
