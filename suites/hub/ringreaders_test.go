package hub_test

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
	"github.com/pylabhub/plh/suites/support"
	"time"
)

// How many consumers may read a channel's ring (hub/doc.go, "Ring readers"):
// one where the pattern or the policy cannot share it, several otherwise.
var _ = Describe("Ring readers per pattern and policy", func() {
	type pair struct {
		pattern hub.Pattern
		sync    shm.SyncPolicy
		sole    bool
	}
	pairs := []pair{
		{hub.PatternPubSub, shm.LatestOnly, false},
		{hub.PatternPubSub, shm.SingleReader, true},
		{hub.PatternPubSub, shm.SyncReader, false},
		{hub.PatternBidir, shm.LatestOnly, false},
		{hub.PatternBidir, shm.SingleReader, true},
		{hub.PatternBidir, shm.SyncReader, false},
		{hub.PatternPipeline, shm.LatestOnly, true},
		{hub.PatternPipeline, shm.SingleReader, true},
		{hub.PatternPipeline, shm.SyncReader, true},
	}
	for _, pr := range pairs {
		verdict := "allows a second reader; both read"
		if pr.sole {
			verdict = "refuses a second reader until the first closes"
		}
		It(fmt.Sprintf("%s over %s %s", pr.pattern, pr.sync, verdict), func() {
			_, m := brokerAndMessenger()
			cfg := shmCfg()
			cfg.Sync = pr.sync
			p := newProducer(m, hub.ProducerOptions{Pattern: pr.pattern, SHM: cfg})
			opts := hub.ConsumerOptions{Channel: p.Channel(), Secret: secret}
			c1 := connect(m, opts)
			Expect(c1.HasSHM()).To(BeTrue(), "%v", c1.SHMError())
			if !pr.sole {
				c2 := connect(m, opts)
				Expect(c2.HasSHM()).To(BeTrue(), "%v", c2.SHMError())
				writeStamp(p, 41)
				Expect(readStamp(c1)).To(Equal(uint32(41)))
				Expect(readStamp(c2)).To(Equal(uint32(41)))
				return
			}
			c2, err := hub.Connect(context.Background(), m, opts)
			if c2 != nil {
				c2.Close()
			}
			Expect(err).To(MatchError(hub.ErrRingReaderTaken), "a second reader was let in")
			Expect(err).To(MatchError(shm.ErrReaderLocked))
			Expect(err.Error()).To(ContainSubstring(pr.sync.String()))
			writeStamp(p, 42)
			Expect(readStamp(c1)).To(Equal(uint32(42)), "the refusal disturbed the reader")
			Expect(c1.Close()).To(Succeed())
			c3 := connect(m, opts)
			Expect(c3.HasSHM()).To(BeTrue(), "%v", c3.SHMError())
		})
	}

	It("a killed reader process frees the ring for the next reader", func() {
		s := startBroker(broker.Config{})
		m := newMessenger(s, 0, proc.Identity{})
		cfg := shmCfg()
		cfg.Sync = shm.SingleReader
		p := newProducer(m, hub.ProducerOptions{SHM: cfg, Channel: support.UniqueName("sole")})
		opts := hub.ConsumerOptions{Channel: p.Channel(), Secret: secret}
		c := node("c", "--role", "consumer", "--broker", s.Endpoint(), "--broker-key", s.PublicKey(), "--channel", p.Channel(),
			"--shm", "--secret", fmt.Sprint(uint64(secret)))
		Eventually(saw(c, "attached", func(e event.Event) bool { return e.Fields["shm"] == true })).WithTimeout(10 * time.Second).Should(BeTrue())
		_, err := hub.Connect(context.Background(), m, opts)
		Expect(err).To(MatchError(hub.ErrRingReaderTaken))
		c.Kill()
		<-c.Done()
		r := connect(m, opts)
		Expect(r.HasSHM()).To(BeTrue(), "%v", r.SHMError())
	})
})
