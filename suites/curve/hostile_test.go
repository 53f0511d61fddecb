package curve_test

import (
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/internal/wire/curve"
)

var _ = Describe("CURVE under hostile clients", func() {
	It("serves a pyzmq client past idle connections and a burst of failed handshakes, with the Warn lines bounded", func() {
		srv := keys()
		log, logger := newLog()
		sec, err := curve.NewServerSecurity(curve.ServerConfig{Keys: srv, Logger: logger})
		Expect(err).NotTo(HaveOccurred())
		r := startWireEchoRouter(sec, logger)
		addr := strings.TrimPrefix(r.Endpoint(), "tcp://")
		start := time.Now()

		const idle, bad = 300, 200 // more idle connections than MaxHandshakes (256)
		for range idle {
			c, err := net.Dial("tcp", addr)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(c.Close)
		}
		for range bad {
			c, err := net.Dial("tcp", addr)
			Expect(err).NotTo(HaveOccurred())
			_, _ = c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
			_ = c.Close()
		}
		expectGoodClient("pyclient", r.Endpoint(), srv.Public, nil)

		Eventually(func() uint64 { return r.Stats().HandshakeFailures }, 20*time.Second).Should(BeNumerically(">=", idle+bad))
		warns := strings.Count(log.String(), "level=WARN")
		secs := int(time.Since(start).Seconds()) + 1
		Expect(warns).To(BeNumerically("<=", secs+1), "%d Warn lines in %d s for %d failures", warns, secs, idle+bad)
	})

})
