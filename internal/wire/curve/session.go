package curve

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math"

	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

// session is the CURVE state of one connection: keys, nonces and the handshake
// step functions of RFC 26. It does no I/O, so every step is unit-testable and
// fuzzable. Not safe for concurrent use; conn serialises access (send side under
// wmu, receive side under rmu; the two sides touch disjoint fields after the
// handshake).
type session struct {
	server bool
	perm   KeyPair   // our permanent pair (C or S)
	peer   PublicKey // server: client's C after INITIATE; client: server's S

	tPub, tSec [32]byte // our transient pair (C' or S')
	peerT      [32]byte // peer transient key
	cookie     [cookieLen]byte
	cookieKey  [32]byte // server only
	shared     [32]byte // box.Precompute(peerT, tSec)

	allow map[PublicKey]struct{} // server; nil = any client

	sendNonce uint64 // last short nonce we used
	recvNonce uint64 // last short nonce the peer used
	sendPfx   string
	recvPfx   string
	sendKey   *msgKey // MESSAGE boxes we seal (msgbox.go); made at the first
	recvKey   *msgKey // MESSAGE boxes we open; made at the first
	peerMeta  []byte
}

func newSession(server bool, perm KeyPair, peer PublicKey, allow map[PublicKey]struct{}) (*session, error) {
	s := &session{server: server, perm: perm, peer: peer, allow: allow, sendPfx: prefixMsgC, recvPfx: prefixMsgS}
	if server {
		s.sendPfx, s.recvPfx = prefixMsgS, prefixMsgC
		return s, nil // the server makes its transient pair for WELCOME, once HELLO proved the client knows S
	}
	return s, s.transientKey()
}

func (s *session) transientKey() error {
	pub, sec, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("curve: transient key: %w", err)
	}
	s.tPub, s.tSec = *pub, *sec
	return nil
}

func shortNonce(prefix string, n uint64) *[24]byte {
	var nonce [24]byte
	copy(nonce[:], prefix)
	binary.BigEndian.PutUint64(nonce[16:], n)
	return &nonce
}

func longNonce(prefix string, rnd []byte) *[24]byte {
	var nonce [24]byte
	copy(nonce[:], prefix)
	copy(nonce[8:], rnd)
	return &nonce
}

func (s *session) nextNonce() (uint64, error) {
	if s.sendNonce == math.MaxUint64 {
		return 0, fmt.Errorf("%w: short nonces exhausted", ErrProtocol)
	}
	s.sendNonce++
	return s.sendNonce, nil
}

// hello builds the client's HELLO command body.
func (s *session) hello() []byte {
	n, _ := s.nextNonce()
	var zeros [64]byte
	out := make([]byte, 0, helloLen)
	out = append(out, cmdHello...)
	out = append(out, 1, 0)
	out = append(out, make([]byte, 72)...)
	out = append(out, s.tPub[:]...)
	out = binary.BigEndian.AppendUint64(out, n)
	pk := [32]byte(s.peer)
	return box.Seal(out, zeros[:], shortNonce(prefixHello, n), &pk, &s.tSec)
}

// onHello checks a HELLO on the server and records the client transient key.
func (s *session) onHello(body []byte) error {
	if len(body) != helloLen || !bytes.HasPrefix(body, cmdHello) {
		return fmt.Errorf("%w: expected HELLO (%d bytes), got %d bytes %q", ErrMalformed, helloLen, len(body), printable(head(body)))
	}
	if body[6] != 1 || body[7] != 0 {
		return fmt.Errorf("%w: HELLO version %d.%d, want 1.0", ErrMalformed, body[6], body[7])
	}
	copy(s.peerT[:], body[80:112])
	if err := checkPublic(s.peerT); err != nil {
		return fmt.Errorf("HELLO client transient key: %w", err)
	}
	sk := [32]byte(s.perm.Secret)
	defer clear(sk[:])
	plain, ok := box.Open(nil, body[120:200], shortNonce(prefixHello, binary.BigEndian.Uint64(body[112:120])), &s.peerT, &sk)
	if !ok {
		return fmt.Errorf("%w: HELLO signature box (client uses another server public key?)", ErrWrongKey)
	}
	if !allZero(plain) {
		return fmt.Errorf("%w: HELLO signature not zero", ErrMalformed)
	}
	return nil
}

// welcome builds the server's WELCOME body: Box[S' + cookie](S->C').
func (s *session) welcome() ([]byte, error) {
	if err := s.transientKey(); err != nil {
		return nil, err
	}
	var rnd [16 + 32 + 16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("curve: random: %w", err)
	}
	copy(s.cookieKey[:], rnd[16:48])
	cookiePlain := make([]byte, 0, 64)
	cookiePlain = append(append(cookiePlain, s.peerT[:]...), s.tSec[:]...)
	cookie := append(make([]byte, 0, cookieLen), rnd[48:64]...)
	cookie = secretbox.Seal(cookie, cookiePlain, longNonce(prefixCookie, rnd[48:64]), &s.cookieKey)
	plain := append(append(make([]byte, 0, 128), s.tPub[:]...), cookie...)
	out := append(make([]byte, 0, welcomeLen), cmdWelcome...)
	out = append(out, rnd[:16]...)
	sk := [32]byte(s.perm.Secret)
	defer clear(sk[:])
	return box.Seal(out, plain, longNonce(prefixWelcome, rnd[:16]), &s.peerT, &sk), nil
}

// onWelcome opens a WELCOME on the client: learns S' and the cookie.
func (s *session) onWelcome(body []byte) error {
	if len(body) != welcomeLen || !bytes.HasPrefix(body, cmdWelcome) {
		return fmt.Errorf("%w: expected WELCOME (%d bytes), got %d bytes %q", ErrMalformed, welcomeLen, len(body), printable(head(body)))
	}
	pk := [32]byte(s.peer)
	plain, ok := box.Open(nil, body[24:], longNonce(prefixWelcome, body[8:24]), &pk, &s.tSec)
	if !ok {
		return fmt.Errorf("%w: WELCOME box (server does not hold the expected public key %s?)", ErrWrongKey, s.peer)
	}
	copy(s.peerT[:], plain[:32])
	if err := checkPublic(s.peerT); err != nil {
		return fmt.Errorf("WELCOME server transient key: %w", err)
	}
	copy(s.cookie[:], plain[32:])
	box.Precompute(&s.shared, &s.peerT, &s.tSec)
	clear(s.tSec[:]) // not needed any more (the vouch uses the permanent key)
	return nil
}

// initiate builds the client's INITIATE body carrying metadata.
func (s *session) initiate(meta []byte) ([]byte, error) {
	var vn [16]byte
	if _, err := rand.Read(vn[:]); err != nil {
		return nil, fmt.Errorf("curve: random: %w", err)
	}
	vouchPlain := append(append(make([]byte, 0, 64), s.tPub[:]...), s.peer[:]...)
	csk := [32]byte(s.perm.Secret)
	defer clear(csk[:])
	plain := make([]byte, 0, 128+len(meta))
	plain = append(plain, s.perm.Public[:]...)
	plain = append(plain, vn[:]...)
	plain = box.Seal(plain, vouchPlain, longNonce(prefixVouch, vn[:]), &s.peerT, &csk)
	plain = append(plain, meta...)
	n, err := s.nextNonce()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 113+boxOverhead+len(plain))
	out = append(out, cmdInitiate...)
	out = append(out, s.cookie[:]...)
	out = binary.BigEndian.AppendUint64(out, n)
	return box.SealAfterPrecomputation(out, plain, shortNonce(prefixInitiate, n), &s.shared), nil
}

// onInitiate checks an INITIATE on the server: cookie, box, vouch, allowlist and
// metadata. On success the session is ready for READY and MESSAGEs.
func (s *session) onInitiate(body []byte) error {
	if len(body) < initiateMinLen || !bytes.HasPrefix(body, cmdInitiate) {
		return fmt.Errorf("%w: expected INITIATE (>= %d bytes), got %d bytes %q", ErrMalformed, initiateMinLen, len(body), printable(head(body)))
	}
	cookie, ok := secretbox.Open(nil, body[25:105], longNonce(prefixCookie, body[9:25]), &s.cookieKey)
	if !ok || subtle.ConstantTimeCompare(cookie[:32], s.peerT[:]) != 1 || subtle.ConstantTimeCompare(cookie[32:], s.tSec[:]) != 1 {
		return fmt.Errorf("%w: INITIATE cookie is not ours", ErrMalformed)
	}
	n := binary.BigEndian.Uint64(body[105:113])
	box.Precompute(&s.shared, &s.peerT, &s.tSec)
	plain, ok := box.OpenAfterPrecomputation(nil, body[113:], shortNonce(prefixInitiate, n), &s.shared)
	if !ok {
		return fmt.Errorf("%w: INITIATE box", ErrWrongKey)
	}
	copy(s.peer[:], plain[:32])
	if err := checkPublic([32]byte(s.peer)); err != nil {
		return fmt.Errorf("INITIATE client key: %w", err)
	}
	pk := [32]byte(s.peer)
	vouch, ok := box.Open(nil, plain[48:128], longNonce(prefixVouch, plain[32:48]), &pk, &s.tSec)
	if !ok {
		return fmt.Errorf("%w: INITIATE vouch does not open with client key %s", ErrWrongKey, s.peer)
	}
	if !bytes.Equal(vouch[:32], s.peerT[:]) || !bytes.Equal(vouch[32:], s.perm.Public[:]) {
		return fmt.Errorf("%w: INITIATE vouch names other keys", ErrMalformed)
	}
	meta := plain[128:]
	if err := validMetadata(meta); err != nil {
		return err
	}
	if s.allow != nil {
		if _, ok := s.allow[s.peer]; !ok {
			return fmt.Errorf("%w: %s", ErrUnknownClient, s.peer)
		}
	}
	s.peerMeta = meta
	s.recvNonce = n
	s.wipeServer() // only s.shared is needed from here on
	return nil
}

// wipeServer forgets the server's transient secret and cookie key once
// INITIATE has been checked (the message keys live in s.shared).
func (s *session) wipeServer() {
	clear(s.tSec[:])
	clear(s.cookieKey[:])
}

// ready builds the server's READY body carrying metadata.
func (s *session) ready(meta []byte) ([]byte, error) {
	n, err := s.nextNonce()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 14+boxOverhead+len(meta))
	out = append(out, cmdReady...)
	out = binary.BigEndian.AppendUint64(out, n)
	return box.SealAfterPrecomputation(out, meta, shortNonce(prefixReady, n), &s.shared), nil
}

// onReady opens a READY on the client and records the server metadata.
func (s *session) onReady(body []byte) error {
	if len(body) < readyMinLen || !bytes.HasPrefix(body, cmdReady) {
		return fmt.Errorf("%w: expected READY (>= %d bytes), got %d bytes %q", ErrMalformed, readyMinLen, len(body), printable(head(body)))
	}
	n := binary.BigEndian.Uint64(body[6:14])
	meta, ok := box.OpenAfterPrecomputation(nil, body[14:], shortNonce(prefixReady, n), &s.shared)
	if !ok {
		return fmt.Errorf("%w: READY box", ErrWrongKey)
	}
	if err := validMetadata(meta); err != nil {
		return err
	}
	s.peerMeta = meta
	s.recvNonce = n
	return nil
}

// sealMessage appends one whole MESSAGE frame (ZMTP header included) to dst;
// plain is the flags byte followed by the payload.
func (s *session) sealMessage(dst, plain []byte) ([]byte, error) {
	return s.sealParts(dst, plain[0], plain[1:])
}

// sealParts is sealMessage of the plaintext flags‖payload (payload sealed
// from where it is; dst must not overlap it).
func (s *session) sealParts(dst []byte, flags byte, payload []byte) ([]byte, error) {
	n, err := s.nextNonce()
	if err != nil {
		return dst, err
	}
	if s.sendKey == nil {
		s.sendKey = newMsgKey(&s.shared, s.sendPfx)
	}
	dst = appendFrameHeader(dst, 0, len(cmdMessage)+8+boxOverhead+1+len(payload))
	dst = append(dst, cmdMessage...)
	dst = binary.BigEndian.AppendUint64(dst, n)
	return s.sendKey.seal(dst, flags, payload, n), nil
}

// openMessage checks and opens a MESSAGE body, appending the plaintext (flags
// byte, then payload) to dst.
func (s *session) openMessage(dst, body []byte) ([]byte, error) {
	if len(body) < messageMinLen || !bytes.HasPrefix(body, cmdMessage) {
		return dst, fmt.Errorf("%w: expected MESSAGE (>= %d bytes), got %d bytes %q", ErrProtocol, messageMinLen, len(body), printable(head(body)))
	}
	n := binary.BigEndian.Uint64(body[8:16])
	if n <= s.recvNonce {
		return dst, fmt.Errorf("%w: nonce %d after %d", ErrReplay, n, s.recvNonce)
	}
	if s.recvKey == nil {
		s.recvKey = newMsgKey(&s.shared, s.recvPfx)
	}
	out, ok := s.recvKey.open(dst, body[16:], n)
	if !ok {
		return dst, fmt.Errorf("%w: nonce %d", ErrTampered, n)
	}
	s.recvNonce = n
	return out, nil
}

// head returns at most the first 12 bytes of b, for error messages.
func head(b []byte) []byte {
	if len(b) > 12 {
		return b[:12]
	}
	return b
}
