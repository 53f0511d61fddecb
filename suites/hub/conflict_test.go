package hub_test

import (
	"context"
	"os"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/support"
)

type stamp struct{ V uint32 }

// writeStamp writes one slot holding v.
func writeStamp(p *hub.Producer, v uint32) {
	GinkgoHelper()
	Expect(hub.SyncedWriteTyped(context.Background(), p, time.Second, func(w hub.WriteCtx[struct{}, stamp]) error {
		s, err := w.Slot()
		if err != nil {
			return err
		}
		s.V = v
		return nil
	})).To(Succeed())
}

// readStamp reads one slot.
func readStamp(c *hub.Consumer) uint32 {
	GinkgoHelper()
	var got uint32
	Expect(hub.PullTyped(context.Background(), c, 2*time.Second, func(r hub.ReadCtx[struct{}, stamp]) error {
		s, err := r.Slot()
		if err != nil {
			return err
		}
		got = s.V
		return nil
	})).To(Succeed())
	return got
}

var _ = Describe("A producer refused on a live channel leaves the owner's segment alone", func() {
	It("a second producer with another schema is refused, the owner is told, a later consumer reads", func() {
		s := startBroker(broker.Config{})
		ma := newMessenger(s, 0, proc.Identity{})
		mb := newMessenger(s, 0, proc.Identity{Pid: 999_999_3, StartTime: 1})
		notes := &calls[hub.ChannelNotice]{}
		a := newProducer(ma, hub.ProducerOptions{SchemaHash: []byte{0xa1}, SHM: shmCfg(),
			Callbacks: hub.ProducerCallbacks{OnChannelError: notes.add}})
		_, err := hub.NewProducer(context.Background(), mb, hub.ProducerOptions{Channel: a.Channel(), SchemaHash: []byte{0xb2}, SHM: shmCfg()})
		Expect(err).To(MatchError(hub.ErrSchemaMismatch))
		Expect(err).To(MatchError(shm.ErrSegmentInUse))
		Eventually(notes.list).WithTimeout(3 * time.Second).Should(ContainElement(HaveField("Event", "schema_mismatch_attempt")))
		c := connect(ma, hub.ConsumerOptions{Channel: a.Channel(), Secret: secret})
		Expect(c.HasSHM()).To(BeTrue(), "the consumer started after the refusal could not attach: %v", c.SHMError())
		writeStamp(a, 0xC0FFEE)
		Expect(readStamp(c)).To(Equal(uint32(0xC0FFEE)))
	})

	It("a second producer with the same schema does not take over the live owner's channel", func() {
		s := startBroker(broker.Config{})
		ma := newMessenger(s, 0, proc.Identity{})
		mb := newMessenger(s, 0, proc.Identity{Pid: 999_999_4, StartTime: 1})
		a := newProducer(ma, hub.ProducerOptions{SchemaHash: []byte{0xa1}, SHM: shmCfg()})
		_, err := hub.NewProducer(context.Background(), mb, hub.ProducerOptions{Channel: a.Channel(), SchemaHash: []byte{0xa1}, SHM: shmCfg()})
		Expect(err).To(MatchError(shm.ErrSegmentInUse))
		info, err := ma.Discover(context.Background(), a.Channel())
		Expect(err).NotTo(HaveOccurred())
		Expect(info.CtrlEndpoint).To(Equal(a.Endpoint()), "the refused producer re-registered the channel")
		c := connect(ma, hub.ConsumerOptions{Channel: a.Channel(), Secret: secret})
		Expect(c.HasSHM()).To(BeTrue(), "%v", c.SHMError())
		writeStamp(a, 7)
		Expect(readStamp(c)).To(Equal(uint32(7)))
	})

	It("of two producers created at the same instant one wins, the other gets SCHEMA_MISMATCH, the winner is told", func() {
		s := startBroker(broker.Config{})
		for round := range 5 {
			name := support.UniqueName("race")
			ms := []*hub.Messenger{newMessenger(s, 0, proc.Identity{}), newMessenger(s, 0, proc.Identity{Pid: 999_999_5, StartTime: 1})}
			notes := []*calls[hub.ChannelNotice]{{}, {}}
			ps := make([]*hub.Producer, 2)
			errs := make([]error, 2)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() {
					<-start
					ps[i], errs[i] = hub.NewProducer(context.Background(), ms[i], hub.ProducerOptions{Channel: name,
						SchemaHash: []byte{byte(i + 1)}, SHM: shmCfg(), Callbacks: hub.ProducerCallbacks{OnChannelError: notes[i].add}})
				})
			}
			close(start)
			wg.Wait()
			w, l := 0, 1
			if ps[0] == nil {
				w, l = 1, 0
			}
			Expect(ps[w]).NotTo(BeNil(), "round %d: nobody won: %v / %v", round, errs[0], errs[1])
			DeferCleanup(ps[w].Close)
			Expect(ps[l]).To(BeNil(), "round %d: both won", round)
			Expect(errs[l]).To(MatchError(hub.ErrSchemaMismatch), "round %d", round)
			Eventually(notes[w].list).WithTimeout(3*time.Second).Should(ContainElement(HaveField("Event", "schema_mismatch_attempt")), "round %d", round)
			c := connect(ms[w], hub.ConsumerOptions{Channel: name, Secret: secret})
			Expect(c.HasSHM()).To(BeTrue(), "round %d: %v", round, c.SHMError())
			writeStamp(ps[w], uint32(round))
			Expect(readStamp(c)).To(Equal(uint32(round)))
			Expect(c.Close()).To(Succeed())
			Expect(ps[w].Close()).To(Succeed())
			_, err := os.Stat(shm.SegmentPath(name))
			Expect(os.IsNotExist(err)).To(BeTrue(), "segment %s left behind", name)
		}
	})
})
