package hub_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
)

var _ = Describe("Broker health and notifications (behaviours §7)", func() {
	It("7.1 a producer whose heartbeats stop gets CHANNEL_CLOSING", func() {
		s := startBroker(broker.Config{ChannelTimeout: 300 * time.Millisecond, LivenessInterval: -1})
		m := newMessenger(s, time.Second, proc.Identity{}) // heartbeat period > channel timeout
		closing := &calls[string]{}
		p := newProducer(m, hub.ProducerOptions{Callbacks: hub.ProducerCallbacks{OnChannelClosing: closing.add}})
		Expect(p.Start()).To(Succeed())
		p.Stop() // stop() does not stop broker heartbeats: the closing comes from their period
		Eventually(closing.list).WithTimeout(4 * time.Second).Should(ConsistOf("heartbeat_timeout"))
	})

	It("7.2 a closed consumer is deregistered at once", func() {
		s := startBroker(broker.Config{})
		m := newMessenger(s, 0, proc.Identity{})
		p := newProducer(m, hub.ProducerOptions{})
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		info, err := m.Discover(context.Background(), p.Channel())
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ConsumerCount).To(BeEquivalentTo(1))
		Expect(c.Close()).To(Succeed())
		info, err = m.Discover(context.Background(), p.Channel())
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ConsumerCount).To(BeEquivalentTo(0))
	})

	It("7.3 a closed producer's name can be registered again at once", func() {
		s := startBroker(broker.Config{ChannelTimeout: 30 * time.Second})
		m := newMessenger(s, 0, proc.Identity{})
		a := newProducer(m, hub.ProducerOptions{SchemaHash: []byte{1}})
		Expect(a.Close()).To(Succeed())
		newProducer(m, hub.ProducerOptions{Channel: a.Channel(), SchemaHash: []byte{2}})
	})

	It("7.5 a conflicting producer is refused and the owner hears of it", func() {
		s := startBroker(broker.Config{})
		ma := newMessenger(s, 0, proc.Identity{})
		mb := newMessenger(s, 0, proc.Identity{Pid: 999_999_1, StartTime: 1})
		notes := &calls[hub.ChannelNotice]{}
		a := newProducer(ma, hub.ProducerOptions{SchemaHash: []byte{0xaa, 0xbb, 0xcc, 0xdd},
			Callbacks: hub.ProducerCallbacks{OnChannelError: notes.add}})
		_, err := hub.NewProducer(context.Background(), mb, hub.ProducerOptions{Channel: a.Channel(), SchemaHash: []byte{0x11, 0x22, 0x33, 0x44}})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))
		Eventually(notes.list).WithTimeout(3 * time.Second).Should(ContainElement(HaveField("Event", "schema_mismatch_attempt")))
		// The refused producer left nothing behind: the owner still works.
		Expect(a.Valid()).To(BeTrue())
	})

	It("rolls back the segment when registration fails", func() {
		s := startBroker(broker.Config{})
		ma := newMessenger(s, 0, proc.Identity{})
		mb := newMessenger(s, 0, proc.Identity{Pid: 999_999_2, StartTime: 1})
		a := newProducer(ma, hub.ProducerOptions{SchemaHash: []byte{1}})
		newProducer(mb, hub.ProducerOptions{Channel: a.Channel() + "_b", SHM: shmCfg()}) // a different channel works...
		_, err := hub.NewProducer(context.Background(), mb, hub.ProducerOptions{Channel: a.Channel(), SchemaHash: []byte{2}, SHM: shmCfg()})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))
		// ...but the refused one removed the segment it created before registering
		// (it replaced a's name: a has no SHM, so nothing of a's is lost).
		Expect(segmentsOf(a.Channel())).To(ConsistOf(a.Channel() + "_b"))
	})
})
