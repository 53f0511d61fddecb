package hub_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/shm"
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

var _ = Describe("B-7 consumer groups on the shared-memory ring (plh-node member killed holding a slot)", func() {
	// spec: a PubSub channel with a Sync_reader ring of 8 slots. Group "w" has a
	// plh-node member z that takes item 0 and holds the slot (--hold-per-read
	// 1h), and two in-process members that join after; the producer writes n
	// items; once w1/w2 have read what the ring holds beyond item 0 (the writer
	// cannot pass z's claim), z is killed with SIGKILL. w1/w2 take item 0 over:
	// group w reads every item exactly once; group "v" (one member) and a
	// consumer without a group each read every item once.
	It("each slot to exactly one member of group w, v and a plain reader get all, z's held slot goes to w1/w2", func() {
		const n = 200
		s, m := brokerAndMessenger()
		cfg := shmCfg()
		cfg.Sync, cfg.Capacity = shm.SyncReader, 8
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPubSub, SHM: cfg})
		ch := p.Channel()
		ring := func(group string, log *seqLog) {
			c := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret, Group: group})
			Expect(c.HasSHM()).To(BeTrue(), "%v", c.SHMError())
			readAll(c, true, log)
		}
		var all, v, w1, w2 seqLog
		ring("", &all)
		ring("v", &v)
		z := node("z", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch,
			"--shm", "--secret", fmt.Sprint(uint64(secret)), "--group", "w", "--hold-per-read", "1h")
		Eventually(saw(z, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		write := func(i int) error {
			return p.SyncedWrite(context.Background(), 20*time.Second, func(tx *hub.WriteTxn) error {
				sl, err := tx.Next()
				if err != nil {
					return err
				}
				fillNodePayload(sl.Bytes()[:64], uint64(i))
				return tx.Publish()
			})
		}
		Expect(write(0)).To(Succeed())
		Eventually(saw(z, "holding", func(e event.Event) bool { return num(e, "seq") == 0 })).WithTimeout(10 * time.Second).Should(BeTrue())
		ring("w", &w1)
		ring("w", &w2)
		wrote := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			for i := 1; i < n; i++ {
				if err := write(i); err != nil {
					wrote <- fmt.Errorf("item %d: %w", i, err)
					return
				}
			}
			wrote <- nil
		}()
		// The ring holds items 0..7: w1/w2 read 1..7, then the writer waits for z's claim.
		Eventually(func() int { return w1.len() + w2.len() }).WithTimeout(10 * time.Second).Should(Equal(7))
		Consistently(func() int { return w1.len() + w2.len() }).WithTimeout(200*time.Millisecond).Should(Equal(7),
			"the group read past a live member's claim")
		Expect(counts(n, &w1, &w2)[0]).To(Equal(0), "item 0 read while z held it")
		z.Kill()
		Eventually(wrote).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
		everyOnce := func(logs ...*seqLog) func() []int {
			return func() []int {
				var bad []int
				for i, k := range counts(n, logs...) {
					if k != 1 {
						bad = append(bad, i, k)
					}
				}
				return bad
			}
		}
		Eventually(everyOnce(&w1, &w2)).WithTimeout(10*time.Second).Should(BeEmpty(), "group w: (item, reads) pairs off")
		Eventually(everyOnce(&v)).WithTimeout(10*time.Second).Should(BeEmpty(), "group v reads every item once")
		Eventually(everyOnce(&all)).WithTimeout(10*time.Second).Should(BeEmpty(), "a consumer without a group reads every item once")
		Expect(segmentsOf(shm.SegmentPath(ch)[len("/dev/shm/"):]+".g")).To(HaveLen(2), "the companions of groups v and w")
	})
})
