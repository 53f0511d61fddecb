package curve

import (
	"bufio"
	"bytes"
	"testing"
)

var fuzzSrv, fuzzCli = func() (KeyPair, KeyPair) {
	s, _ := GenerateKeyPair()
	c, _ := GenerateKeyPair()
	return s, c
}()

// FuzzHandshake feeds arbitrary frames to every handshake parser, on fresh
// sessions at the state where each command is expected: none may panic, and
// anything but a genuine command must be refused.
func FuzzHandshake(f *testing.F) {
	cli, srv, err := handshake(f, fuzzSrv, fuzzCli, fuzzSrv.Public, nil)
	if err != nil {
		f.Fatal(err)
	}
	ini, _ := cli.initiate(testMeta)
	rdy, _ := srv.ready(testMeta)
	w, _ := srv.welcome()
	for _, seed := range [][]byte{cli.hello(), w, ini, rdy, errorCommand("400"), makeGreeting("CURVE", true), testMeta} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := newSession(true, fuzzSrv, PublicKey{}, nil)
		_ = s.onHello(data)
		if s.onInitiate(data) == nil { // the cookie key is fresh and unknown
			t.Fatalf("INITIATE accepted without a WELCOME")
		}
		c := &session{peer: fuzzSrv.Public, tSec: cli.tSec, shared: cli.shared}
		_ = c.onWelcome(data)
		_ = c.onReady(data)
		_, _ = parseError(data)
		_ = parseGreeting(data, "CURVE")
		_ = validMetadata(data)
		_, _, _ = readFrame(bufio.NewReader(bytes.NewReader(data)), nil, maxHandshakeFrame)
	})
}

// FuzzMessage feeds arbitrary bytes as a peer's frame stream to the message
// phase: parsing, nonce checks and box opening must never panic and never accept
// a frame the peer's key did not seal.
func FuzzMessage(f *testing.F) {
	cli, srv, err := handshake(f, fuzzSrv, fuzzCli, fuzzSrv.Public, nil)
	if err != nil {
		f.Fatal(err)
	}
	m1, _ := cli.sealMessage(nil, []byte{boxMore, 'h', 'i'})
	m2, _ := cli.sealMessage(nil, append([]byte{0}, make([]byte, 300)...))
	f.Add(m1)
	f.Add(append(bytes.Clone(m1), m2...))
	f.Add([]byte{0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	base := srv.recvNonce
	f.Fuzz(func(t *testing.T, data []byte) {
		srv.recvNonce = base
		br := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		for {
			_, body, err := readFrame(br, buf, 1<<16)
			if err != nil {
				return
			}
			buf = body
			out, err := srv.openMessage(nil, body)
			if err != nil {
				return
			}
			if len(out) < 1 {
				t.Fatalf("opened message without flags byte")
			}
			if !bytes.Equal(body, m1[2:]) && !bytes.Equal(body, m2[9:]) {
				t.Fatalf("accepted a frame the client never sealed: %x", body)
			}
		}
	})
}
