package curve

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

// smallOrder are encodings of points of small order on Curve25519 (the list
// libsodium refuses): 0, 1, the two points of order 8, p-1, p, p+1.
var smallOrder = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

func TestLowOrderKeysRefused(t *testing.T) {
	for _, h := range smallOrder {
		b, _ := hex.DecodeString(h)
		k := PublicKey(b)
		if _, err := ParsePublicKey(k.String()); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParsePublicKey(%s): %v, want ErrBadKey", h, err)
		}
		if _, err := NewClientSecurity(ClientConfig{ServerKey: k}); !errors.Is(err, ErrBadKey) {
			t.Errorf("client with server key %s: %v, want ErrBadKey", h, err)
		}
	}
	if _, err := ParsePublicKey(mustKeys(t).Public.String()); err != nil {
		t.Fatalf("a real key refused: %v", err)
	}
}

// TestHelloWithZeroKeyRefused: a HELLO whose client transient key is all zero,
// with its box sealed under the constant key that gives (X25519 with zero is
// zero whatever the secret), must be refused, not answered.
func TestHelloWithZeroKeyRefused(t *testing.T) {
	srv := mustKeys(t)
	var zero, anySec [32]byte
	anySec[0] = 1
	out := append([]byte(nil), cmdHello...)
	out = append(out, 1, 0)
	out = append(out, make([]byte, 72)...)
	out = append(out, zero[:]...)
	out = binary.BigEndian.AppendUint64(out, 1)
	out = box.Seal(out, make([]byte, 64), shortNonce(prefixHello, 1), &zero, &anySec)
	s, err := newSession(true, srv, PublicKey{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.onHello(out); !errors.Is(err, ErrBadKey) {
		t.Fatalf("HELLO with an all-zero transient key: %v, want ErrBadKey", err)
	}
}

// TestHandshakeSecretsWiped: after the handshake, the transient secrets and
// the cookie key are zero on both sides.
func TestHandshakeSecretsWiped(t *testing.T) {
	s, c := mustKeys(t), mustKeys(t)
	cli, srv, err := handshake(t, s, c, s.Public, nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.tSec != [32]byte{} || srv.cookieKey != [32]byte{} {
		t.Error("server transient secret or cookie key not wiped")
	}
	if cli.tSec != [32]byte{} {
		t.Error("client transient secret not wiped")
	}
	// The session still works.
	msg, err := cli.sealMessage(nil, []byte{0, 'h', 'i'})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.openMessage(nil, msg[2:]); err != nil {
		t.Fatal(err)
	}
}

// TestSecretNeverPrinted: fmt verbs, slog (text and JSON) and JSON never show
// a secret key, alone or in a KeyPair or a config.
func TestSecretNeverPrinted(t *testing.T) {
	kp := mustKeys(t)
	secrets := []string{kp.Secret.Z85(), hex.EncodeToString(kp.Secret[:]), fmt.Sprint(kp.Secret[:]), fmt.Sprintf("%#v", kp.Secret[:4])}
	var outs []string
	for _, v := range []any{kp.Secret, &kp.Secret, kp, &kp, ServerConfig{Keys: kp}, ClientConfig{Keys: kp}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("k", "v", v)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("k", "v", v)
		outs = append(outs, buf.String())
		if j, err := json.Marshal(v); err == nil {
			outs = append(outs, string(j))
		}
	}
	for _, o := range outs {
		for _, s := range secrets {
			if strings.Contains(o, s) || strings.Contains(strings.ToLower(o), strings.ToLower(s[:16])) {
				t.Fatalf("secret printed: %s", o)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(kp), kp.Public.String()) {
		t.Fatalf("KeyPair print lost its public key: %v", kp)
	}
}
