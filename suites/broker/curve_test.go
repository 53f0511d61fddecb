package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
	"github.com/pylabhub/plh/suites/support"
)

// curveClient returns a wire.Config whose Security is a CURVE client for the
// server key serverKey (Z85), with a fixed client key pair when keys is not zero.
func curveClient(serverKey string, keys curve.KeyPair) wire.Config {
	pk, err := curve.ParsePublicKey(serverKey)
	Expect(err).NotTo(HaveOccurred())
	sec, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: pk, Keys: keys})
	Expect(err).NotTo(HaveOccurred())
	// A long handshake deadline: a refusal must come from the server, not a timer.
	return wire.Config{Security: sec, HandshakeTimeout: 60 * time.Second}
}

func dialWith(cfg wire.Config, ep string) *rawClient {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := wire.Dial(ctx, cfg, ep)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return &rawClient{d: d}
}

// dialRefused dials ep with cfg and returns the first dial failure, which must
// come well before the (60 s) handshake deadline.
func dialRefused(ctx context.Context, cfg wire.Config, ep string) error {
	d, err := wire.NewDealer(cfg, ep)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	var failed error
	Eventually(ctx, d.Events()).WithTimeout(20 * time.Second).Should(Receive(Satisfy(func(e wire.Event) bool {
		failed = e.Err
		return e.Kind == wire.DialFailed
	})))
	Expect(d.Connected()).To(BeFalse())
	return failed
}

func newKeys() curve.KeyPair {
	kp, err := curve.GenerateKeyPair()
	Expect(err).NotTo(HaveOccurred())
	return kp
}

var _ = Describe("CURVE on the broker (spec §3, docs/security.md)", func() {
	It("serves a wire Dealer with CURVE client security: register, discover, ping", func() {
		s := startBroker(broker.Config{})
		Expect(s.PublicKey()).To(HaveLen(40))
		prod := dialWith(curveClient(s.PublicKey(), curve.KeyPair{}), s.Endpoint())
		cons := dialWith(curveClient(s.PublicKey(), curve.KeyPair{}), s.Endpoint())
		ch := support.UniqueName("curve")
		register(prod, ch, strings.Repeat("c", 64), 4711)
		d, ok := cons.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck)
		Expect(ok).To(BeTrue())
		Expect(d.ShmName).To(Equal(ch + ".shm"))
		Expect(s.Stats().Wire.HandshakeFailures).To(BeZero())
	})

	It("refuses a client with the wrong server key at once and keeps serving others", func(ctx SpecContext) {
		logs := &logBuf{}
		s := startBroker(broker.Config{
			Wire: wire.Config{HandshakeTimeout: 60 * time.Second}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		wrong := newKeys().Public.String()
		err := dialRefused(ctx, curveClient(wrong, curve.KeyPair{}), s.Endpoint())
		Expect(err).To(HaveOccurred())
		Expect(errors.Is(err, curve.ErrHandshakeTimeout)).To(BeFalse(), "refused by a timer, not the server: %v", err)
		Eventually(ctx, func() uint64 { return s.Stats().Wire.HandshakeFailures }).Should(BeNumerically(">=", 1))
		Eventually(ctx, logs.String).Should(ContainSubstring("wrong key"))

		By("a NULL client on the CURVE port is refused too")
		Expect(dialRefused(ctx, wire.Config{HandshakeTimeout: 60 * time.Second}, s.Endpoint())).To(HaveOccurred())

		By("a client with the right key is served meanwhile")
		good := dialWith(curveClient(s.PublicKey(), curve.KeyPair{}), s.Endpoint())
		Expect(good.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
	}, SpecTimeout(60*time.Second))

	It("with an allowlist serves listed clients and refuses unknown ones (ERROR 400)", func(ctx SpecContext) {
		listed, stranger := newKeys(), newKeys()
		logs := &logBuf{}
		s := startBroker(broker.Config{Curve: broker.CurveConfig{Allow: []curve.PublicKey{listed.Public}},
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		err := dialRefused(ctx, curveClient(s.PublicKey(), stranger), s.Endpoint())
		Expect(err).To(MatchError(ContainSubstring("refused")))
		Eventually(ctx, logs.String).Should(ContainSubstring(stranger.Public.String()))

		By("a fresh per-connection key pair is unknown as well")
		Expect(dialRefused(ctx, curveClient(s.PublicKey(), curve.KeyPair{}), s.Endpoint())).To(HaveOccurred())

		ok := dialWith(curveClient(s.PublicKey(), listed), s.Endpoint())
		Expect(ok.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
	}, SpecTimeout(60*time.Second))
})
