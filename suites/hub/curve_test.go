package hub_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
	"github.com/pylabhub/plh/suites/support"
)

// curveClient is a CURVE client Security for a Z85 server key (nil for "").
func curveClient(key string) wire.Security {
	sec, err := support.CurveClient(key)
	Expect(err).NotTo(HaveOccurred())
	return sec
}

var _ = Describe("CURVE on the broker and producer-consumer links (protocol.md §3)", func() {
	var (
		s *broker.Service
		m *hub.Messenger
	)
	BeforeEach(func() {
		s, m = brokerAndMessenger()
		Expect(s.PublicKey()).To(HaveLen(40), "the broker is CURVE by default")
	})

	for _, pat := range []hub.Pattern{hub.PatternPubSub, hub.PatternPipeline} {
		It("delivers "+string(pat)+" data over a CURVE peer link, the producer's key travelling in REG_REQ/DISC_ACK", func(ctx SpecContext) {
			p := newProducer(m, hub.ProducerOptions{Pattern: pat})
			Expect(p.PublicKey()).To(HaveLen(40))
			info, err := m.Discover(ctx, p.Channel())
			Expect(err).NotTo(HaveOccurred())
			Expect(info.PubKey).To(Equal(p.PublicKey()))
			c := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
			for i := range uint32(20) {
				Expect(p.Send(ctx, u32(i))).To(Succeed())
			}
			for i := range uint32(20) {
				Expect(recv(c, 5*time.Second)).To(Equal(u32(i)))
			}
			Expect(p.Stats().Dropped).To(BeZero())
		}, SpecTimeout(30*time.Second))
	}

	It("keeps NULL peer links when the producer opts out (NoCurve): no key in DISC_ACK", func(ctx SpecContext) {
		p := newProducer(m, hub.ProducerOptions{NoCurve: true})
		Expect(p.PublicKey()).To(BeEmpty())
		info, err := m.Discover(ctx, p.Channel())
		Expect(err).NotTo(HaveOccurred())
		Expect(info.PubKey).To(BeEmpty())
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		Expect(p.Send(ctx, u32(9))).To(Succeed())
		Expect(recv(c, 5*time.Second)).To(Equal(u32(9)))
	}, SpecTimeout(30*time.Second))

	It("refuses a NULL peer on a CURVE producer and keeps serving", func(ctx SpecContext) {
		p := newProducer(m, hub.ProducerOptions{})
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		d, err := wire.Dial(sctx, wire.Config{HandshakeTimeout: time.Second}, p.Endpoint())
		if err == nil {
			d.Close()
		}
		Expect(err).To(MatchError(wire.ErrNotConnected))
		c := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		Expect(p.Send(ctx, u32(3))).To(Succeed())
		Expect(recv(c, 5*time.Second)).To(Equal(u32(3)))
	}, SpecTimeout(30*time.Second))

	It("fails a consumer fast with ErrPeerSecurity when discovery gives a wrong producer key; the producer keeps serving", func(ctx SpecContext) {
		p := newProducer(m, hub.ProducerOptions{})
		Expect(p.Start()).To(Succeed())
		// A fake channel pointing at the real producer's socket with a bogus key.
		bogus, err := curve.GenerateKeyPair()
		Expect(err).NotTo(HaveOccurred())
		fake := support.UniqueName("fake")
		rogue := newMessenger(s, 0, proc.Identity{})
		Expect(rogue.RegisterProducer(ctx, fake, hub.ProducerInfo{Pattern: hub.PatternPubSub,
			CtrlEndpoint: p.Endpoint(), DataEndpoint: p.Endpoint(), PubKey: bogus.Public.String()})).To(Succeed())

		// The deadline is far away: only a fast, non-retried failure passes.
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		c, err := hub.Connect(cctx, m, hub.ConsumerOptions{Channel: fake, Timeout: time.Minute})
		Expect(c).To(BeNil())
		Expect(err).To(MatchError(hub.ErrPeerSecurity))
		Expect(err).To(MatchError(curve.ErrHandshake))
		Expect(err.Error()).To(ContainSubstring(p.Endpoint()))
		Expect(cctx.Err()).NotTo(HaveOccurred(), "Connect waited for its deadline")

		// A malformed key from discovery is refused before dialling.
		Expect(rogue.RegisterProducer(ctx, fake+"_bad", hub.ProducerInfo{CtrlEndpoint: p.Endpoint(), PubKey: "not a key"})).To(Succeed())
		_, err = hub.Connect(ctx, m, hub.ConsumerOptions{Channel: fake + "_bad"})
		Expect(err).To(MatchError(hub.ErrBadReply))

		Expect(p.ConnectedConsumers()).To(BeEmpty())
		good := connect(m, hub.ConsumerOptions{Channel: p.Channel()})
		Expect(p.Send(ctx, u32(5))).To(Succeed())
		Expect(recv(good, 5*time.Second)).To(Equal(u32(5)))
	}, SpecTimeout(90*time.Second))
})
