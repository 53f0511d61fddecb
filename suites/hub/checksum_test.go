package hub_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/hubd"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
)

// damagedSlot sets up a channel under checksum policy policy (with the hub's
// repair hook): an SHM producer and a consumer on their own Messengers, each
// collecting its OnChannelError notices; the producer commits one slot, its
// bytes are flipped in /dev/shm (chaos.CorruptSlot), and the consumer reads it
// through the hub API, sees shm.ErrChecksum and reports it
// (ReadTxn.ReportChecksumError). It returns the channel, the slot index and the
// two parties' notices.
func damagedSlot(policy string) (ch string, idx int, pNotes, cNotes *calls[hub.ChannelNotice]) {
	cs, hook := hubd.ChecksumPolicy(policy)
	s := startBroker(broker.Config{Checksum: cs, RepairSlot: hook})
	pNotes, cNotes = &calls[hub.ChannelNotice]{}, &calls[hub.ChannelNotice]{}
	p := newProducer(newMessenger(s, 0, proc.Identity{}), hub.ProducerOptions{SHM: shmCfg(),
		Callbacks: hub.ProducerCallbacks{OnChannelError: pNotes.add}})
	c := connect(newMessenger(s, 0, proc.Identity{}), hub.ConsumerOptions{Channel: p.Channel(), Secret: secret,
		Callbacks: hub.ConsumerCallbacks{OnChannelError: cNotes.add}})
	Expect(hub.SyncedWriteTyped(context.Background(), p, time.Second, func(w hub.WriteCtx[struct{}, word]) error {
		s, err := w.Slot()
		if err == nil {
			s.V = 0xC0FFEE
		}
		return err
	})).To(Succeed())
	_, err := chaos.CorruptSlot(shm.SegmentPath(p.Channel()), "latest")
	Expect(err).NotTo(HaveOccurred())
	idx = -1
	Expect(c.Pull(context.Background(), time.Second, func(tx *hub.ReadTxn) error {
		s, err := tx.Next()
		if err != nil {
			return err
		}
		idx = s.Index()
		Expect(tx.Release()).To(MatchError(shm.ErrChecksum))
		return tx.ReportChecksumError(int32(idx), "slot checksum mismatch")
	})).To(Succeed())
	Expect(idx).To(BeNumerically(">=", 0))
	return p.Channel(), idx, pNotes, cNotes
}

// eventNotice waits until notes holds a CHANNEL_EVENT_NOTIFY and returns it.
func eventNotice(notes *calls[hub.ChannelNotice]) hub.ChannelNotice {
	var got hub.ChannelNotice
	Eventually(func() bool {
		for _, n := range notes.list() {
			if n.Type == string(proto.TypeChannelEventNotify) {
				got = n
				return true
			}
		}
		return false
	}).WithTimeout(5 * time.Second).Should(BeTrue())
	return got
}

var _ = Describe("checksum reports through the hub API (B-16, B-17)", func() {
	It("B-17: under NotifyOnly a consumer's report reaches the producer's and the consumer's OnChannelError, and the segment is never written", func() {
		ch, idx, pNotes, cNotes := damagedSlot("NotifyOnly")
		for _, notes := range []*calls[hub.ChannelNotice]{pNotes, cNotes} {
			n := eventNotice(notes)
			Expect(n.Channel).To(Equal(ch))
			Expect(n.Event).To(Equal(string(proto.TypeChannelEventNotify)))
			Expect(n.BrokerAction).To(Equal(proto.ActionNotifyOnly))
			Expect(n.SlotIndex).To(BeEquivalentTo(idx))
			Expect(n.Error).To(Equal("slot checksum mismatch"))
			Expect(n.ReporterPid).NotTo(BeZero())
		}
		rep, err := shm.Check(ch, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.BadSlots).To(Equal([]int{idx}), "NotifyOnly must leave the damaged slot as it is")
		Consistently(func() []int {
			r, _ := shm.Check(ch, false)
			return r.BadSlots
		}).WithTimeout(300 * time.Millisecond).Should(Equal([]int{idx}))
	})

	It("B-16: under Repair the hub recomputes the reported slot's hash in place and both parties are told", func() {
		ch, idx, pNotes, cNotes := damagedSlot("Repair")
		for _, notes := range []*calls[hub.ChannelNotice]{pNotes, cNotes} {
			n := eventNotice(notes)
			Expect(n.BrokerAction).To(Equal(proto.ActionRepaired), "detail %q", n.BrokerDetail)
			Expect(n.BrokerDetail).To(Equal("repaired"))
			Expect(n.SlotIndex).To(BeEquivalentTo(idx))
		}
		rep, err := shm.Check(ch, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.OK()).To(BeTrue(), "%v", rep)
		in, err := shm.Inspect(ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(in.Slots[idx].State).To(Equal(shm.SlotCommitted))
	})
})
