package hub_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/suites/support"
)

// seqLog records the sequence numbers (plh-node payload: little-endian u64 at
// offset 0) a consumer reads, in order.
type seqLog struct {
	mu   sync.Mutex
	seqs []uint64
}

func (l *seqLog) add(b []byte) {
	if len(b) < 8 {
		return
	}
	l.mu.Lock()
	l.seqs = append(l.seqs, binary.LittleEndian.Uint64(b))
	l.mu.Unlock()
}

func (l *seqLog) len() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.seqs) }

// successor returns what was read from index from on, starting at the first
// sequence 0 there (a successor producer counts from 0 again).
func (l *seqLog) successor(from int) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := from; i < len(l.seqs); i++ {
		if l.seqs[i] == 0 {
			return append([]uint64(nil), l.seqs[i:]...)
		}
	}
	return nil
}

// fillNodePayload writes plh-node's payload layout (cmd/internal/noderole,
// at least 32 bytes): sequence, send time, the writer's pid, then the pattern a
// plh-node consumer verifies.
func fillNodePayload(b []byte, seq uint64) {
	binary.LittleEndian.PutUint64(b, seq)
	binary.LittleEndian.PutUint64(b[8:], uint64(proc.Now()))
	binary.LittleEndian.PutUint64(b[16:], uint64(os.Getpid()))
	for i := 24; i < len(b); i++ {
		b[i] = byte(seq*131) ^ byte(i*7+1)
	}
}

func upTo(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i)
	}
	return out
}

// readAll reads c until the spec ends: from the DataBlock (Pull) when useSHM,
// else from the peer link (Recv).
func readAll(c *hub.Consumer, useSHM bool, log *seqLog) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	DeferCleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if !useSHM {
				b, err := c.Recv(ctx)
				if err == nil {
					log.add(b)
				}
				continue
			}
			_ = c.Pull(ctx, 100*time.Millisecond, func(tx *hub.ReadTxn) error {
				s, err := tx.Next()
				if err != nil {
					return err
				}
				log.add(s.Bytes())
				return nil
			})
		}
	}()
}

var _ = Describe("Producer restart: the consumers the broker kept follow the successor (issue 11 item 2)", func() {
	// The broker's channel timeout is far above every deadline below: the old
	// channel entry is never closed, only replaced by the successor's REG_REQ.
	const brokerTimeout = 30 * time.Second

	followSpec := func(label string, useSHM bool, mode ...string) {
		s := startBroker(broker.Config{ChannelTimeout: brokerTimeout})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName(label)
		common := append([]string{"--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(),
			"--channel", ch, "--schema", "follow.v1"}, mode...)
		p1 := node("p1", append(common, "--rate", "200")...)
		Eventually(saw(p1, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		restarted := &calls[hub.ChannelInfo]{}
		opts := hub.ConsumerOptions{Channel: ch, ProducerLostAfter: 300 * time.Millisecond,
			Callbacks: hub.ConsumerCallbacks{OnProducerRestarted: restarted.add,
				OnChannelClosing: func(string) { Fail("the channel was closed: the spec proves nothing") }}}
		if useSHM {
			opts.Secret = 0xF011
		}
		c := connect(m, opts)
		Expect(c.HasSHM()).To(Equal(useSHM), "SHM attach: %v", c.SHMError())
		Expect(c.Start()).To(Succeed())
		log := &seqLog{}
		readAll(c, useSHM, log)
		Eventually(log.len).WithTimeout(10 * time.Second).Should(BeNumerically(">", 20))

		p1.Kill()
		from := log.len()
		p2 := node("p2", append(common, "--count", "50", "--linger", "1m")...)
		Eventually(saw(p2, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		// Everything the successor writes is read, in order, without any action
		// of the application.
		Eventually(func() []uint64 { return log.successor(from) }).WithTimeout(20*time.Second).Should(Equal(upTo(50)),
			"the consumer did not follow the successor producer")
		Eventually(saw(p2, "written", func(e event.Event) bool { return num(e, "last_seq") == 49 })).
			WithTimeout(5*time.Second).Should(BeTrue(), "the successor could not write everything")
		// The move is reported once, with the successor's record.
		Eventually(restarted.n).WithTimeout(5 * time.Second).Should(Equal(1))
		Expect(restarted.list()[0].ProducerPid).To(BeEquivalentTo(p2.Cmd.Process.Pid))
		Expect(c.Info().ProducerPid).To(BeEquivalentTo(p2.Cmd.Process.Pid))
		Expect(c.Stats().Restarts).To(BeEquivalentTo(1))
		Expect(c.HasSHM()).To(Equal(useSHM))
	}

	It("over shared memory (Single_reader): re-attaches the successor's segment and reads all it writes", func() {
		followSpec("follow_shm", true, "--shm", "--policy", "single", "--slots", "8", "--secret", fmt.Sprint(0xF011))
	})

	It("over the peer link (Pipeline): dials the successor's endpoint, says HELLO and reads all it sends", func() {
		followSpec("follow_zmq", false, "--pattern", "Pipeline")
	})

	// The two ways a consumer's ring Reader is replaced meet: after following a
	// restart, a lost heartbeat entry replaces the Reader of the successor's
	// ring only, and its pass-over of delivered slots counts the successor's
	// slots (which start at 0 again), not the predecessor's.
	It("a lost heartbeat entry after the move replaces the successor ring's Reader and loses nothing of it", func() {
		s := startBroker(broker.Config{ChannelTimeout: brokerTimeout})
		m := newMessenger(s, 0, proc.Identity{})
		ch := support.UniqueName("follow_entry")
		common := []string{"--role", "producer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", ch,
			"--schema", "follow.v1", "--shm", "--policy", "single", "--slots", "8", "--secret", fmt.Sprint(0xF012)}
		p1 := node("p1", append(common, "--rate", "400")...)
		Eventually(saw(p1, "ready", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		restarted := &calls[hub.ChannelInfo]{}
		reattached := &calls[hub.ChannelNotice]{}
		c := connect(m, hub.ConsumerOptions{Channel: ch, ProducerLostAfter: 300 * time.Millisecond, Secret: 0xF012,
			Callbacks: hub.ConsumerCallbacks{OnProducerRestarted: restarted.add,
				OnChannelError: func(n hub.ChannelNotice) {
					if n.Event == hub.EventRingReattached {
						reattached.add(n)
					}
				},
				OnChannelClosing: func(string) { Fail("the channel was closed: the spec proves nothing") }}})
		Expect(c.HasSHM()).To(BeTrue(), "SHM attach: %v", c.SHMError())
		Expect(c.Start()).To(Succeed())
		log := &seqLog{}
		readAll(c, true, log)
		// Many more slots of the first ring delivered than the successor will
		// have written when its Reader is replaced.
		Eventually(log.len).WithTimeout(10 * time.Second).Should(BeNumerically(">", 200))

		p1.Kill()
		from := log.len()
		p2 := node("p2", append(common, "--rate", "50", "--count", "5000", "--linger", "1m")...)
		Eventually(restarted.n).WithTimeout(20 * time.Second).Should(Equal(1))
		Eventually(func() int { return len(log.successor(from)) }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 10))
		_, err := chaos.CorruptControl(c.Info().ShmName, chaos.TargetHeartbeats)
		Expect(err).NotTo(HaveOccurred())
		Eventually(reattached.n).WithTimeout(10*time.Second).Should(Equal(1), "the Reader was not replaced")
		n := len(log.successor(from))
		Eventually(func() int { return len(log.successor(from)) }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", n+20))
		got := log.successor(from)
		Expect(got).To(Equal(upTo(len(got))), "the successor's slots were skipped or read twice after the replacement")
		Expect(c.RingStats().Reattached).To(BeEquivalentTo(1))
		Expect(c.Info().ProducerPid).To(BeEquivalentTo(p2.Cmd.Process.Pid))
	})
})

var _ = Describe("A consumer declared dead comes back (issue 11 item 4)", func() {
	It("a consumer paused past the broker's consumer timeout is re-admitted by its producer and reads on (peer link)", func() {
		s := startBroker(broker.Config{ConsumerTimeout: time.Second, ChannelTimeout: time.Minute})
		m := newMessenger(s, 0, proc.Identity{})
		died := &calls[string]{}
		p := newProducer(m, hub.ProducerOptions{Pattern: hub.PatternPubSub, PeerTimeout: -1,
			Callbacks: hub.ProducerCallbacks{OnConsumerDied: func(_ uint64, r string) { died.add(r) }}})
		Expect(p.Start()).To(Succeed())
		ctx, cancel := context.WithCancel(context.Background())
		sent := make(chan struct{})
		DeferCleanup(func() { cancel(); <-sent })
		go func() {
			defer close(sent)
			buf := make([]byte, 32)
			for seq := uint64(0); ctx.Err() == nil; seq++ {
				fillNodePayload(buf, seq)
				sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
				if err := p.Send(sctx, buf); err != nil && !errors.Is(err, hub.ErrBackpressure) && ctx.Err() == nil {
					defer GinkgoRecover()
					Fail("send: " + err.Error())
				}
				scancel()
				time.Sleep(5 * time.Millisecond) // pacing the writer (~200 items/s), not a wait for an event
			}
		}()
		c := node("c", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", p.Channel(),
			"--heartbeat", "200ms")
		Eventually(saw(c, "read", nil)).WithTimeout(10 * time.Second).Should(BeTrue())
		Expect(p.ConnectedConsumers()).To(HaveLen(1))

		Expect(c.Signal(syscall.SIGSTOP)).To(Succeed())
		Eventually(died.list).WithTimeout(10 * time.Second).Should(ContainElement("heartbeat_timeout"))
		Expect(p.ConnectedConsumers()).To(BeEmpty())
		Expect(c.Signal(syscall.SIGCONT)).To(Succeed())

		// It is taken back: joined again, registered with the broker again, and
		// reading again.
		Eventually(func() int { return len(p.ConnectedConsumers()) }).WithTimeout(10 * time.Second).Should(Equal(1))
		Eventually(func() (uint64, error) {
			info, err := m.Discover(context.Background(), p.Channel())
			return info.ConsumerCount, err
		}).WithTimeout(10*time.Second).Should(BeEquivalentTo(1), "the broker did not get the consumer back")
		before := c.Count("read", nil)
		Eventually(func() int { return c.Count("read", nil) }).WithTimeout(10*time.Second).Should(BeNumerically(">", before+3),
			"the consumer starves after its resumption")
	})
})
