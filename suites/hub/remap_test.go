package hub_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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

// seqSlot is the slot of the remap specs: a sequence number.
type seqSlot struct{ N uint64 }

func writeSeq(p *hub.Producer, n uint64) error {
	return hub.SyncedWriteTyped(context.Background(), p, 5*time.Second, func(w hub.WriteCtx[struct{}, seqSlot]) error {
		s, err := w.Slot()
		if err != nil {
			return err
		}
		s.N = n
		return nil
	})
}

// pullSeq reads one slot (ErrNoSlot when none came within d).
func pullSeq(c *hub.Consumer, d time.Duration) (uint64, error) {
	var got uint64
	err := hub.PullTyped(context.Background(), c, d, func(r hub.ReadCtx[struct{}, seqSlot]) error {
		s, err := r.Slot()
		if err != nil {
			return err
		}
		got = s.N
		return nil
	})
	return got, err
}

// remapCfg is the new layout of the remap specs: a larger ring.
func remapCfg(sync shm.SyncPolicy, capacity uint32) shm.Config {
	c := *shmCfg()
	c.Sync, c.Capacity = sync, capacity
	return c
}

// notices collects a party's OnChannelError notices of one event.
func (c *calls[T]) find(match func(T) bool) (T, bool) {
	for _, v := range c.list() {
		if match(v) {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func remapEvent(ev string) func(hub.ChannelNotice) bool {
	return func(n hub.ChannelNotice) bool { return n.Event == ev }
}

var _ = Describe("Structure remapping (B-19)", func() {
	It("an ordered reader finishes the old ring, then reads the new layout: every sequence once, in order", func() {
		s, mp := brokerAndMessenger()
		mc := newMessenger(s, 0, proc.Identity{})
		name := support.UniqueName("remap")
		cfg := remapCfg(shm.SingleReader, 4)
		DeferCleanup(func() { Expect(segmentsOf(name)).To(BeEmpty(), "a segment left behind") }) // after the producer's Close
		p := newProducer(mp, hub.ProducerOptions{Channel: name, SHM: &cfg, SchemaHash: []byte("h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1h1")})
		var notes calls[hub.ChannelNotice]
		c := connect(mc, hub.ConsumerOptions{Channel: name, Secret: secret, Callbacks: hub.ConsumerCallbacks{OnChannelError: notes.add}})
		Expect(c.HasSHM()).To(BeTrue(), "%v", c.SHMError())

		for n := range uint64(4) { // the old ring is full
			Expect(writeSeq(p, n)).To(Succeed())
		}
		var got []uint64
		for range 2 {
			n, err := pullSeq(c, 2*time.Second)
			Expect(err).NotTo(HaveOccurred())
			got = append(got, n)
		}
		newHash := []byte("h2h2h2h2h2h2h2h2h2h2h2h2h2h2h2h2")
		Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: remapCfg(shm.SingleReader, 16), SchemaHash: newHash})).To(Succeed())
		Expect(p.LayoutGeneration()).To(Equal(uint64(1)))
		Expect(p.SHM().Capacity()).To(Equal(16))
		_, err := os.Stat(shm.SegmentPath(name))
		Expect(os.IsNotExist(err)).To(BeTrue(), "the old segment's name is still linked")
		for n := uint64(4); n < 20; n++ { // the new ring takes 16 before any is read
			Expect(writeSeq(p, n)).To(Succeed())
		}

		info, err := mc.Discover(context.Background(), name)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.LayoutGeneration).To(Equal(uint64(1)))
		Expect(info.SchemaHash).To(Equal(newHash))
		Expect(info.ShmName).To(Equal(name + ".remap-1"))
		list, err := mc.ListChannels(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(ContainElement(And(HaveField("Name", name), HaveField("LayoutGeneration", uint64(1)))))

		Eventually(func() []uint64 {
			n, err := pullSeq(c, 50*time.Millisecond)
			if err == nil {
				got = append(got, n)
			} else {
				Expect(err).To(MatchError(hub.ErrNoSlot), "attachment: %v; notices: %+v", c.SHMError(), notes.list())
			}
			return got
		}, 10*time.Second).Should(HaveLen(20))
		want := make([]uint64, 20)
		for i := range want {
			want[i] = uint64(i)
		}
		Expect(got).To(Equal(want), "a sequence lost, repeated or reordered across the remap")
		Expect(c.SHM().Capacity()).To(Equal(16), "the consumer reads the new geometry")
		Expect(c.Info().LayoutGeneration).To(Equal(uint64(1)))
		Eventually(func() bool { _, ok := notes.find(remapEvent(hub.EventRemapped)); return ok }, 5*time.Second).Should(BeTrue())
		n, _ := notes.find(remapEvent(hub.EventRemapped))
		Expect(n.Remap.FinalSeq).To(Equal(uint64(4)))
		Expect(n.Remap.Read).To(Equal(uint64(4)), "the old ring was not read to its final sequence")
		Expect(n.Remap.Generation).To(Equal(uint64(1)))
		Expect(segmentsOf(name)).To(ConsistOf(name+".remap-1"), "segments of the channel")
	})

	It("a concurrent writer and two Sync_reader readers across three remaps: each reads every item once, in order", func() {
		s, mp := brokerAndMessenger()
		name := support.UniqueName("remap")
		cfg := remapCfg(shm.SyncReader, 4)
		DeferCleanup(func() { Expect(segmentsOf(name)).To(BeEmpty(), "a segment left behind") })
		p := newProducer(mp, hub.ProducerOptions{Channel: name, SHM: &cfg})
		type reader struct {
			c   *hub.Consumer
			mu  sync.Mutex
			got []uint64
		}
		readers := make([]*reader, 2)
		for i := range readers {
			r := &reader{c: connect(newMessenger(s, 0, proc.Identity{}), hub.ConsumerOptions{Channel: name, Secret: secret})}
			Expect(r.c.HasSHM()).To(BeTrue(), "%v", r.c.SHMError())
			Expect(hub.SetReadHandlerTyped(r.c, func(t hub.ReadCtx[struct{}, seqSlot]) error {
				s, err := t.Slot()
				if err != nil {
					return err
				}
				r.mu.Lock()
				r.got = append(r.got, s.N)
				r.mu.Unlock()
				return nil
			})).To(Succeed())
			Expect(r.c.Start()).To(Succeed())
			DeferCleanup(r.c.Stop)
			readers[i] = r
		}
		const total = 300
		errc := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			for n := range uint64(total) {
				if n > 0 && n%75 == 0 {
					gen := n / 75
					if err := p.Remap(context.Background(), hub.RemapOptions{SHM: remapCfg(shm.SyncReader, uint32(4+4*gen))}); err != nil {
						errc <- fmt.Errorf("remap %d: %w", gen, err)
						return
					}
				}
				if err := writeSeq(p, n); err != nil {
					errc <- fmt.Errorf("write %d: %w", n, err)
					return
				}
			}
			errc <- nil
		}()
		Eventually(errc, 30*time.Second).Should(Receive(BeNil()))
		want := make([]uint64, total)
		for i := range want {
			want[i] = uint64(i)
		}
		for i, r := range readers {
			Eventually(func() []uint64 {
				r.mu.Lock()
				defer r.mu.Unlock()
				return append([]uint64(nil), r.got...)
			}, 15*time.Second).Should(Equal(want), "reader %d", i)
			Expect(r.c.SHM().Capacity()).To(Equal(16))
		}
		Expect(p.LayoutGeneration()).To(Equal(uint64(3)))
		Expect(segmentsOf(name)).To(ConsistOf(name + ".remap-3"))
	})

	It("a latest-only reader moves to the new layout at once", func() {
		s, mp := brokerAndMessenger()
		name := support.UniqueName("remap")
		cfg := remapCfg(shm.LatestOnly, 4)
		p := newProducer(mp, hub.ProducerOptions{Channel: name, SHM: &cfg})
		var notes calls[hub.ChannelNotice]
		c := connect(newMessenger(s, 0, proc.Identity{}), hub.ConsumerOptions{Channel: name, Secret: secret,
			Callbacks: hub.ConsumerCallbacks{OnChannelError: notes.add}})
		Expect(writeSeq(p, 1)).To(Succeed())
		Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: remapCfg(shm.LatestOnly, 8)})).To(Succeed())
		Eventually(func() bool { _, ok := notes.find(remapEvent(hub.EventRemapped)); return ok }, 5*time.Second).Should(BeTrue())
		Expect(c.SHM().Capacity()).To(Equal(8))
		Expect(writeSeq(p, 2)).To(Succeed())
		Expect(pullSeq(c, 2*time.Second)).To(Equal(uint64(2)))
	})

	It("a consumer that cannot take the new layout is told through OnChannelError, and Pull fails at once", func() {
		s, mp := brokerAndMessenger()
		name := support.UniqueName("remap")
		cfg := remapCfg(shm.SingleReader, 4)
		p := newProducer(mp, hub.ProducerOptions{Channel: name, SHM: &cfg})
		var notes calls[hub.ChannelNotice]
		c := connect(newMessenger(s, 0, proc.Identity{}), hub.ConsumerOptions{Channel: name, Secret: secret, ExpectSHM: &cfg,
			Callbacks: hub.ConsumerCallbacks{OnChannelError: notes.add}})
		Expect(c.HasSHM()).To(BeTrue(), "%v", c.SHMError())
		Expect(writeSeq(p, 7)).To(Succeed())
		Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: remapCfg(shm.SingleReader, 8)})).To(Succeed())
		Expect(pullSeq(c, 2*time.Second)).To(Equal(uint64(7)), "the old ring is still read to its end")
		Eventually(func() bool {
			_, err := pullSeq(c, 50*time.Millisecond)
			return errors.Is(err, hub.ErrNoSHM)
		}, 5*time.Second).Should(BeTrue())
		n, ok := notes.find(remapEvent(hub.EventRemapFailed))
		Expect(ok).To(BeTrue(), "no remap_failed notice: %+v", notes.list())
		Expect(n.Error).To(ContainSubstring("capacity"))
		Expect(errors.Is(c.SHMError(), shm.ErrConfigMismatch)).To(BeTrue(), "%v", c.SHMError())
		start := time.Now()
		_, err := pullSeq(c, 2*time.Second)
		Expect(err).To(MatchError(hub.ErrNoSHM))
		Expect(time.Since(start)).To(BeNumerically("<", time.Second), "Pull waited")
	})

	It("is refused without shared memory and after Close; a refused remap changes nothing", func() {
		_, mp := brokerAndMessenger()
		p := newProducer(mp, hub.ProducerOptions{})
		Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: remapCfg(shm.SingleReader, 8)})).To(MatchError(hub.ErrNoSHM))
		cfg := remapCfg(shm.SingleReader, 4)
		q := newProducer(mp, hub.ProducerOptions{SHM: &cfg})
		bad := remapCfg(shm.SingleReader, 0) // capacity 0: no segment
		Expect(q.Remap(context.Background(), hub.RemapOptions{SHM: bad})).NotTo(Succeed())
		Expect(q.LayoutGeneration()).To(BeZero())
		Expect(segmentsOf(q.Channel())).To(ConsistOf(q.Channel()))
		Expect(q.Close()).To(Succeed())
		Expect(q.Remap(context.Background(), hub.RemapOptions{SHM: remapCfg(shm.SingleReader, 8)})).To(MatchError(hub.ErrClosed))
	})
})

var _ = Describe("A producer killed during a structure remap (B-19)", func() {
	It("its consumer drains, moves, follows the successor, and no segment of the dead producer is left", func() {
		s := startBroker(broker.Config{ChannelTimeout: 30 * time.Second})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("remapkill")
		DeferCleanup(func() { Expect(segmentsOf(ch)).To(BeEmpty(), "a segment left behind") })
		common := []string{"--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch,
			"--shm", "--policy", "single", "--slots", "4", "--secret", "0xF012", "--schema", "remap.v1"}
		p1 := node("p1", append(common, "--rate", "400", "--remap-after", "40", "--remap-slots", "8")...)
		DeferCleanup(func() { _ = shm.Remove(ch + ".remap-1") }) // only if the spec failed before the sweep
		Eventually(saw(p1, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		var notes calls[hub.ChannelNotice]
		restarted := &calls[hub.ChannelInfo]{}
		c := connect(m, hub.ConsumerOptions{Channel: ch, Secret: 0xF012, ProducerLostAfter: 300 * time.Millisecond,
			Callbacks: hub.ConsumerCallbacks{OnChannelError: notes.add, OnProducerRestarted: restarted.add}})
		var mu sync.Mutex
		var got []uint64
		Expect(c.SetReadHandler(func(t *hub.ReadTxn) error {
			sl, err := t.Next()
			if err != nil {
				return err
			}
			mu.Lock()
			got = append(got, binary.LittleEndian.Uint64(sl.Bytes()))
			mu.Unlock()
			return nil
		})).To(Succeed())
		Expect(c.Start()).To(Succeed())
		DeferCleanup(c.Stop)

		Eventually(saw(p1, "remap", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		p1.Kill() // SIGKILL, right after the remap: both of its segments stay in /dev/shm
		Eventually(func() bool { _, ok := notes.find(remapEvent(hub.EventRemapped)); return ok }, 10*time.Second).Should(BeTrue())
		n, _ := notes.find(remapEvent(hub.EventRemapped))
		Expect(n.Remap.Read).To(Equal(n.Remap.FinalSeq), "the old ring was not drained")
		Expect(n.Remap.FinalSeq).To(Equal(uint64(40)))

		p2 := node("p2", append(common, "--rate", "200", "--count", "30", "--linger", "1m")...)
		Eventually(saw(p2, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		Eventually(restarted.n).WithTimeout(20 * time.Second).Should(Equal(1))
		Eventually(func() []string { return segmentsOf(ch) }).WithTimeout(10*time.Second).Should(ConsistOf(ch),
			"the dead producer's remapped segment was not removed once its consumer left it")
		Eventually(func() int { mu.Lock(); defer mu.Unlock(); return len(got) }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 40+30))
	})
})
