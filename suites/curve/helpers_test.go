package curve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
	"github.com/pylabhub/plh/suites/support"
)

// logBuf is a concurrency-safe sink for the transport's slog output.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = GinkgoWriter.Write(p)
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLog() (*logBuf, *slog.Logger) {
	b := &logBuf{}
	return b, slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func keys() curve.KeyPair {
	kp, err := curve.GenerateKeyPair()
	Expect(err).NotTo(HaveOccurred())
	return kp
}

// startEchoRouter listens a zmq4 ROUTER over the curve transport on an
// ephemeral port and echoes every message; it returns the bound tcp endpoint.
func startEchoRouter(cfg curve.ServerConfig) string {
	ep, err := curve.ServerEndpoint("tcp://127.0.0.1:0", cfg)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	r := zmq4.NewRouter(ctx, zmq4.WithTimeout(2*time.Second))
	Expect(r.Listen(ep.String())).To(Succeed())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			msg, err := r.Recv()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			_ = r.Send(msg)
		}
	}()
	DeferCleanup(func() {
		cancel()
		_ = r.Close()
		<-done
		_ = ep.Close()
	})
	return ep.BoundAddr()
}

// startWireEchoRouter listens an internal/wire Router (the broker's socket)
// with sec on an ephemeral port and echoes every message.
func startWireEchoRouter(sec wire.Security, logger *slog.Logger) *wire.Router {
	r, err := wire.Listen(wire.Config{Security: sec, Logger: logger}, "tcp://127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.Recv(ctx)
			if err != nil {
				return
			}
			_ = r.Send(m.Peer, m.Frames...)
		}
	}()
	DeferCleanup(func() { cancel(); <-done; _ = r.Close() })
	return r
}

// dialDealer dials a zmq4 DEALER over the curve transport (no dial retries, so
// failures surface at once).
func dialDealer(addr string, cfg curve.ClientConfig) (zmq4.Socket, error) {
	ep, err := curve.ClientEndpoint(addr, cfg)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	d := zmq4.NewDealer(ctx, zmq4.WithTimeout(2*time.Second), zmq4.WithDialerMaxRetries(0))
	DeferCleanup(func() {
		cancel()
		_ = d.Close()
		_ = ep.Close()
	})
	return d, d.Dial(ep.String())
}

// pyClient starts client.py against addr and returns the process.
// timeout is the client's per-reply wait: long for clients that must succeed,
// short for victims whose requests are expected to be lost.
func pyClient(name, addr string, server curve.PublicKey, client *curve.KeyPair, count int, timeout time.Duration) *support.Proc {
	sec := "-"
	if client != nil {
		sec = client.Secret.Z85()
	}
	p, err := support.Start(name, GinkgoWriter, nil, python, "testdata/client.py", name, addr, server.String(), sec,
		strconv.Itoa(count), strconv.Itoa(int(timeout.Milliseconds())))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(p.Kill)
	return p
}

// expectGoodClient runs a fresh pyzmq client for 3 round trips: proof that the
// server still serves others.
func expectGoodClient(name, addr string, server curve.PublicKey, client *curve.KeyPair) {
	p := pyClient(name, addr, server, client, 3, 15*time.Second)
	Eventually(p.Done(), 30*time.Second).Should(BeClosed())
	_, code := p.Exited()
	Expect(code).To(Equal(0), "good client failed: %v\n%s", p.Events(), p.Stderr())
	Expect(p.Count("reply", nil)).To(Equal(3))
}

// field returns a string field of the first event of kind.
func field(p *support.Proc, kind, key string) func() string {
	return func() string {
		ev, ok := p.Find(kind, nil)
		if !ok {
			return ""
		}
		s, _ := ev.Fields[key].(string)
		return s
	}
}

// relay is a TCP man-in-the-middle between a client and target. On its first
// connection it applies attack to the first CURVE MESSAGE frame the client sends
// (tamper: flip a ciphertext bit; replay: send the frame twice); everything
// else is copied verbatim.
type relay struct {
	ln     net.Listener
	target string
	attack string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
	used   bool
	Hits   chan struct{} // one value per attack performed
}

func startRelay(target, attack string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	r := &relay{ln: ln, target: strings.TrimPrefix(target, "tcp://"), attack: attack, Hits: make(chan struct{}, 1)}
	r.wg.Add(1)
	go r.serve()
	DeferCleanup(r.Close)
	return r
}

func (r *relay) Addr() string { return "tcp://" + r.ln.Addr().String() }

func (r *relay) Close() {
	_ = r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, s)
		attack := !r.used
		r.used = true
		r.mu.Unlock()
		r.wg.Add(2)
		go func() { defer r.wg.Done(); _, _ = io.Copy(c, s); _ = c.Close() }()
		go func() { defer r.wg.Done(); r.pump(s, c, attack); _ = s.Close() }()
	}
}

// pump copies client→server frame by frame, attacking one MESSAGE if asked.
func (r *relay) pump(dst, src net.Conn, attack bool) {
	br := bufio.NewReader(src)
	greeting := make([]byte, 64)
	if _, err := io.ReadFull(br, greeting); err != nil {
		return
	}
	if _, err := dst.Write(greeting); err != nil {
		return
	}
	for {
		hdr := make([]byte, 2, 9)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return
		}
		size := uint64(hdr[1])
		if hdr[0]&0x02 != 0 {
			hdr = hdr[:9]
			if _, err := io.ReadFull(br, hdr[2:]); err != nil {
				return
			}
			size = binary.BigEndian.Uint64(hdr[1:])
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		frame := append(hdr, body...)
		if attack && bytes.HasPrefix(body, []byte("\x07MESSAGE")) {
			attack = false
			switch r.attack {
			case "tamper":
				frame[len(frame)-1] ^= 0x01
			case "replay":
				frame = append(frame, frame...)
			}
			r.Hits <- struct{}{}
		}
		if _, err := dst.Write(frame); err != nil {
			return
		}
	}
}
