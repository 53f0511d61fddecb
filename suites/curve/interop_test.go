package curve_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/go-zeromq/zmq4"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/internal/wire/curve"
	"github.com/pylabhub/plh/suites/support"
)

var _ = Describe("CURVE interop with libzmq", func() {
	It("serves a pyzmq CURVE DEALER from a zmq4 ROUTER (multipart request/reply)", func() {
		srv, cli := keys(), keys()
		log, logger := newLog()
		addr := startEchoRouter(curve.ServerConfig{Keys: srv, Allow: []curve.PublicKey{cli.Public}, Logger: logger})
		p := pyClient("pyclient", addr, srv.Public, &cli, 10, 15*time.Second)
		Eventually(p.Done(), 30*time.Second).Should(BeClosed())
		_, code := p.Exited()
		Expect(code).To(Equal(0), "%v\n%s\nserver log:\n%s", p.Events(), p.Stderr(), log.String())
		Expect(p.Count("reply", nil)).To(Equal(10))
	})

	It("serves a pyzmq CURVE DEALER from an internal/wire Router (the broker's socket)", func() {
		srv := keys()
		_, logger := newLog()
		sec, err := curve.NewServerSecurity(curve.ServerConfig{Keys: srv, Logger: logger})
		Expect(err).NotTo(HaveOccurred())
		r := startWireEchoRouter(sec, logger)
		Expect(r.PublicKey()).To(Equal(srv.Public.String()))
		expectGoodClient("pyclient", r.Endpoint(), srv.Public, nil)
	})

	It("talks from a zmq4 DEALER to a pyzmq CURVE ROUTER", func() {
		srv := keys()
		p, err := support.Start("pyserver", GinkgoWriter, nil, python, "testdata/server.py", "pyserver", srv.Secret.Z85())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Kill)
		Eventually(field(p, "server_ready", "endpoint"), 20*time.Second).ShouldNot(BeEmpty())
		Expect(field(p, "server_ready", "public")()).To(Equal(srv.Public.String()))

		d, err := dialDealer(field(p, "server_ready", "endpoint")(), curve.ClientConfig{ServerKey: srv.Public})
		Expect(err).NotTo(HaveOccurred())
		for i := range 5 {
			payload := bytes.Repeat([]byte{byte(i)}, 100+i*3000)
			Expect(d.Send(zmq4.NewMsgFrom([]byte(fmt.Sprint("m", i)), nil, payload))).To(Succeed())
			rep, err := d.Recv()
			Expect(err).NotTo(HaveOccurred())
			Expect(rep.Frames).To(HaveLen(4))
			Expect(string(rep.Frames[0])).To(Equal(fmt.Sprint("m", i)))
			Expect(rep.Frames[1]).To(BeEmpty())
			Expect(rep.Frames[2]).To(Equal(payload))
			Expect(string(rep.Frames[3])).To(Equal("pyzmq"))
		}
		Eventually(func() int { return p.Count("echo", nil) }, 10*time.Second).Should(Equal(5))
	})
})

var _ = Describe("CURVE refusals", func() {
	It("drops a pyzmq client that uses the wrong server key, and keeps serving", func() {
		srv := keys()
		log, logger := newLog()
		addr := startEchoRouter(curve.ServerConfig{Keys: srv, Logger: logger})
		bad := pyClient("wrongkey", addr, keys().Public, nil, 1, 1500*time.Millisecond)
		Eventually(log.String, 20*time.Second).Should(ContainSubstring("wrong key"))
		expectGoodClient("good", addr, srv.Public, nil)
		Eventually(bad.Done(), 30*time.Second).Should(BeClosed())
		Expect(bad.Count("timeout", nil)).To(Equal(1))
	})

	It("fails a zmq4 DEALER fast when the pyzmq server holds another key", func() {
		srv := keys()
		p, err := support.Start("pyserver", GinkgoWriter, nil, python, "testdata/server.py", "pyserver", srv.Secret.Z85())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Kill)
		Eventually(field(p, "server_ready", "endpoint"), 20*time.Second).ShouldNot(BeEmpty())
		start := time.Now()
		_, err = dialDealer(field(p, "server_ready", "endpoint")(), curve.ClientConfig{ServerKey: keys().Public})
		Expect(err).To(MatchError(curve.ErrHandshake))
		Expect(err.Error()).To(ContainSubstring("mid-handshake"))
		GinkgoWriter.Printf("refused after %v: %v\n", time.Since(start), err)
	})

	It("refuses a client key outside the allowlist with ERROR, and keeps serving", func() {
		srv, good := keys(), keys()
		log, logger := newLog()
		addr := startEchoRouter(curve.ServerConfig{Keys: srv, Allow: []curve.PublicKey{good.Public}, Logger: logger})
		stranger := keys()
		bad := pyClient("stranger", addr, srv.Public, &stranger, 1, 1500*time.Millisecond)
		Eventually(log.String, 20*time.Second).Should(ContainSubstring("client key not allowed: " + stranger.Public.String()))
		expectGoodClient("good", addr, srv.Public, &good)
		Eventually(bad.Done(), 30*time.Second).Should(BeClosed())
		Expect(bad.Count("reply", nil)).To(Equal(0))

		// Our own client learns why.
		_, err := dialDealer(addr, curve.ClientConfig{ServerKey: srv.Public, Keys: stranger})
		Expect(errors.Is(err, curve.ErrRefused)).To(BeTrue(), "%v", err)
	})

	for _, attack := range []string{"tamper", "replay"} {
		It("drops a connection whose MESSAGE is attacked in transit ("+attack+"), and keeps serving", func() {
			srv := keys()
			log, logger := newLog()
			addr := startEchoRouter(curve.ServerConfig{Keys: srv, Logger: logger})
			r := startRelay(addr, attack)
			victim := pyClient("victim", r.Addr(), srv.Public, nil, 1, 1500*time.Millisecond)
			Eventually(r.Hits, 20*time.Second).Should(Receive())
			want := map[string]string{"tamper": "tampered", "replay": "replayed message"}[attack]
			Eventually(log.String, 20*time.Second).Should(ContainSubstring(want))
			expectGoodClient("good", addr, srv.Public, nil)
			Eventually(victim.Done(), 30*time.Second).Should(BeClosed())
		})
	}

	It("times out a truncated handshake without delaying other clients", func() {
		srv := keys()
		log, logger := newLog()
		addr := startEchoRouter(curve.ServerConfig{Keys: srv, Logger: logger, HandshakeTimeout: 6 * time.Second})
		raw, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(raw.Close)
		greeting := append([]byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0}, []byte("CURVE")...)
		greeting = append(greeting, make([]byte, 64-len(greeting))...)
		_, err = raw.Write(append(greeting, 0x04, 200, 5, 'H', 'E')) // HELLO cut short
		Expect(err).NotTo(HaveOccurred())

		expectGoodClient("good", addr, srv.Public, nil)
		Expect(log.String()).NotTo(ContainSubstring("deadline"), "the good client finished before the deadline")
		Eventually(log.String, 20*time.Second).Should(ContainSubstring("handshake deadline exceeded"))
		// The server closed the silent connection.
		Expect(raw.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		_, err = raw.Read(make([]byte, 1024)) // its greeting
		for err == nil {
			_, err = raw.Read(make([]byte, 1024))
		}
		Expect(err).NotTo(MatchError(ContainSubstring("timeout")))
	})

	It("times out a zmq4 DEALER whose server never answers", func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(ln.Close)
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
		}()
		DeferCleanup(func() {
			select {
			case c := <-accepted:
				_ = c.Close()
			default:
			}
		})
		start := time.Now()
		_, err = dialDealer("tcp://"+ln.Addr().String(), curve.ClientConfig{ServerKey: keys().Public, HandshakeTimeout: time.Second})
		Expect(err).To(MatchError(curve.ErrHandshakeTimeout))
		Expect(time.Since(start)).To(BeNumerically("<", 20*time.Second))
	})
})
