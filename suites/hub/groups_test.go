package hub_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/hub"
)

// counts returns how many times each sequence below n appears in the logs.
func counts(n int, logs ...*seqLog) []int {
	out := make([]int, n)
	for _, l := range logs {
		l.mu.Lock()
		for _, s := range l.seqs {
			if s < uint64(n) {
				out[s]++
			}
		}
		l.mu.Unlock()
	}
	return out
}

var _ = Describe("B-7 consumer groups on the peer link (plh-node member killed)", func() {
	// spec: the producer (in process) sends n items; group "w" has a plh-node
	// member z that reads item 0 and then works on it for an hour, holding its
	// window (items 1..16) unconsumed, and two in-process members that join
	// after; z is killed with SIGKILL mid-stream. Group "v" (one member) and,
	// on PubSub, a consumer without a group get every item. wGroup is z's
	// group flag: "w" on PubSub, "" on Pipeline (whose consumers without a
	// name are one group).
	spec := func(pat hub.Pattern, wGroup string) {
		const n, window = 400, 16
		s, m := brokerAndMessenger()
		p := newProducer(m, hub.ProducerOptions{Pattern: pat, SlowConsumer: hub.SlowConsumerBlock})
		ch := p.Channel()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		DeferCleanup(cancel)
		var all, v, w1, w2 seqLog
		joined := 1
		if pat == hub.PatternPubSub {
			readAll(connect(m, hub.ConsumerOptions{Channel: ch}), false, &all)
			joined++
		}
		readAll(connect(m, hub.ConsumerOptions{Channel: ch, Group: "v"}), false, &v)
		args := []string{"--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch,
			"--window", "16", "--delay-per-read", "1h"}
		if wGroup != "" {
			args = append(args, "--group", wGroup)
		}
		z := node("z", args...)
		Eventually(p.ConnectedConsumers).WithTimeout(10 * time.Second).Should(HaveLen(joined + 1))
		buf := make([]byte, 64)
		send := func(from, to int) {
			for i := from; i < to; i++ {
				fillNodePayload(buf, uint64(i))
				Expect(p.Send(ctx, buf)).To(Succeed(), "item %d", i)
			}
		}
		// z alone in its group: items 0..15 fill its window; item 16 goes out
		// once z acknowledged item 0, so z holds exactly 1..16 unconsumed.
		send(0, window+1)
		Eventually(func() float64 { return readTotal(z) }).WithTimeout(10 * time.Second).Should(Equal(1.0))
		readAll(connect(m, hub.ConsumerOptions{Channel: ch, Group: wGroup, Window: window}), false, &w1)
		readAll(connect(m, hub.ConsumerOptions{Channel: ch, Group: wGroup, Window: window}), false, &w2)
		send(window+1, n/2)
		z.Kill()
		send(n/2, n)
		// The broker's CONSUMER_DIED_NOTIFY (pidfd) drops z: its 16 items go
		// to w1 and w2.
		Eventually(func() uint64 { return p.Stats().Redelivered }).WithTimeout(10 * time.Second).Should(BeEquivalentTo(window))
		Expect(p.Flush(ctx)).To(Succeed())
		everyOnce := func(logs ...*seqLog) func() []int {
			return func() []int {
				var bad []int
				for i, k := range counts(n, logs...) {
					if k != 1 && !(i == 0 && len(logs) == 2 && k == 0) { // item 0: z consumed it
						bad = append(bad, i, k)
					}
				}
				return bad
			}
		}
		Eventually(everyOnce(&w1, &w2)).WithTimeout(10*time.Second).Should(BeEmpty(), "group w: (item, deliveries) pairs off")
		Expect(counts(n, &w1, &w2)[0]).To(Equal(0), "item 0 was consumed by z before it died")
		Expect(w1.len()).To(BeNumerically(">", 0))
		Expect(w2.len()).To(BeNumerically(">", 0))
		Eventually(everyOnce(&v)).WithTimeout(10*time.Second).Should(BeEmpty(), "group v gets every item once")
		if pat == hub.PatternPubSub {
			Eventually(everyOnce(&all)).WithTimeout(10*time.Second).Should(BeEmpty(), "a consumer without a group gets every item once")
		}
	}

	It("PubSub: each item to exactly one member of group w, groups and plain consumers get all, z's claimed items go to w1/w2", func() {
		spec(hub.PatternPubSub, "w")
	})

	It("Pipeline: its consumers without a group split the stream, a killed one's claimed items go to the others; group v gets all", func() {
		spec(hub.PatternPipeline, "")
	})
})
