package broker_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

// requestTimeout is a plh client's request timeout (hub.MessengerConfig
// default): a new client must be answered within it however many bad
// connections the hub holds.
const requestTimeout = 5 * time.Second

// zmtpGreeting is a 64-byte ZMTP greeting of version major.minor offering mechanism.
func zmtpGreeting(major, minor byte, mechanism string) []byte {
	g := make([]byte, 64)
	g[0], g[9], g[10], g[11] = 0xff, 0x7f, major, minor
	copy(g[12:32], mechanism)
	return g
}

// failedHandshakes are what a failed NULL handshake sends before closing: the
// signature alone, a PLAIN greeting, a version 2.0 greeting.
var failedHandshakes = [][]byte{
	zmtpGreeting(3, 0, "NULL")[:10],
	zmtpGreeting(3, 0, "PLAIN"),
	zmtpGreeting(2, 0, "NULL"),
}

// newClientPing dials a new client to ep and sends one PING; it returns the
// time from dial to PING_ACK, failing the spec beyond requestTimeout.
func newClientPing(ep string) time.Duration {
	GinkgoHelper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	d, err := wire.Dial(ctx, wire.Config{}, ep)
	Expect(err).NotTo(HaveOccurred(), "a new client could not connect within %v", requestTimeout)
	defer d.Close()
	f, err := proto.Encode(&proto.PingReq{ReqHeader: proto.ReqHeader{CorrelationID: "new"}})
	Expect(err).NotTo(HaveOccurred())
	Expect(d.Send(f...)).To(Succeed())
	rep, err := d.Recv(ctx)
	Expect(err).NotTo(HaveOccurred(), "a new client's PING got no answer within %v", requestTimeout)
	Expect(string(rep[1])).To(Equal("PING_ACK"))
	return time.Since(t0)
}

// holdHalfOpen opens n connections to ep that never finish a greeting (even
// ones send nothing, odd ones the signature and the major version only) and
// closes them at the end of the spec.
func holdHalfOpen(ep string, n int) {
	GinkgoHelper()
	addr := strings.TrimPrefix(ep, "tcp://")
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		if i%2 == 1 {
			_, err = c.Write(zmtpGreeting(3, 0, "NULL")[:11])
			Expect(err).NotTo(HaveOccurred())
		}
		conns = append(conns, c)
	}
	DeferCleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
}

// reopenHalfOpen is an attacker that keeps n connections to ep that never
// finish a greeting (even ones send nothing, odd ones the signature and the
// major version only), holds each until the hub closes it and then opens it
// again at once, until the end of the spec. It returns how many it re-opened
// so far.
func reopenHalfOpen(ep string, n int) (reopened func() int64) {
	addr := strings.TrimPrefix(ep, "tcp://")
	quit := make(chan struct{})
	var count atomic.Int64
	var mu sync.Mutex // guards open and quit's closing
	open := map[net.Conn]bool{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := true; ; first = false {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					select {
					case <-quit:
						return
					case <-time.After(50 * time.Millisecond):
						continue
					}
				}
				mu.Lock()
				select {
				case <-quit:
					mu.Unlock()
					c.Close()
					return
				default:
				}
				open[c] = true
				mu.Unlock()
				if !first {
					count.Add(1)
				}
				if i%2 == 1 {
					_, _ = c.Write(zmtpGreeting(3, 0, "NULL")[:11])
				}
				_, _ = io.Copy(io.Discard, c) // until the hub closes it
				mu.Lock()
				delete(open, c)
				mu.Unlock()
				c.Close()
			}
		}()
	}
	DeferCleanup(func() {
		mu.Lock()
		close(quit)
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return count.Load
}

var _ = Describe("a NULL hub under connections that never complete a handshake", Label("hostile"), func() {
	It("keeps no descriptor of 1,000 failed handshakes and still answers a new client within its request timeout", func(ctx SpecContext) {
		p, ready := startLimitedHub("", nil)
		ep, hub := ready.Str("endpoint"), p.Cmd.Process.Pid
		Expect(newClientPing(ep)).To(BeNumerically("<", requestTimeout))
		base := procFDs(hub)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 50)
		for i := range 1000 {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				defer func() { <-sem }()
				c, err := net.DialTimeout("tcp", strings.TrimPrefix(ep, "tcp://"), 5*time.Second)
				Expect(err).NotTo(HaveOccurred())
				_, _ = c.Write(failedHandshakes[i%len(failedHandshakes)])
				c.Close()
			}()
		}
		wg.Wait()
		took := newClientPing(ep)
		AddReportEntry("new client after 1,000 failed handshakes", took.String())
		Eventually(func() int { return procFDs(hub) }).WithTimeout(20*time.Second).WithPolling(100*time.Millisecond).
			Should(BeNumerically("<=", base+5), "hub descriptors after 1,000 failed handshakes (baseline %d)", base)
		stopHub(ctx, p)
	}, SpecTimeout(120*time.Second))

	It("answers new clients within their request timeout while 500 half-open connections are held, and frees them after", func(ctx SpecContext) {
		p, ready := startLimitedHub("", nil)
		ep, hub := ready.Str("endpoint"), p.Cmd.Process.Pid
		Expect(newClientPing(ep)).To(BeNumerically("<", requestTimeout))
		base := procFDs(hub)
		holdHalfOpen(ep, 500)
		var took []time.Duration
		for range 5 {
			took = append(took, newClientPing(ep))
		}
		AddReportEntry("new clients with 500 half-open connections held (dial + PING)", took)
		By("the half-open connections are dropped by the handshake timeout: descriptors back to the baseline")
		Eventually(func() int { return procFDs(hub) }).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).
			Should(BeNumerically("<=", base+5), "hub descriptors (baseline %d)", base)
		stopHub(ctx, p)
	}, SpecTimeout(120*time.Second))

	It("answers new clients within their request timeout while 1,000 half-open connections are re-opened as soon as the hub closes them, within its descriptor bound", func(ctx SpecContext) {
		p, ready := startLimitedHub("", nil)
		ep, hub := ready.Str("endpoint"), p.Cmd.Process.Pid
		Expect(newClientPing(ep)).To(BeNumerically("<", requestTimeout))
		base := procFDs(hub)
		reopened := reopenHalfOpen(ep, 1000)
		By("the attacker is refused or evicted and re-opens: the hub is at its handshake bound")
		Eventually(reopened).WithTimeout(30 * time.Second).Should(BeNumerically(">", 1000))
		var took []time.Duration
		for range 5 {
			took = append(took, newClientPing(ep))
			Expect(procFDs(hub)).To(BeNumerically("<=", base+wire.DefaultConfig().MaxHandshakes+32),
				"hub descriptors over its handshake bound (baseline %d)", base)
		}
		AddReportEntry("new clients while 1,000 half-open connections are re-opened at once (dial + PING)", took)
		AddReportEntry("connections the attacker re-opened", reopened())
		stopHub(ctx, p)
	}, SpecTimeout(120*time.Second))
})
