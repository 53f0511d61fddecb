package hub_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/suites/support"
)

// Consumer-side producer-loss detection (ConsumerOptions.ProducerLostAfter,
// OnProducerLost): the peer link, not the broker, tells the consumer.
var _ = Describe("Producer lost (consumer side, peer link)", func() {
	// brokerTimeout is far above every deadline below, so no spec can pass
	// through the broker's CHANNEL_CLOSING_NOTIFY path.
	const brokerTimeout = 30 * time.Second

	It("a producer process killed with SIGKILL: OnProducerLost once, long before the broker's channel timeout; plh-node emits producer_lost", func() {
		s := startBroker(broker.Config{ChannelTimeout: brokerTimeout})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("plost")
		p := node("p", "--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch, "--rate", "100")
		Eventually(saw(p, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		lost, bye, closing := &calls[time.Time]{}, &calls[bool]{}, &calls[string]{}
		c := connect(m, hub.ConsumerOptions{Channel: ch, ProducerLostAfter: 500 * time.Millisecond, Callbacks: hub.ConsumerCallbacks{
			OnProducerLost:   func() { lost.add(time.Now()) },
			OnProducerBye:    func() { bye.add(true) },
			OnChannelClosing: closing.add,
		}})
		Expect(c.Start()).To(Succeed())
		_, err := recv(c, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		nc := node("c", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch)
		Eventually(saw(nc, "read", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		Expect(c.ProducerLost()).To(BeFalse())

		killed := time.Now()
		p.Kill()
		Eventually(lost.n).WithTimeout(10 * time.Second).Should(Equal(1))
		Expect(lost.list()[0].Sub(killed)).To(BeNumerically("<", brokerTimeout/3))
		Expect(c.ProducerLost()).To(BeTrue())
		Expect(c.ProducerGone()).To(BeFalse())
		Expect(closing.list()).To(BeEmpty(), "the broker path fired: the spec proves nothing")
		Eventually(saw(nc, "producer_lost", func(e event.Event) bool { return e.Str("channel") == ch })).
			WithTimeout(10 * time.Second).Should(BeTrue())
		// The Dealer keeps redialling the dead endpoint meanwhile: still once.
		Consistently(lost.n).WithTimeout(time.Second).Should(Equal(1))
		Expect(nc.Count("producer_lost", nil)).To(Equal(1))
		Expect(bye.list()).To(BeEmpty())
		done, _ := nc.Exited()
		Expect(done).To(BeFalse(), "producer_lost must not end the plh-node consumer")
	})

	It("a producer that closes cleanly: OnProducerBye, never OnProducerLost", func() {
		s := startBroker(broker.Config{ChannelTimeout: brokerTimeout})
		m := newMessenger(s, 0, proc.Identity{})
		p := newProducer(m, hub.ProducerOptions{})
		Expect(p.Start()).To(Succeed())
		const grace = 300 * time.Millisecond
		lost, bye := &calls[bool]{}, &calls[bool]{}
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel(), ProducerLostAfter: grace, Callbacks: hub.ConsumerCallbacks{
			OnProducerLost: func() { lost.add(true) },
			OnProducerBye:  func() { bye.add(true) },
		}})
		Expect(c.Start()).To(Succeed())
		Expect(p.Close()).To(Succeed()) // BYE, then its peer socket closes: the consumer's link is lost
		Eventually(bye.n).WithTimeout(5 * time.Second).Should(Equal(1))
		Expect(c.ProducerGone()).To(BeTrue())
		Consistently(lost.n).WithTimeout(5 * grace).Should(BeZero())
		Expect(c.ProducerLost()).To(BeFalse())
	})
})
