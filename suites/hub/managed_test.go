package hub_test

import (
	"context"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/support"
)

var _ = Describe("managed wrappers (api.md §6, behaviour 6.8)", func() {
	var m *hub.Messenger
	BeforeEach(func() {
		m = newMessenger(startBroker(broker.Config{}), 0, proc.Identity{})
	})

	It("create nothing before Start, run between Start and Stop, and close on Stop", func() {
		channel := support.UniqueName("managed")
		mp := hub.NewManagedProducer(m, hub.ProducerOptions{Channel: channel, SHM: shmCfg()})
		mc := hub.NewManagedConsumer(m, hub.ConsumerOptions{Channel: channel, Secret: secret})
		Expect(mp.Name()).To(Equal("pylabhub::hub::Producer::" + channel))
		Expect(mc.Name()).To(Equal("pylabhub::hub::Consumer::" + channel))

		// Before Start: not initialised, nothing registered, no segment.
		Expect(mp.Initialized()).To(BeFalse())
		_, err := mp.Get()
		Expect(err).To(MatchError(hub.ErrNotInitialized))
		_, err = m.Discover(context.Background(), channel)
		Expect(err).To(HaveOccurred())
		_, err = os.Stat(shm.SegmentPath(channel))
		Expect(os.IsNotExist(err)).To(BeTrue())

		ctx := context.Background()
		Expect(mp.Start(ctx)).To(Succeed())
		DeferCleanup(mp.Stop)
		Expect(mp.Start(ctx)).NotTo(Succeed(), "a second Start is refused")
		Expect(mc.Start(ctx)).To(Succeed())
		DeferCleanup(mc.Stop)

		p, err := mp.Get()
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Running()).To(BeTrue())
		c, err := mc.Get()
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Running()).To(BeTrue())
		Expect(c.HasSHM()).To(BeTrue())
		Eventually(p.ConnectedConsumers).Should(HaveLen(1))

		Expect(mc.Stop()).To(Succeed())
		Expect(mc.Stop()).To(Succeed(), "Stop is idempotent")
		Expect(c.Valid()).To(BeFalse())
		Expect(mp.Stop()).To(Succeed())
		Expect(p.Valid()).To(BeFalse())
		Expect(mp.Initialized()).To(BeFalse())
		_, err = os.Stat(shm.SegmentPath(channel))
		Expect(os.IsNotExist(err)).To(BeTrue(), "Stop closed the producer and removed its segment")
	})

	It("leave nothing behind when creation fails", func() {
		mc := hub.NewManagedConsumer(m, hub.ConsumerOptions{Channel: support.UniqueName("absent"), Timeout: 300 * time.Millisecond})
		Expect(mc.Start(context.Background())).To(MatchError(hub.ErrChannelNotFound))
		Expect(mc.Initialized()).To(BeFalse())
		Expect(mc.Stop()).To(Succeed())
	})
})
