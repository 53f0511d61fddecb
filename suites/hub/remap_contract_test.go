package hub_test

// Contract checks of structure remapping (B-19), written from the
// documentation only (docs/protocol.md "Structure remapping", the REMAP_REQ row
// of its request table, docs/design.md "B-19", docs/events.md, the doc comments
// of hub.Producer.Remap, hub.RemapOptions and hub.RemapNotice).

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/support"
)

// remapLog records a consumer's remap notices (EventRemapped, EventRemapFailed).
type remapLog struct {
	mu  sync.Mutex
	got []hub.ChannelNotice
}

func (l *remapLog) on(n hub.ChannelNotice) {
	if n.Event == hub.EventRemapped || n.Event == hub.EventRemapFailed {
		l.mu.Lock()
		l.got = append(l.got, n)
		l.mu.Unlock()
	}
}

func (l *remapLog) list() []hub.ChannelNotice {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]hub.ChannelNotice(nil), l.got...)
}

func (l *remapLog) events() []string {
	var out []string
	for _, n := range l.list() {
		out = append(out, n.Event)
	}
	return out
}

// putSeq writes one plh-node payload with seq into the producer's ring.
func putSeq(p *hub.Producer, seq uint64) error {
	return p.SyncedWrite(context.Background(), 10*time.Second, func(t *hub.WriteTxn) error {
		s, err := t.Next()
		if err == nil {
			fillNodePayload(s.Bytes()[:64], seq)
		}
		return err
	})
}

func ringCfg(sync shm.SyncPolicy, capacity uint32) shm.Config {
	return shm.Config{PageSize: shm.Page4K, Capacity: capacity, Policy: shm.PolicyRingBuffer, Sync: sync,
		Checksum: shm.ChecksumEnforced, Secret: secret}
}

func tail(l *seqLog) []uint64 { a := l.all(); return a[max(0, len(a)-5):] }

// remapSeg is the documented name of a layout generation's segment.
func remapSeg(ch string, gen uint64) string { return fmt.Sprintf("%s.remap-%d", ch, gen) }

var _ = Describe("Structure remapping, the documented contract (B-19)", func() {
	// Ordered readers read every sequence exactly once and in order while the
	// producer writes without pause and remaps three times in a row; the
	// retired segments' names are gone as soon as each Remap returns.
	orderedSpec := func(label string, sync shm.SyncPolicy, readers int) {
		_, m := brokerAndMessenger()
		ch := support.UniqueName(label)
		first := ringCfg(sync, 4)
		p, err := hub.NewProducer(context.Background(), m, hub.ProducerOptions{Channel: ch, SHM: &first})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		var logs []*seqLog
		var notes []*remapLog
		var cons []*hub.Consumer
		for range readers {
			rl := &remapLog{}
			c := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret,
				Callbacks: hub.ConsumerCallbacks{OnChannelError: rl.on}})
			Expect(c.HasSHM()).To(BeTrue(), "%v", c.SHMError())
			l := &seqLog{}
			readAll(c, true, l)
			logs, notes, cons = append(logs, l), append(notes, rl), append(cons, c)
		}

		// The writer runs until told where to stop, so every remap happens while
		// it writes (it may be waiting for a slot of a full ring).
		var written, limit atomic.Int64
		limit.Store(1 << 40)
		werr := make(chan error, 1)
		go func() {
			for i := int64(0); i < limit.Load(); i++ {
				if err := putSeq(p, uint64(i)); err != nil {
					werr <- fmt.Errorf("write %d: %w", i, err)
					return
				}
				written.Add(1)
			}
			werr <- nil
		}()
		for gen, capacity := range []uint32{8, 2, 16} {
			Eventually(written.Load).Should(BeNumerically(">=", 50*(gen+1)))
			Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: ringCfg(sync, capacity), AttachWait: 20 * time.Second,
				SchemaHash: []byte(strings.Repeat("r", 31) + fmt.Sprint(gen))})).To(Succeed())
			Expect(p.LayoutGeneration()).To(BeEquivalentTo(gen + 1))
			Expect(segmentsOf(ch)).To(ConsistOf(remapSeg(ch, uint64(gen+1))),
				"only the current layout's segment may be left once Remap returned")
		}
		limit.Store(written.Load() + 100)
		Eventually(werr).WithTimeout(30 * time.Second).Should(Receive(BeNil()))
		n := int(limit.Load())
		for i, l := range logs {
			Eventually(l.all).WithTimeout(20*time.Second).Should(Equal(upTo(n)), "reader %d", i)
			Eventually(notes[i].events).Should(Equal([]string{hub.EventRemapped, hub.EventRemapped, hub.EventRemapped}))
			for g, no := range notes[i].list() {
				Expect(no.Remap).NotTo(BeNil())
				Expect(no.Remap.Generation).To(BeEquivalentTo(g+1), "reader %d", i)
				Expect(no.Remap.From).To(BeEquivalentTo(g), "reader %d", i)
				Expect(no.Remap.ShmName).To(Equal(remapSeg(ch, uint64(g+1))))
				// FinalSeq 0 is "not known" (docs: e.g. the layout was found by
				// discovery before its notice was handled); when known, an
				// ordered reader read the old ring up to it.
				if no.Remap.FinalSeq != 0 {
					Expect(no.Remap.Read).To(Equal(no.Remap.FinalSeq), "an ordered reader drains the old ring to final_seq")
				}
			}
		}
		info, err := m.Discover(context.Background(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.LayoutGeneration).To(BeEquivalentTo(3))
		Expect(info.ShmName).To(Equal(remapSeg(ch, 3)))
		Expect(info.SchemaHashHex).To(Equal(fmt.Sprintf("%x", strings.Repeat("r", 31)+"2")))
		for _, c := range cons {
			Expect(c.Close()).To(Succeed())
		}
		Expect(p.Close()).To(Succeed())
		Expect(segmentsOf(ch)).To(BeEmpty(), "segments left after everyone closed")
	}
	It("Sync_reader: two readers read every item exactly once in order across three remaps in a row", func() {
		orderedSpec("rc_sync", shm.SyncReader, 2)
	})
	It("Single_reader: the reader reads every item exactly once in order across three remaps in a row", func() {
		orderedSpec("rc_single", shm.SingleReader, 1)
	})

	// Remaps in a row while the reader does not read: each layout's ring still
	// holds what was written on it, and an ordered reader reads every one of
	// them, in order, before the next.
	idleSpec := func(label string, sync shm.SyncPolicy) {
		_, m := brokerAndMessenger()
		ch := support.UniqueName(label)
		first := ringCfg(sync, 4)
		p := newProducer(m, hub.ProducerOptions{Channel: ch, SHM: &first})
		rl := &remapLog{}
		c := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret, Callbacks: hub.ConsumerCallbacks{OnChannelError: rl.on}})
		seq := uint64(0)
		for gen, capacity := range []uint32{4, 8, 2, 16} {
			if gen > 0 {
				Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: ringCfg(sync, capacity), AttachWait: 20 * time.Second})).To(Succeed())
			}
			for range min(capacity, 4) {
				Expect(putSeq(p, seq)).To(Succeed())
				seq++
			}
		}
		log := &seqLog{}
		readAll(c, true, log)
		Eventually(log.all).Should(Equal(upTo(int(seq))), "an ordered reader lost the items of a layout it had not reached")
		Eventually(func() int { return len(rl.list()) }).Should(Equal(3))
		for g, no := range rl.list() {
			Expect(no.Event).To(Equal(hub.EventRemapped))
			Expect(no.Remap.Generation).To(BeEquivalentTo(g + 1))
			Expect(no.Remap.From).To(BeEquivalentTo(g))
		}
	}
	It("Sync_reader: three remaps in a row while the reader is idle: it then reads every layout's items in order", func() {
		idleSpec("rc_idle_sync", shm.SyncReader)
	})
	It("Single_reader: three remaps in a row while the reader is idle: it then reads every layout's items in order", func() {
		idleSpec("rc_idle_single", shm.SingleReader)
	})

	It("a consumer group on a Sync_reader ring across two remaps: every item exactly once per group, a plain reader gets all, no companion segment left", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("rc_group")
		first := ringCfg(shm.SyncReader, 4)
		p, err := hub.NewProducer(context.Background(), m, hub.ProducerOptions{Channel: ch, SHM: &first})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		var members []*seqLog
		var cons []*hub.Consumer
		for i := range 3 {
			o := hub.ConsumerOptions{Channel: ch, Secret: secret, Group: "g"}
			if i == 2 {
				o.Group = "" // a plain reader beside the group
			}
			c := connect(m, o)
			Expect(c.HasSHM()).To(BeTrue(), "%v", c.SHMError())
			l := &seqLog{}
			readAll(c, true, l)
			members, cons = append(members, l), append(cons, c)
		}
		seq := 0
		write := func(k int) {
			for range k {
				Expect(putSeq(p, uint64(seq))).To(Succeed(), "write %d (gen %d); read so far: %d, %d (group), %d (plain); tails %v %v",
					seq, p.LayoutGeneration(), members[0].len(), members[1].len(), members[2].len(), tail(members[0]), tail(members[1]))
				seq++
			}
		}
		write(40)
		for _, capacity := range []uint32{8, 2} {
			Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: ringCfg(shm.SyncReader, capacity), AttachWait: 20 * time.Second})).To(Succeed())
			write(40)
		}
		Eventually(func() []uint64 { return union(members[0], members[1]) }).Should(Equal(upTo(seq)), "group g")
		Eventually(members[2].all).Should(Equal(upTo(seq)), "the plain reader")
		for _, c := range cons {
			Expect(c.Close()).To(Succeed())
		}
		Expect(p.Close()).To(Succeed())
		Expect(segmentsOf(ch)).To(BeEmpty(), "segments (or group companions) left")
	})

	It("a new producer of the channel sweeps later-layout segments whose owner is dead, and only those", func() {
		s := startBroker(broker.Config{})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("rc_sweep")
		// Segments named like a remap's new layout: one left by a killed
		// process, one whose owner lives.
		owner := func(name string) *support.Proc {
			n := node(name, "--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", name,
				"--shm", "--policy", "sync", "--slots", "2", "--secret", "9")
			support.WaitEvent(n, "ready", 10*time.Second)
			return n
		}
		dead, live := owner(remapSeg(ch, 1)), owner(remapSeg(ch, 2))
		dead.Kill()
		Expect(segmentsOf(ch)).To(ConsistOf(remapSeg(ch, 1), remapSeg(ch, 2)))
		newProducer(m, hub.ProducerOptions{Channel: ch, SHM: shmCfg()})
		Expect(segmentsOf(ch)).To(ConsistOf(ch, remapSeg(ch, 2)), "the dead owner's layout was not swept, or the live one was")
		Expect(live.Stop(10 * time.Second)).To(Succeed())
	})

	It("consumers connecting while the producer remaps again and again all end on the final layout", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("rc_joiners")
		p := newProducer(m, hub.ProducerOptions{Channel: ch, SHM: shmCfg()})
		caps := []uint32{8, 2, 16, 4, 8}
		done := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			for _, capacity := range caps {
				if err := p.Remap(context.Background(), hub.RemapOptions{SHM: ringCfg(shm.LatestOnly, capacity)}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		var joiners []*hub.Consumer
		for range 6 {
			// One that discovered a layout whose name the producer unlinked
			// before it attached connects without shared memory for now; it
			// re-checks the generation right after Connect.
			joiners = append(joiners, connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret}))
		}
		Eventually(done).Should(Receive(BeNil()))
		final := uint64(len(caps))
		for i, c := range joiners {
			Eventually(func() uint64 { return c.Info().LayoutGeneration }).Should(Equal(final), "joiner %d", i)
			Eventually(func() (uint64, error) {
				if err := putSeq(p, 99); err != nil {
					return 0, err
				}
				var got uint64
				err := c.Pull(context.Background(), time.Second, func(t *hub.ReadTxn) error {
					s, err := t.Next()
					if err == nil {
						got = uint64(s.Bytes()[0])
					}
					return err
				})
				return got, err
			}).Should(BeEquivalentTo(99), "joiner %d does not read the final layout", i)
			Expect(c.HasSHM()).To(BeTrue(), "joiner %d: %v", i, c.SHMError())
			Expect(c.SHM().Capacity()).To(BeEquivalentTo(caps[len(caps)-1]), "joiner %d", i)
		}
	})

	It("Latest_only: the reader moves at once; a consumer connecting afterwards attaches the new layout; discovery shows it", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("rc_latest")
		p := newProducer(m, hub.ProducerOptions{Channel: ch, SHM: shmCfg()})
		rl := &remapLog{}
		c := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret, Callbacks: hub.ConsumerCallbacks{OnChannelError: rl.on}})
		log := &seqLog{}
		readAll(c, true, log)
		for i := range 3 {
			Expect(putSeq(p, uint64(i))).To(Succeed())
		}
		Eventually(log.len).Should(BeNumerically(">", 0))
		next := ringCfg(shm.LatestOnly, 8)
		Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: next})).To(Succeed())
		Eventually(rl.events).Should(Equal([]string{hub.EventRemapped}))
		Expect(rl.list()[0].Remap.Generation).To(BeEquivalentTo(1))
		// Items written after the remap reach the reader (it reads the new ring).
		Eventually(func() bool {
			Expect(putSeq(p, 1000)).To(Succeed())
			return strings.Contains(fmt.Sprint(log.all()), "1000")
		}).Should(BeTrue(), "the Latest_only reader does not read the new segment")

		info, err := m.Discover(context.Background(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.LayoutGeneration).To(BeEquivalentTo(1))
		Expect(info.ShmName).To(Equal(remapSeg(ch, 1)))
		_, err = os.Stat(shm.SegmentPath(ch))
		Expect(err).To(MatchError(os.ErrNotExist), "the old layout's segment is left")

		late := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret, ExpectSHM: &next})
		Expect(late.HasSHM()).To(BeTrue(), "a consumer connecting after the remap: %v", late.SHMError())
		Expect(late.Info().LayoutGeneration).To(BeEquivalentTo(1))
		Expect(late.SHM().Capacity()).To(BeEquivalentTo(8))
	})

	It("a consumer whose expectations refuse the new layout is told at once (remap_failed), reads the old ring to its end, then gets ErrNoSHM instead of waiting; its peer link stays up", func() {
		_, m := brokerAndMessenger()
		ch := support.UniqueName("rc_refuse")
		first := ringCfg(shm.SyncReader, 4)
		hash := []byte(strings.Repeat("h", 32))
		p := newProducer(m, hub.ProducerOptions{Channel: ch, SHM: &first, SchemaHash: hash})
		byGeom, byHash, ok := &remapLog{}, &remapLog{}, &remapLog{}
		cGeom := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret, ExpectSHM: &first,
			Callbacks: hub.ConsumerCallbacks{OnChannelError: byGeom.on}})
		cHash := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret, ExpectedSchemaHash: hash,
			Callbacks: hub.ConsumerCallbacks{OnChannelError: byHash.on}})
		cOK := connect(m, hub.ConsumerOptions{Channel: ch, Secret: secret,
			Callbacks: hub.ConsumerCallbacks{OnChannelError: ok.on}})
		for _, c := range []*hub.Consumer{cGeom, cHash, cOK} {
			Expect(c.HasSHM()).To(BeTrue())
		}
		Expect(putSeq(p, 5)).To(Succeed())
		// Nobody reads: the refusal must still be told (the two refusing
		// readers never register on the new ring, so the producer waits
		// AttachWait).
		Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: ringCfg(shm.SyncReader, 8),
			SchemaHash: []byte(strings.Repeat("n", 32)), AttachWait: 300 * time.Millisecond})).To(Succeed())
		refusing := map[string]*hub.Consumer{"ExpectSHM": cGeom, "ExpectedSchemaHash": cHash}
		for name, l := range map[string]*remapLog{"ExpectSHM": byGeom, "ExpectedSchemaHash": byHash} {
			Eventually(l.events).Should(Equal([]string{hub.EventRemapFailed}), name)
			n := l.list()[0]
			Expect(n.Error).NotTo(BeEmpty(), name)
			Expect(n.Remap).NotTo(BeNil(), name)
			Expect(n.Remap.Generation).To(BeEquivalentTo(1), name)
		}
		pull := func(c *hub.Consumer) (uint64, error) {
			var got uint64
			err := c.Pull(context.Background(), 30*time.Second, func(t *hub.ReadTxn) error {
				s, err := t.Next()
				if err == nil {
					got = uint64(s.Bytes()[0])
				}
				return err
			})
			return got, err
		}
		for name, c := range refusing {
			Expect(pull(c)).To(BeEquivalentTo(5), "%s: the old ring is read to its end", name)
			// Then reads fail; none waits its 30 s slot timeout.
			Eventually(func() error { _, err := pull(c); return err }).Should(MatchError(hub.ErrNoSHM), name)
			Expect(c.HasSHM()).To(BeFalse(), name)
			Expect(byGeom.events()).To(HaveLen(1), "remap_failed is told once")
		}
		// Stays connected: the peer link still carries data.
		Expect(p.Send(context.Background(), []byte("still here"))).To(Succeed())
		for name, c := range refusing {
			b, err := recv(c, 10*time.Second)
			Expect(err).NotTo(HaveOccurred(), name)
			Expect(string(b)).To(Equal("still here"))
		}
		// The accepted consumer reads the old ring's item, then what is
		// written on the new layout (the transaction that finds the old ring
		// drained ends with ErrNoSlot).
		Expect(pull(cOK)).To(BeEquivalentTo(5))
		Expect(putSeq(p, 7)).To(Succeed())
		Eventually(func() (uint64, error) { return pull(cOK) }).Should(BeEquivalentTo(7))
		Expect(ok.events()).To(Equal([]string{hub.EventRemapped}), "a consumer without expectations")
	})

	It("Remap is refused without shared memory (ErrNoSHM) and without a broker (ErrNotConnected), changing nothing", func() {
		_, m := brokerAndMessenger()
		plain := newProducer(m, hub.ProducerOptions{})
		Expect(plain.Remap(context.Background(), hub.RemapOptions{SHM: ringCfg(shm.LatestOnly, 8)})).To(MatchError(hub.ErrNoSHM))

		alone, err := hub.NewMessenger(hub.MessengerConfig{DiscoveryDir: GinkgoT().TempDir()})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(alone.Close)
		ch := support.UniqueName("rc_alone")
		p := newProducer(alone, hub.ProducerOptions{Channel: ch, SHM: shmCfg()})
		Expect(p.Remap(context.Background(), hub.RemapOptions{SHM: ringCfg(shm.LatestOnly, 8)})).To(MatchError(hub.ErrNotConnected))
		Expect(p.LayoutGeneration()).To(BeEquivalentTo(0))
		Expect(segmentsOf(ch)).To(ConsistOf(ch), "a refused remap left a segment or removed the old one")
		Expect(putSeq(p, 1)).To(Succeed(), "the old layout stays in use")
		Expect(p.SHM().Capacity()).To(BeEquivalentTo(4))
	})

	It("on the wire: only the registered producer's connection may remap, only to a higher generation; refusals change nothing; the notice reaches consumers and then the producer before REMAP_ACK", func() {
		s := startBroker(broker.Config{})
		owner, other, cons := dialBroker(s), dialBroker(s), dialBroker(s)
		ch := support.UniqueName("rc_wire")
		pid := uint64(os.Getpid())
		Expect(errCodeOf(owner.call(&proto.RegReq{ChannelName: ch, ShmName: ch, ProducerPID: pid, HasSharedMemory: true,
			SchemaHash: strings.Repeat("ab", 32), ZmqCtrlEndpoint: "tcp://127.0.0.1:1"}))).To(BeEmpty())
		owner.send(&proto.HeartbeatReq{ChannelName: ch, ProducerPID: pid})
		Eventually(func() proto.Code {
			return errCodeOf(cons.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: pid, ConsumerID: "c1"}))
		}).Should(BeEmpty())

		remap := func(c *rawBroker, mut func(*proto.RemapReq)) proto.Code {
			r := &proto.RemapReq{ChannelName: ch, ProducerPID: pid, ShmName: ch + ".remap-1", LayoutGeneration: 1, FinalSeq: 5}
			mut(r)
			return errCodeOf(c.call(r))
		}
		Expect(remap(other, func(*proto.RemapReq) {})).To(Equal(proto.CodeNotRegistered), "same pid, another connection")
		Expect(remap(owner, func(r *proto.RemapReq) { r.ProducerPID = pid + 1 })).To(Equal(proto.CodeNotRegistered), "another pid")
		Expect(remap(owner, func(r *proto.RemapReq) { r.LayoutGeneration = 0 })).To(Equal(proto.CodeInvalidRequest), "generation 0")
		Expect(remap(owner, func(r *proto.RemapReq) { r.ShmName = "" })).To(Equal(proto.CodeInvalidRequest), "empty shm_name")
		Expect(remap(owner, func(r *proto.RemapReq) { r.SchemaName, r.SchemaBLDS = "imu", "x:nope" })).
			To(Equal(proto.CodeInvalidRequest), "bad descriptor")
		Expect(remap(owner, func(r *proto.RemapReq) { r.ShmName = strings.Repeat("s", 2048) })).
			To(Equal(proto.CodeLimitExceeded), "shm_name over MaxFieldBytes")
		Expect(remap(owner, func(r *proto.RemapReq) { r.ChannelName = ch + "_none" })).To(Equal(proto.CodeChannelNotFound))
		ack := owner.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck)
		Expect(ack.LayoutGeneration).To(BeEquivalentTo(0), "a refused REMAP_REQ changed the registration")
		Expect(ack.ShmName).To(Equal(ch))

		// Accepted: the producer hears the notice, then the ACK.
		id := owner.req(&proto.RemapReq{ChannelName: ch, ProducerPID: pid, ShmName: ch + ".remap-3", LayoutGeneration: 3,
			FinalSeq: 5, SchemaHash: strings.Repeat("cd", 32)})
		note, ok := owner.recv().(*proto.ChannelEventNotify)
		Expect(ok).To(BeTrue(), "the producer's notice must come before REMAP_ACK")
		Expect(note.Event).To(Equal("remap"))
		Expect(note.LayoutGeneration).To(BeEquivalentTo(3))
		Expect(note.FinalSeq).To(BeEquivalentTo(5))
		Expect(note.ShmName).To(Equal(ch + ".remap-3"))
		got := owner.recv()
		Expect(got).To(BeAssignableToTypeOf(&proto.RemapAck{}))
		Expect(proto.CorrelationOf(got)).To(Equal(id))
		Expect(got.(*proto.RemapAck).LayoutGeneration).To(BeEquivalentTo(3))
		cn, ok := cons.recv().(*proto.ChannelEventNotify)
		Expect(ok).To(BeTrue(), "the consumer gets the notice")
		Expect(cn.Event).To(Equal("remap"))
		Expect(cn.SchemaHash).To(Equal(strings.Repeat("cd", 32)))

		ack = owner.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck)
		Expect(ack.LayoutGeneration).To(BeEquivalentTo(3))
		Expect(ack.ShmName).To(Equal(ch + ".remap-3"))
		Expect(ack.SchemaHash).To(Equal(strings.Repeat("cd", 32)))
		Expect(ack.ConsumerCount).To(BeEquivalentTo(1), "consumers are kept")
		for _, g := range []uint64{3, 2} {
			Expect(remap(owner, func(r *proto.RemapReq) { r.LayoutGeneration = g })).To(Equal(proto.CodeInvalidRequest),
				"generation %d is not above 3", g)
		}
	})

	It("a producer SIGKILLed right after a remap: the consumer drains, moves, follows the successor, and no segment is left", func() {
		s := startBroker(broker.Config{ChannelTimeout: 30 * time.Second})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("rc_kill")
		const sec = 0x7E3A
		common := []string{"--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch,
			"--schema", "remap.v1", "--shm", "--policy", "sync", "--slots", "4", "--secret", fmt.Sprint(sec)}
		p1 := node("p1", append(common, "--wait-consumers", "1", "--remap-after", "40", "--rate", "2000")...)
		support.WaitEvent(p1, "ready", 10*time.Second)
		rl := &remapLog{}
		c := connect(m, hub.ConsumerOptions{Channel: ch, Secret: sec, ProducerLostAfter: 300 * time.Millisecond,
			Callbacks: hub.ConsumerCallbacks{OnChannelError: rl.on}})
		Expect(c.HasSHM()).To(BeTrue())
		log := &seqLog{}
		readAll(c, true, log)
		support.WaitEvent(p1, "remap", 10*time.Second)
		p1.Kill()
		Eventually(rl.events).Should(Equal([]string{hub.EventRemapped}))
		n := rl.list()[0].Remap
		Expect(n.Read).To(Equal(n.FinalSeq), "the old ring was not drained")
		Expect(n.FinalSeq).To(BeNumerically(">=", 40))
		firstRun := log.len()

		p2 := node("p2", append(common, "--count", "30", "--linger", "1m", "--wait-consumers", "1")...)
		support.WaitEvent(p2, "ready", 10*time.Second)
		Eventually(func() []uint64 { return log.successor(firstRun) }).WithTimeout(20 * time.Second).Should(Equal(upTo(30)))
		first := log.all()[:firstRun]
		Expect(first).To(Equal(upTo(len(first))), "the killed producer's items, old ring then new, in order, none twice")
		Expect(len(first)).To(BeNumerically(">=", int(n.FinalSeq)))
		Eventually(func() []string { return segmentsOf(ch) }).Should(ConsistOf(ch),
			"the dead producer's remapped segment is left beside the successor's")
		Expect(c.Close()).To(Succeed())
		Expect(p2.Stop(10 * time.Second)).To(Succeed())
		Expect(segmentsOf(ch)).To(BeEmpty())
	})
})

// rawBroker is a DEALER speaking hand-made broker frames (docs/protocol.md).
type rawBroker struct {
	d   *wire.Dealer
	seq int
}

func dialBroker(s *broker.Service) *rawBroker {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sec, err := support.CurveClient(s.PublicKey())
	Expect(err).NotTo(HaveOccurred())
	d, err := wire.Dial(ctx, wire.Config{Security: sec}, s.Endpoint())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return &rawBroker{d: d}
}

func (c *rawBroker) send(m proto.Message) {
	GinkgoHelper()
	f, err := proto.Encode(m)
	Expect(err).NotTo(HaveOccurred())
	Expect(c.d.Send(f...)).To(Succeed())
}

func (c *rawBroker) req(r proto.Request) string {
	c.seq++
	id := fmt.Sprintf("rc-%d", c.seq)
	proto.Stamp(r, id)
	c.send(r)
	return id
}

func (c *rawBroker) recv() proto.Message {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.d.Recv(ctx)
	Expect(err).NotTo(HaveOccurred())
	m, err := proto.DecodeFrames(f)
	Expect(err).NotTo(HaveOccurred())
	return m
}

// call sends r and returns its reply (notifications before it are skipped).
func (c *rawBroker) call(r proto.Request) proto.Reply {
	GinkgoHelper()
	id := c.req(r)
	for {
		m := c.recv()
		if rep, ok := proto.AsReply(m); ok && proto.CorrelationOf(rep) == id {
			return rep
		}
	}
}

func errCodeOf(r proto.Reply) proto.Code {
	if e, ok := r.(*proto.ErrorReply); ok {
		return e.ErrorCode
	}
	return ""
}
