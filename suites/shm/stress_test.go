package shm_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

// spec behaviours §8: RAII stress with real processes.
var _ = Describe("DataBlock stress (behaviours §8)", func() {
	It("§8.1 carries 500 × 4 KiB through a 32-slot Latest_only ring to two racing consumer processes", func() {
		name := support.UniqueName("s81")
		prod := startWorker("producer", "produce", "-name", name, "-create", "-sync", "latest", "-cap", "32",
			"-count", "500", "-slot-timeout", "50ms", "-retries", "500", "-max-sleep", "5ms", "-wait-consumers", "2")
		waitEvent(prod, "ready", 20*time.Second)
		c1 := startWorker("consumer1", "consume", "-name", name, "-until", "499", "-slot-timeout", "50ms", "-max-sleep", "10ms")
		c2 := startWorker("consumer2", "consume", "-name", name, "-until", "499", "-slot-timeout", "50ms", "-max-sleep", "10ms")
		for _, c := range []*support.Proc{c1, c2} {
			done := waitEvent(c, "done", 60*time.Second)
			Expect(num(done, "last")).To(BeEquivalentTo(499))
			Expect(num(done, "reads")).To(BeNumerically(">=", 1))
			Expect(num(done, "max_consecutive_timeouts")).To(BeNumerically("<", 200))
			Expect(num(done, "checksum_failures")).To(BeZero())
			waitExit(c, 10*time.Second)
		}
		waitEvent(prod, "done", 30*time.Second)
		waitExit(prod, 10*time.Second)
	})

	It("§8.2 delivers 100 slots through a Single_reader ring of 8 to a slow consumer exactly once, in order", func() {
		name := support.UniqueName("s82")
		prod := startWorker("producer", "produce", "-name", name, "-create", "-sync", "single", "-cap", "8",
			"-count", "100", "-slot-timeout", "200ms", "-retries", "1000")
		waitEvent(prod, "ready", 20*time.Second)
		c := startWorker("consumer", "consume", "-name", name, "-until", "99", "-ordered", "-slot-timeout", "200ms", "-max-sleep", "20ms")
		done := waitEvent(c, "done", 60*time.Second)
		Expect(num(done, "reads")).To(BeEquivalentTo(100), "every sequence exactly once (the worker fails on a gap or repeat)")
		Expect(num(done, "last")).To(BeEquivalentTo(99))
		Expect(num(done, "checksum_failures")).To(BeZero())
		waitExit(c, 10*time.Second)
		waitEvent(prod, "done", 30*time.Second)
		waitExit(prod, 10*time.Second)
	})
})
