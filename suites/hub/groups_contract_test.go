package hub_test

// Contract checks of consumer groups (B-7), written from the documentation only
// (docs/protocol.md "Peer link: consumer groups", docs/design.md "B-7", the
// doc comments of hub.ConsumerOptions.Group and hub.ErrGroupUnsupported).
// They assert the promises as invariants over whole streams: every item exactly
// once per group, every item to every other group and group-less consumer.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/support"
)

// readPaced reads c's peer link into log until the spec ends, waiting delay
// after each item: a member that is slower than the others (not a sync).
func readPaced(c *hub.Consumer, log *seqLog, delay time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	DeferCleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			b, err := c.Recv(ctx)
			if err != nil {
				continue
			}
			log.add(b)
			if delay > 0 {
				time.Sleep(delay)
			}
		}
	}()
}

func (l *seqLog) all() []uint64 { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.seqs) }

// union is every sequence the logs hold, sorted (duplicates kept).
func union(logs ...*seqLog) []uint64 {
	var out []uint64
	for _, l := range logs {
		out = append(out, l.all()...)
	}
	slices.Sort(out)
	return out
}

// sendSeqs sends plh-node payloads with sequences from..to-1.
func sendSeqs(p *hub.Producer, from, to int) {
	GinkgoHelper()
	b := make([]byte, 64)
	for i := from; i < to; i++ {
		fillNodePayload(b, uint64(i))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.Send(ctx, b)
		cancel()
		Expect(err).NotTo(HaveOccurred(), "send %d", i)
	}
}

func seqRange(from, to int) []uint64 {
	out := make([]uint64, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, uint64(i))
	}
	return out
}

var _ = Describe("Consumer groups, the documented contract (B-7)", func() {
	It("PubSub: each group gets every item exactly once across uneven and late members; other groups and group-less consumers get all", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("gc_pubsub")
		p := newProducer(m, hub.ProducerOptions{Channel: ch, SlowConsumer: hub.SlowConsumerBlock})
		a1, a2 := &seqLog{}, &seqLog{}
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "a"}), a1, 0)
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "a", Window: 8}), a2, time.Millisecond)
		b1, plain := &seqLog{}, &seqLog{}
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "b"}), b1, 0)
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch}), plain, 0)

		const n = 300
		sendSeqs(p, 0, 100)
		a3 := &seqLog{}
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "a", Window: 4}), a3, 2*time.Millisecond)
		sendSeqs(p, 100, n)

		Eventually(func() []uint64 { return union(a1, a2, a3) }).Should(Equal(upTo(n)), "group a: not every item exactly once")
		Eventually(b1.all).Should(Equal(upTo(n)), "a group of one member gets every item, in order")
		Eventually(plain.all).Should(Equal(upTo(n)), "a consumer without a group gets every item, in order")
		Expect(a3.len()).To(BeNumerically(">", 0), "the late member was never given an item")
		Expect(union(a3)).To(HaveEach(BeNumerically(">=", 100)), "the late member got an item sent before it joined")
	})

	It("Pipeline: the group-less consumers split the stream, a named group splits it again, a one-member group gets it all", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("gc_pipe")
		p := newProducer(m, hub.ProducerOptions{Channel: ch, Pattern: hub.PatternPipeline})
		q1, q2, x1, x2, y1 := &seqLog{}, &seqLog{}, &seqLog{}, &seqLog{}, &seqLog{}
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch}), q1, 0)
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Window: 4}), q2, time.Millisecond)
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "x"}), x1, time.Millisecond)
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "x"}), x2, 0)
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "y"}), y1, 0)
		const n = 200
		sendSeqs(p, 0, n)
		Eventually(func() []uint64 { return union(q1, q2) }).Should(Equal(upTo(n)), "the group-less Pipeline consumers")
		Eventually(func() []uint64 { return union(x1, x2) }).Should(Equal(upTo(n)), "named group x")
		Eventually(y1.all).Should(Equal(upTo(n)), "named group y (one member)")
		Expect(q1.len()*q2.len()).To(BeNumerically(">", 0), "Pipeline did not split at all")
	})

	// A member process SIGKILLed while it holds items it has not consumed (it
	// sleeps an hour after its first read): the others read them. Nothing is
	// lost except, at most, the one item the dead member consumed before it
	// slept; no survivor reads an item twice.
	killSpec := func(label string, pattern hub.Pattern, group string) {
		s := startBroker(broker.Config{})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName(label)
		p := newProducer(m, hub.ProducerOptions{Channel: ch, Pattern: pattern})
		args := []string{"--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(),
			"--channel", ch, "--delay-per-read", "1h"}
		if group != "" {
			args = append(args, "--group", group)
		}
		victim := node("victim", args...)
		Eventually(func() int { return p.Stats().Consumers }).Should(Equal(1))
		s1, s2 := &seqLog{}, &seqLog{}
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: group}), s1, 0)
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: group}), s2, 0)
		const n = 150
		sendSeqs(p, 0, n)
		// The survivors cannot have everything: the victim was given its share.
		Eventually(func() int { return len(union(s1, s2)) }).Should(BeNumerically(">=", n/3))
		Expect(len(union(s1, s2))).To(BeNumerically("<", n-1), "the victim was given nothing: the spec proves nothing")
		victim.Kill()
		Eventually(func() int { return len(union(s1, s2)) }).Should(BeNumerically(">=", n-1),
			"items the killed member held were lost")
		got := union(s1, s2)
		Expect(slices.Compact(slices.Clone(got))).To(Equal(got), "a survivor read an item twice")
		Expect(got).To(HaveEach(BeNumerically("<", n)))
		Expect(p.Stats().Redelivered).To(BeNumerically(">=", n/3-1), "the hand-back is not counted")
	}
	It("a member SIGKILLed holding items on PubSub: the group's other members read them", func() {
		killSpec("gc_kill_pubsub", hub.PatternPubSub, "g")
	})
	It("a group-less Pipeline consumer SIGKILLed holding items: the others read them", func() {
		killSpec("gc_kill_pipe", hub.PatternPipeline, "")
	})
	It("a named group's member SIGKILLed on Pipeline: the group's other members read its items", func() {
		killSpec("gc_kill_pipe_named", hub.PatternPipeline, "g")
	})

	It("a group whose last member left ends (its held items counted Skipped); a new member gets only what is sent after it joined", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("gc_regroup")
		p := newProducer(m, hub.ProducerOptions{Channel: ch})
		first := connect(m, hub.ConsumerOptions{Channel: ch, Group: "g", Window: 4})
		sendSeqs(p, 0, 4) // the member's whole window, never consumed
		Expect(first.Close()).To(Succeed())
		Eventually(func() int { return p.Stats().Consumers }).Should(Equal(0))
		Eventually(func() uint64 { return p.Stats().Skipped }).Should(BeEquivalentTo(4),
			"what the last member held is counted in Skipped")
		sendSeqs(p, 4, 10) // nobody: PubSub drops and returns at once
		second := &seqLog{}
		readPaced(connect(m, hub.ConsumerOptions{Channel: ch, Group: "g"}), second, 0)
		sendSeqs(p, 10, 20)
		Eventually(second.all).Should(Equal(seqRange(10, 20)), "the new member of the ended group")
		Consistently(second.all).WithTimeout(300 * time.Millisecond).Should(Equal(seqRange(10, 20)))
	})

	It("refuses what the documentation refuses, with the documented errors, and leaves no member joined", func() {
		_, m := brokerAndMessenger()
		latest := support.UniqueName("gc_latest")
		pl := newProducer(m, hub.ProducerOptions{Channel: latest, SHM: shmCfg()})
		single := support.UniqueName("gc_single")
		cfg := shmCfg()
		cfg.Sync = shm.SingleReader
		ps := newProducer(m, hub.ProducerOptions{Channel: single, SHM: cfg})
		bidir := support.UniqueName("gc_bidir")
		pb := newProducer(m, hub.ProducerOptions{Channel: bidir, Pattern: hub.PatternBidir})

		try := func(o hub.ConsumerOptions) error {
			c, err := hub.Connect(context.Background(), m, o)
			if err == nil {
				DeferCleanup(c.Close)
			}
			return err
		}
		for _, bad := range []string{"a\x00b", "bad\xffutf8", "line\nbreak", "nb\u00a0sp", "rep\ufffd", "tab\t",
			strings.Repeat("g", hub.MaxGroupBytes+1)} {
			Expect(try(hub.ConsumerOptions{Channel: latest, Group: bad})).To(MatchError(hub.ErrInvalidArgument), "group %q", bad)
		}
		Expect(try(hub.ConsumerOptions{Channel: latest, Group: "g", Secret: secret})).To(MatchError(hub.ErrGroupUnsupported),
			"a group on a Latest_only ring")
		Expect(try(hub.ConsumerOptions{Channel: single, Group: "g", Secret: secret})).To(MatchError(hub.ErrGroupUnsupported),
			"a group on a Single_reader ring")
		Expect(try(hub.ConsumerOptions{Channel: bidir, Group: "g"})).To(MatchError(hub.ErrWrongPattern), "a group on Bidir")
		Eventually(func() []int { return []int{pl.Stats().Consumers, ps.Stats().Consumers, pb.Stats().Consumers} }).
			Should(Equal([]int{0, 0, 0}), "a refused consumer stayed joined")

		// What is allowed: the longest name, names with spaces, punctuation and
		// symbols, and a group on a Latest_only channel's peer link (no Secret).
		for _, good := range []string{strings.Repeat("g", hub.MaxGroupBytes), "work ers", "λ-ü/α:1", "€$"} {
			Expect(try(hub.ConsumerOptions{Channel: latest, Group: good})).To(Succeed(), "group %q", good)
		}
		Expect(pl.Stats().Consumers).To(Equal(4))
		sendSeqs(pl, 0, 1) // each of the four groups has one member: all get it
	})

	It("on a Sync_reader ring: a member process SIGKILLed while it holds a slot loses nothing; a plain reader reads all; the companion segment goes with the last member", func() {
		s := startBroker(broker.Config{})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("gc_shm_kill")
		const sec, n = 0x6C0B, 120
		prod := node("prod", "--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(),
			"--channel", ch, "--shm", "--policy", "sync", "--slots", "8", "--secret", fmt.Sprint(sec),
			"--count", fmt.Sprint(n), "--linger", "1h", "--wait-consumers", "4")
		support.WaitEvent(prod, "ready", 10*time.Second)
		victim := node("victim", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(),
			"--channel", ch, "--shm", "--secret", fmt.Sprint(sec), "--group", "g", "--hold-per-read", "1h")
		Expect(support.WaitEvent(victim, "attached", 10*time.Second).Fields["shm"]).To(Equal(true))
		m1, m2, plain := &seqLog{}, &seqLog{}, &seqLog{}
		c1 := connect(m, hub.ConsumerOptions{Channel: ch, Group: "g", Secret: sec})
		c2 := connect(m, hub.ConsumerOptions{Channel: ch, Group: "g", Secret: sec})
		cp := connect(m, hub.ConsumerOptions{Channel: ch, Secret: sec})
		for _, c := range []*hub.Consumer{c1, c2, cp} {
			Expect(c.HasSHM()).To(BeTrue(), "%v", c.SHMError())
		}
		readAll(c1, true, m1)
		readAll(c2, true, m2)
		readAll(cp, true, plain)
		companion := shm.GroupSegmentPath(ch, "g")
		held := support.WaitEvent(victim, "holding", 10*time.Second)
		_, err := os.Stat(companion)
		Expect(err).NotTo(HaveOccurred(), "the documented companion segment does not exist")
		victim.Kill()

		Eventually(func() []uint64 { return union(m1, m2) }).WithTimeout(20*time.Second).Should(Equal(upTo(n)),
			"the group did not read every slot exactly once (the victim held seq %v)", held.Fields["seq"])
		Eventually(plain.all).Should(Equal(upTo(n)), "a plain Sync_reader reader reads every slot in order")
		Expect(c1.Close()).To(Succeed())
		Expect(c2.Close()).To(Succeed())
		Eventually(func() error { _, err := os.Stat(companion); return err }).Should(MatchError(os.ErrNotExist),
			"the last member to close did not remove the companion segment")
		Expect(prod.Stop(10 * time.Second)).To(Succeed())
		Expect(segmentsOf(ch)).To(BeEmpty())
	})

	It("on a Sync_reader ring: members joining while the producer streams into a full ring: every item exactly once", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("gc_shm_join")
		cfg := shmCfg()
		cfg.Sync, cfg.Capacity = shm.SyncReader, 2
		p := newProducer(m, hub.ProducerOptions{Channel: ch, SHM: cfg})
		logs := []*seqLog{{}}
		readAll(connect(m, hub.ConsumerOptions{Channel: ch, Group: "g", Secret: secret}), true, logs[0])
		var written, limit atomic.Int64
		limit.Store(1 << 40)
		werr := make(chan error, 1)
		go func() {
			b := make([]byte, 64)
			for i := int64(0); i < limit.Load(); i++ {
				fillNodePayload(b, uint64(i))
				if err := p.SyncedWrite(context.Background(), 10*time.Second, func(t *hub.WriteTxn) error {
					sl, err := t.Next()
					if err == nil {
						copy(sl.Bytes(), b)
					}
					return err
				}); err != nil {
					werr <- fmt.Errorf("write %d: %w", i, err)
					return
				}
				written.Add(1)
			}
			werr <- nil
		}()
		for k := range 3 {
			Eventually(written.Load).Should(BeNumerically(">=", 30*(k+1)))
			l := &seqLog{}
			readAll(connect(m, hub.ConsumerOptions{Channel: ch, Group: "g", Secret: secret}), true, l)
			logs = append(logs, l)
		}
		limit.Store(written.Load() + 50)
		Eventually(werr).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
		Eventually(func() []uint64 { return union(logs...) }).Should(Equal(upTo(int(limit.Load()))))
	})

	It("on a Sync_reader ring: every member SIGKILLed, then the producer closes: no companion segment is left", func() {
		s := startBroker(broker.Config{})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("gc_shm_allkilled")
		cfg := shmCfg()
		cfg.Sync = shm.SyncReader
		p := newProducer(m, hub.ProducerOptions{Channel: ch, SHM: cfg})
		var members []*support.Proc
		for i := range 2 {
			v := node(fmt.Sprintf("member%d", i), "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(),
				"--channel", ch, "--shm", "--secret", fmt.Sprint(uint64(secret)), "--group", "g", "--hold-per-read", "1h")
			Expect(support.WaitEvent(v, "attached", 10*time.Second).Fields["shm"]).To(Equal(true))
			members = append(members, v)
		}
		b := make([]byte, 64)
		for i := range 2 {
			fillNodePayload(b, uint64(i))
			Expect(p.SyncedWrite(context.Background(), 5*time.Second, func(t *hub.WriteTxn) error {
				sl, err := t.Next()
				if err == nil {
					copy(sl.Bytes(), b)
				}
				return err
			})).To(Succeed())
		}
		for _, v := range members {
			support.WaitEvent(v, "holding", 10*time.Second)
		}
		companion := shm.GroupSegmentPath(ch, "g")
		_, err := os.Stat(companion)
		Expect(err).NotTo(HaveOccurred(), "the documented companion segment does not exist")
		for _, v := range members {
			v.Kill()
		}
		Expect(p.Close()).To(Succeed())
		_, err = os.Stat(companion)
		Expect(err).To(MatchError(os.ErrNotExist), "the producer's Close left the dead group's companion")
		Expect(segmentsOf(ch)).To(BeEmpty())
	})
})
