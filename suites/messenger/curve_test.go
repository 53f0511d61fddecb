package messenger_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/wire/curve"
)

var _ = Describe("Messenger over CURVE (protocol §3)", func() {
	var b *brokerService
	BeforeEach(func() {
		keys, err := curve.GenerateKeyPair()
		Expect(err).NotTo(HaveOccurred())
		sec, err := curve.NewServerSecurity(curve.ServerConfig{Keys: keys})
		Expect(err).NotTo(HaveOccurred())
		cfg := brokerCfg()
		cfg.Wire.Security = sec
		b = startBroker(cfg)
		Expect(b.PublicKey()).To(HaveLen(40))
	})

	It("registers and discovers with the broker's public key", func() {
		m := newMessenger(hub.MessengerConfig{})
		Expect(m.Connect(ctx5(), b.Endpoint(), b.PublicKey())).To(Succeed())
		ch := uniq("curve")
		Expect(m.RegisterProducer(ctx5(), ch, hub.ProducerInfo{ShmName: "sealed"})).To(Succeed())
		info, err := m.Discover(ctx5(), ch)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ShmName).To(Equal("sealed"))
	})

	It("does not connect with a wrong key, nor without one", func() {
		other, err := curve.GenerateKeyPair()
		Expect(err).NotTo(HaveOccurred())
		for _, key := range []string{other.Public.String(), ""} {
			m := newMessenger(hub.MessengerConfig{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			Expect(m.Connect(ctx, b.Endpoint(), key)).To(MatchError(hub.ErrNotConnected))
			cancel()
			Expect(m.Close()).To(Succeed())
		}
	})

	It("refuses a key that is not Z85", func() {
		m := newMessenger(hub.MessengerConfig{})
		Expect(m.Connect(ctx5(), b.Endpoint(), "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~")).To(MatchError(hub.ErrInvalidArgument))
	})
})
