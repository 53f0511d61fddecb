package hub_test

import (
	"fmt"
	"os"
	"runtime"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
)

// openFDs counts this process's open descriptors.
func openFDs() int {
	e, err := os.ReadDir("/proc/self/fd")
	Expect(err).NotTo(HaveOccurred())
	return len(e)
}

// The figures of docs/design.md "B-12 Connection pooling": what a channel costs
// a process today, kept as upper bounds so a change that multiplies them is
// seen. Goroutine counts are deltas of the whole process (other specs' leftovers
// winding down only lower them).
var _ = Describe("per-channel costs (B-11, B-12 design figures)", func() {
	It("shares one broker connection per Messenger across every channel; a peer link costs one TCP connection and a bounded set of goroutines", func() {
		const n = 10
		s := startBroker(broker.Config{})
		base := s.Stats().Wire.Accepted
		g0, f0 := runtime.NumGoroutine(), openFDs()
		pm := newMessenger(s, 0, proc.Identity{})
		g1, f1 := runtime.NumGoroutine(), openFDs()
		var ps []*hub.Producer
		for range n {
			ps = append(ps, newProducer(pm, hub.ProducerOptions{}))
		}
		g2, f2 := runtime.NumGoroutine(), openFDs()
		cm := newMessenger(s, 0, proc.Identity{})
		g3, f3 := runtime.NumGoroutine(), openFDs()
		for _, p := range ps {
			connect(cm, hub.ConsumerOptions{Channel: p.Channel()})
		}
		// A link's start-up goroutines (dials, handshakes) may still be on their
		// way out; the bounds are on what stays, so let those finish first.
		Eventually(func() int { return runtime.NumGoroutine() - g3 }).Should(BeNumerically("<=", 10*n+n/2))
		Eventually(func() int { return openFDs() - f3 }).Should(BeNumerically("<=", 2*n+2))
		g4, f4 := runtime.NumGoroutine(), openFDs()
		fmt.Fprintf(GinkgoWriter, "Messenger: %d goroutines, %d fds; per producer: %.1f goroutines, %.1f fds; "+
			"per consumer link (both ends in this process): %.1f goroutines, %.1f fds\n",
			g1-g0, f1-f0, float64(g2-g1)/n, float64(f2-f1)/n, float64(g4-g3)/n, float64(f4-f3)/n)

		Expect(s.Stats().Wire.Accepted-base).To(BeEquivalentTo(2), "%d channels each way, two Messengers: two broker connections", n)
		Expect(g1 - g0).To(BeNumerically("<=", 12))
		Expect(f3-f2).To(BeNumerically("<=", 3), "a Messenger opens one socket (plus the runtime's poller)")
		Expect(g2 - g1).To(BeNumerically("<=", 8*n))
		Expect(f2-f1).To(BeNumerically("<=", n+1), "a producer listens on one socket")
		Expect(g4-g3).To(BeNumerically("<=", 10*n+n/2), "a consumer link and its producer-side peer: about ten goroutines")
		Expect(f4-f3).To(BeNumerically("<=", 2*n+2), "a peer link is one TCP connection (two descriptors with both ends here)")
	})
})
