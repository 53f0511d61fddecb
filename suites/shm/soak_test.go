package shm_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/shm/stress"
	"github.com/pylabhub/plh/suites/support"
)

// Kill -9 at arbitrary instructions, many times: after each round the block must
// still work for a new writer and reader and pass the integrity check.
var _ = Describe("Random kill -9 soak", Label("soak"), func() {
	for _, sp := range []shm.SyncPolicy{shm.LatestOnly, shm.SingleReader, shm.SyncReader} {
		It("survives repeated kills of writer and reader processes under "+sp.String(), func() {
			name := support.UniqueName("soak")
			blk, tw := createStress(name, sp, 8, shm.WaitOptions{HeartbeatTimeout: 400 * time.Millisecond})
			tr, err := shm.NewTypedReader[stress.Flex, stress.Slot](blk, shm.ReaderOptions{Name: "checker", Wait: shm.WaitOptions{HeartbeatTimeout: 400 * time.Millisecond}})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(tr.Close)
			for round := range 25 {
				w := startWorker("writer", "write", "-name", name, "-count", "100000000")
				c := startWorker("consumer", "consume", "-name", name, "-until", "100000000000", "-slot-timeout", "1s")
				waitEvent(w, "ready", 20*time.Second)
				waitEvent(c, "ready", 20*time.Second)
				time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond) // fault injection point, not a wait
				for _, p := range []*support.Proc{w, c} {
					p.Kill()
					_, found := p.Find("error", nil)
					Expect(found).To(BeFalse(), "round %d: %s reported an error before the kill: %s", round, p.Name, p.Stderr())
				}
				// Under ordered policies the dead consumer may have left the ring full: our
				// reader drains it first (stepping over what dead writers left unfinished).
				for sp != shm.LatestOnly {
					_, err := tr.Read(context.Background(), 500*time.Millisecond, func(_ *stress.Flex, s *stress.Slot) error { return s.Verify() })
					if errors.Is(err, shm.ErrTimeout) {
						break
					}
					Expect(err).NotTo(HaveOccurred(), "round %d drain", round)
				}
				// A new writer and reader go on: everything written is read back verified.
				next := blk.Metrics().TotalSlotsWritten // continue the stream: workers number from it too
				for i := range uint64(20) {
					Expect(writeStress(tw, next+i, 5*time.Second)).To(Succeed(), "round %d write %d", round, i)
					var got uint64
					for got != next+i {
						_, err := tr.Read(context.Background(), 5*time.Second, func(_ *stress.Flex, s *stress.Slot) error {
							got = s.Sequence
							return s.Verify()
						})
						Expect(err).NotTo(HaveOccurred(), "round %d read", round)
					}
				}
				_, err := blk.CleanupDeadConsumers()
				Expect(err).NotTo(HaveOccurred())
				rep, err := blk.Check(false)
				Expect(err).NotTo(HaveOccurred())
				Expect(rep.Problems).To(BeEmpty(), "round %d", round)
			}
		})
	}
})
