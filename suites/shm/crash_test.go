package shm_test

import (
	"context"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/shm/stress"
	"github.com/pylabhub/plh/suites/support"
)

// createStress creates the stress block in the test process (closed at the end of
// the spec) and a typed writer whose flex zone carries our pid.
func createStress(name string, sp shm.SyncPolicy, capacity uint32, wait shm.WaitOptions) (*shm.Block, *shm.TypedWriter[stress.Flex, stress.Slot]) {
	blk, err := shm.CreateTyped[stress.Flex, stress.Slot](name, shm.Config{Secret: stress.Secret, PageSize: shm.Page4K,
		Capacity: capacity, Policy: shm.PolicyRingBuffer, Sync: sp, FlexSize: 4096})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(blk.Close)
	tw, err := shm.NewTypedWriter[stress.Flex, stress.Slot](blk, wait)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(tw.Close)
	Expect(tw.UpdateFlex(func(f *stress.Flex) error { f.ProducerPid = uint64(os.Getpid()); return nil })).To(Succeed())
	return blk, tw
}

func writeStress(tw *shm.TypedWriter[stress.Flex, stress.Slot], seq uint64, timeout time.Duration) error {
	_, err := tw.Write(context.Background(), timeout, func(_ *stress.Flex, s *stress.Slot) error {
		s.Fill(seq)
		return nil
	})
	return err
}

var _ = Describe("Crash recovery with kill -9", func() {
	It("reclaims the write lock of a killed writer; a new writer goes on and readers see it", func() {
		name := support.UniqueName("killw")
		blk, _ := createStress(name, shm.LatestOnly, 4, shm.WaitOptions{})
		c := startWorker("consumer", "consume", "-name", name, "-until", "59", "-slot-timeout", "200ms")
		waitEvent(c, "ready", 20*time.Second)
		spawned := time.Now()
		w1 := startWorker("writer1", "lock", "-name", name, "-writes", "10")
		idx := int(num(waitEvent(w1, "locked", 20*time.Second), "index"))
		w1.Kill()
		d, err := blk.DiagnoseSlot(idx)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.State).To(Equal(shm.SlotWriting))
		Expect(d.IsStuck).To(BeTrue(), "lock of a killed writer must read as stuck: %+v", d)
		// B-22: the killed writer stored when it took the lock, so the stuck time
		// is real: positive, no older than the writer process, and growing.
		Expect(d.StuckDuration).To(And(BeNumerically(">", 0), BeNumerically("<=", time.Since(spawned))), "%+v", d)
		Expect(d.LockHeld).To(Equal(d.StuckDuration))
		Eventually(func() time.Duration {
			d2, _ := blk.DiagnoseSlot(idx)
			return d2.StuckDuration
		}).Should(BeNumerically(">=", d.StuckDuration+50*time.Millisecond))

		w2 := startWorker("writer2", "write", "-name", name, "-count", "50")
		done := waitEvent(w2, "done", 30*time.Second)
		Expect(num(done, "write_lock_contention")).To(BeNumerically(">=", 1))
		waitExit(w2, 10*time.Second)
		cdone := waitEvent(c, "done", 30*time.Second)
		Expect(num(cdone, "last")).To(BeEquivalentTo(59))
		Expect(num(cdone, "checksum_failures")).To(BeZero())
		waitExit(c, 10*time.Second)
		diag, err := blk.Diagnose()
		Expect(err).NotTo(HaveOccurred())
		for _, d := range diag {
			Expect(d.Writer).To(BeEmpty(), "slot %d still locked", d.Index)
		}
	})

	It("does not block the Single_reader writer longer than the heartbeat timeout after a reader holding a slot is killed", func() {
		const hbTimeout = 5 * time.Second
		name := support.UniqueName("killr")
		blk, tw := createStress(name, shm.SingleReader, 8, shm.WaitOptions{HeartbeatTimeout: hbTimeout})
		Expect(writeStress(tw, 0, 0)).To(Succeed())
		holder := startWorker("holder", "hold", "-name", name)
		Expect(num(waitEvent(holder, "holding", 20*time.Second), "id")).To(BeEquivalentTo(0))
		holder.Kill()

		c := startWorker("consumer", "consume", "-name", name, "-until", "99", "-ordered", "-slot-timeout", "1s")
		for seq := uint64(1); seq < 100; seq++ {
			Expect(writeStress(tw, seq, hbTimeout)).To(Succeed(),
				"write %d blocked longer than the heartbeat timeout %v", seq, hbTimeout)
		}
		done := waitEvent(c, "done", 30*time.Second)
		Expect(num(done, "reads")).To(BeEquivalentTo(100), "the killed reader's slot is delivered to the next reader")
		waitExit(c, 10*time.Second)
		Expect(blk.Metrics().RecoveryActions).To(BeNumerically(">=", 1))
		Expect(blk.Consumers()).To(BeEmpty())
	})

	It("drops the cursor of a killed Sync_reader consumer so the writer follows the live one", func() {
		name := support.UniqueName("killsync")
		blk, tw := createStress(name, shm.SyncReader, 4, shm.WaitOptions{HeartbeatTimeout: time.Second})
		live, err := blk.NewReader(shm.ReaderOptions{Name: "live"})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(live.Close)
		Expect(writeStress(tw, 0, 0)).To(Succeed())
		holder := startWorker("holder", "hold", "-name", name)
		waitEvent(holder, "holding", 20*time.Second)
		holder.Kill()
		for seq := uint64(1); seq < 40; seq++ {
			Expect(writeStress(tw, seq, 2*time.Second)).To(Succeed(), "write %d", seq)
			s, err := live.AcquireRead(context.Background(), time.Second)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Release()).To(Succeed())
		}
		Expect(blk.Consumers()).To(HaveLen(1))
	})
})
