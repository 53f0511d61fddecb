package shm_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/shm/stress"
	"github.com/pylabhub/plh/suites/support"
)

func rawConfig(n uint32, sp shm.SyncPolicy) shm.Config {
	return shm.Config{Secret: stress.Secret, PageSize: shm.Page4K, Capacity: n, Policy: shm.PolicyRingBuffer, Sync: sp}
}

func create(name string, cfg shm.Config) *shm.Block {
	b, err := shm.Create(name, cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(b.Close)
	return b
}

func writer(b *shm.Block) *shm.Writer {
	w, err := b.NewWriter(shm.WaitOptions{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(w.Close)
	return w
}

func reader(b *shm.Block, name string) *shm.Reader {
	r, err := b.NewReader(shm.ReaderOptions{Name: name})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(r.Close)
	return r
}

func put(w *shm.Writer, v uint64, timeout time.Duration) error {
	_, err := w.Write(context.Background(), timeout, binary.LittleEndian.AppendUint64(nil, v))
	return err
}

func get(r *shm.Reader, timeout time.Duration) (uint64, error) {
	s, err := r.AcquireRead(context.Background(), timeout)
	if err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(s.Bytes())
	return v, s.Release()
}

// spec behaviours §9, with the other party in a real process where one is involved.
var _ = Describe("DataBlock behaviours (§9)", func() {
	It("§9.1 drains a Latest_only slot held by a reader process, and restores it on writer timeout", func() {
		name := support.UniqueName("drain")
		blk, tw := createStress(name, shm.LatestOnly, 1, shm.WaitOptions{})
		Expect(writeStress(tw, 0, 0)).To(Succeed())
		holder := startWorker("holder", "hold", "-name", name)
		waitEvent(holder, "holding", 20*time.Second)

		Expect(writeStress(tw, 1, 30*time.Millisecond)).To(MatchError(shm.ErrTimeout))
		d, _ := blk.DiagnoseSlot(0)
		Expect(d.State).To(Equal(shm.SlotCommitted), "a short writer timeout restores COMMITTED")
		late := reader(blk, "late")
		s, err := late.AcquireRead(context.Background(), 0)
		Expect(err).NotTo(HaveOccurred(), "old data stays readable")
		Expect(s.Release()).To(Succeed())

		result := make(chan error, 1)
		go func() { result <- writeStress(tw, 1, 30*time.Second) }()
		Eventually(func() shm.SlotState { d, _ := blk.DiagnoseSlot(0); return d.State }).WithTimeout(10 * time.Second).Should(Equal(shm.SlotDraining))
		_, err = late.AcquireRead(context.Background(), 0)
		Expect(err).To(MatchError(shm.ErrTimeout), "new reads fail while DRAINING")
		Expect(holder.Signal(syscall.SIGTERM)).To(Succeed())
		waitEvent(holder, "released", 10*time.Second)
		Eventually(result).WithTimeout(10 * time.Second).Should(Receive(BeNil()))
		d, _ = blk.DiagnoseSlot(0)
		Expect(d.State).To(Equal(shm.SlotCommitted))
		waitExit(holder, 10*time.Second)
		Expect(blk.Metrics().ReaderRaceDetected).To(BeZero())
	})

	It("§9.2 slot protocol: abort invisible, Latest_only newest, Single_reader in order, full/empty single attempts", func() {
		b := create(support.UniqueName("proto"), rawConfig(3, shm.SingleReader))
		w, r := writer(b), reader(b, "r")
		_, err := r.AcquireRead(context.Background(), 0)
		Expect(err).To(MatchError(shm.ErrTimeout))
		for i := uint64(1); i <= 3; i++ {
			Expect(put(w, i, 0)).To(Succeed())
		}
		Expect(put(w, 4, 0)).To(MatchError(shm.ErrTimeout))
		for i := uint64(1); i <= 3; i++ {
			Expect(get(r, 0)).To(Equal(i))
		}
		Expect(b.Metrics().TotalSlotsWritten).To(BeEquivalentTo(3))

		l := create(support.UniqueName("proto"), rawConfig(4, shm.LatestOnly))
		lw, lr := writer(l), reader(l, "r")
		s, err := lw.AcquireWrite(context.Background(), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Release()).To(Succeed())
		Expect(l.Metrics().TotalSlotsWritten).To(BeZero())
		for i := uint64(1); i <= 3; i++ {
			Expect(put(lw, i, 0)).To(Succeed())
		}
		Expect(get(lr, 0)).To(Equal(uint64(3)))
	})

	It("§9.3 consumer processes register heartbeat entries at attach and free them at exit", func() {
		name := support.UniqueName("hb")
		blk, _ := createStress(name, shm.SyncReader, 4, shm.WaitOptions{})
		a := startWorker("attacher", "attach", "-name", name)
		waitEvent(a, "attached", 20*time.Second)
		cs := blk.Consumers()
		Expect(cs).To(HaveLen(1))
		Expect(cs[0].Pid).To(Equal(a.Cmd.Process.Pid))
		Expect(cs[0].UID).To(Equal("attach-uid"))
		Expect(a.Stop(10 * time.Second)).To(Succeed())
		Expect(blk.Consumers()).To(BeEmpty())
		Expect(blk.Metrics().ActiveConsumers).To(BeZero())
	})

	It("§9.4 rejects unset policy, sync policy, page size and capacity 0 before creating anything", func() {
		for _, mut := range []func(*shm.Config){
			func(c *shm.Config) { c.Policy = shm.PolicyUnset },
			func(c *shm.Config) { c.Sync = shm.SyncUnset },
			func(c *shm.Config) { c.PageSize = 0 },
			func(c *shm.Config) { c.Capacity = 0 },
		} {
			cfg := rawConfig(2, shm.LatestOnly)
			mut(&cfg)
			_, err := shm.Create(support.UniqueName("cfg"), cfg)
			Expect(err).To(MatchError(shm.ErrInvalidConfig))
		}
		create(support.UniqueName("cfg"), rawConfig(2, shm.LatestOnly))
	})

	It("§9.5 a consumer process with another slot schema cannot attach; a matching one can", func() {
		name := support.UniqueName("schema")
		createStress(name, shm.LatestOnly, 4, shm.WaitOptions{})
		bad := startWorker("wrong-type", "attach", "-name", name, "-wrong-type")
		ev := waitEvent(bad, "attach_failed", 20*time.Second)
		Expect(ev.Fields["schema_mismatch"]).To(BeTrue())
		waitExit(bad, 10*time.Second)
		good := startWorker("right-type", "attach", "-name", name)
		waitEvent(good, "attached", 20*time.Second)
		Expect(good.Stop(10 * time.Second)).To(Succeed())
	})

	It("§9.6 recovers what killed processes held: zombie writer, dead consumer, integrity check", func() {
		name := support.UniqueName("recover")
		blk, tw := createStress(name, shm.LatestOnly, 4, shm.WaitOptions{})
		Expect(writeStress(tw, 0, 0)).To(Succeed())
		holder := startWorker("holder", "hold", "-name", name)
		held := int(num(waitEvent(holder, "holding", 20*time.Second), "index"))
		locker := startWorker("locker", "lock", "-name", name, "-writes", "1")
		locked := int(num(waitEvent(locker, "locked", 20*time.Second), "index"))
		Expect(blk.ReleaseZombieWriter(locked)).To(Equal(shm.RecoveryUnsafe), "the locker is alive")
		holder.Kill()
		locker.Kill()

		rep, err := shm.Check(name, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.OK()).To(BeFalse())
		Expect(rep.Problems).To(ContainElement(ContainSubstring("dead writer")))
		Expect(rep.Problems).To(ContainElement(ContainSubstring("dead process")))

		Expect(blk.ReleaseZombieWriter(locked)).To(Equal(shm.RecoverySuccess))
		d, _ := blk.DiagnoseSlot(held)
		Expect(d.ReaderCount).To(BeEquivalentTo(1))
		n, err := blk.CleanupDeadConsumers()
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(1))
		d, _ = blk.DiagnoseSlot(held)
		Expect(d.ReaderCount).To(BeZero(), "the dead consumer's hold is given back")
		rep, err = shm.Check(name, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Problems).To(BeEmpty())
	})

	It("§9.7 a write-attaching process shares data; the segment outlives it; a wrong secret cannot attach", func() {
		name := support.UniqueName("wattach")
		blk, _ := createStress(name, shm.LatestOnly, 4, shm.WaitOptions{})
		tr, err := shm.NewTypedReader[stress.Flex, stress.Slot](blk, shm.ReaderOptions{Name: "r"})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(tr.Close)
		w := startWorker("writer", "write", "-name", name, "-count", "5")
		waitExit(w, 20*time.Second)
		_, err = os.Stat(shm.SegmentPath(name))
		Expect(err).NotTo(HaveOccurred(), "the segment persists after the write-attacher left")
		var seq uint64
		_, err = tr.Read(context.Background(), time.Second, func(_ *stress.Flex, s *stress.Slot) error {
			seq = s.Sequence
			return s.Verify()
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(seq).To(BeEquivalentTo(4))
		_, err = shm.Attach(name, stress.Secret+1, nil)
		Expect(err).To(MatchError(shm.ErrSecret))
	})

	It("§9.8 an error inside a transaction aborts the slot; both sides stay usable", func() {
		name := support.UniqueName("exc")
		_, tw := createStress(name, shm.SingleReader, 4, shm.WaitOptions{})
		peer, err := shm.AttachTyped[stress.Flex, stress.Slot](name, stress.Secret, nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(peer.Close)
		tr, err := shm.NewTypedReader[stress.Flex, stress.Slot](peer, shm.ReaderOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(tr.Close)
		boom := errors.New("boom")
		_, err = tw.Write(context.Background(), 0, func(*stress.Flex, *stress.Slot) error { return boom })
		Expect(err).To(MatchError(boom))
		Expect(writeStress(tw, 1, 0)).To(Succeed())
		_, err = tr.Read(context.Background(), time.Second, func(*stress.Flex, *stress.Slot) error { return boom })
		Expect(err).To(MatchError(boom))
		var seq uint64
		_, err = tr.Read(context.Background(), time.Second, func(_ *stress.Flex, s *stress.Slot) error { seq = s.Sequence; return nil })
		Expect(err).NotTo(HaveOccurred())
		Expect(seq).To(BeEquivalentTo(1), "the aborted slot was skipped, the failed read offered again")
	})

	It("gives a consumer process an error, not a crash, when the segment file is shrunk under it", func() {
		name := support.UniqueName("shrink")
		_, tw := createStress(name, shm.LatestOnly, 4, shm.WaitOptions{})
		c := startBinary("worker-norace", "consumer", "consume", "-name", name, "-until", "1000000", "-slot-timeout", "20ms")
		waitEvent(c, "ready", 20*time.Second)
		Expect(writeStress(tw, 0, 0)).To(Succeed())
		Expect(os.Truncate(shm.SegmentPath(name), 0)).To(Succeed())
		ev := waitEvent(c, "error", 20*time.Second)
		Expect(ev.Str("err")).To(ContainSubstring("fault"))
		Eventually(c.Done()).WithTimeout(10 * time.Second).Should(BeClosed())
		_, code := c.Exited()
		Expect(code).To(Equal(1), "a clean exit with status 1, not death by SIGBUS")
	})

	It("sweeps the leftover segment of a killed creator", func() {
		name := support.UniqueName("sweep")
		p := startWorker("creator", "produce", "-name", name, "-create", "-sync", "single", "-cap", "2", "-count", "10")
		waitEvent(p, "ready", 20*time.Second)
		p.Kill()
		removed, err := shm.Sweep(shm.SweepOptions{Prefix: name})
		Expect(err).NotTo(HaveOccurred())
		Expect(removed).To(ConsistOf(name))
	})
})
