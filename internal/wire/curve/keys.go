package curve

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// KeyLen is the size of a Curve25519 key in bytes; Z85KeyLen its Z85 text size.
const (
	KeyLen    = 32
	Z85KeyLen = 40
)

// PublicKey is a Curve25519 public key. Its String is the 40-character Z85 text
// that libzmq (zmq_curve_keypair, pyzmq) prints and accepts.
type PublicKey [KeyLen]byte

// SecretKey is a Curve25519 secret key. Every way of printing it (String,
// fmt's verbs %v %+v %#v %s %x ..., slog, JSON and text marshalling) gives
// "REDACTED", so it never ends up in a log line by accident; use Z85 explicitly.
type SecretKey [KeyLen]byte

// redacted is what a SecretKey prints as.
const redacted = "REDACTED"

// String returns "REDACTED".
func (SecretKey) String() string { return redacted }

// GoString returns a redacted Go syntax representation.
func (SecretKey) GoString() string { return "curve.SecretKey{" + redacted + "}" }

// Format prints "REDACTED" for every verb (%#v: GoString).
func (k SecretKey) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, k.GoString())
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// LogValue makes slog print "REDACTED".
func (SecretKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText gives "REDACTED" (encoding/json, slog's JSON handler); there is
// no UnmarshalText: parse secrets with ParseSecretKey.
func (SecretKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// KeyPair is a permanent (long-term) CURVE identity.
type KeyPair struct {
	Public PublicKey
	Secret SecretKey
}

// LogValue makes slog print the public key and hide the secret one.
func (kp KeyPair) LogValue() slog.Value {
	return slog.GroupValue(slog.String("public", kp.Public.String()), slog.String("secret", redacted))
}

// String returns the Z85 text of k.
func (k PublicKey) String() string {
	s, _ := Z85Encode(k[:]) // 32 is a multiple of 4
	return s
}

// IsZero reports whether k is all zero (no key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// Z85 returns the Z85 text of k. Handle with care.
func (k SecretKey) Z85() string {
	s, _ := Z85Encode(k[:])
	return s
}

// IsZero reports whether kp is the zero KeyPair (no key).
func (kp KeyPair) IsZero() bool { return kp.Secret == SecretKey{} }

// GenerateKeyPair returns a fresh random key pair from crypto/rand.
func GenerateKeyPair() (KeyPair, error) {
	var sk SecretKey
	if _, err := rand.Read(sk[:]); err != nil {
		return KeyPair{}, fmt.Errorf("curve: generate key: %w", err)
	}
	return KeyPairFromSecret(sk)
}

// KeyPairFromSecret derives the public half of sk.
func KeyPairFromSecret(sk SecretKey) (KeyPair, error) {
	pub, err := curve25519.X25519(sk[:], curve25519.Basepoint)
	if err != nil {
		return KeyPair{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	kp := KeyPair{Secret: sk}
	copy(kp.Public[:], pub)
	return kp, nil
}

// ParsePublicKey parses a 40-character Z85 public key. Low-order points
// (all zero among them) are refused with ErrBadKey, as libsodium refuses them.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if err := parseKey(s, k[:]); err != nil {
		return k, err
	}
	return k, checkPublic(k)
}

// lowOrderProbe is any scalar: X25519 clamps it to a multiple of the cofactor,
// so its product with a point is zero exactly when the point has small order.
var lowOrderProbe = [32]byte{9}

// checkPublic refuses a low-order public key: X25519 of any secret with it is
// all zero, so a session keyed with it would use a public constant (libsodium's
// crypto_scalarmult refuses such points for the same reason).
func checkPublic(k [32]byte) error {
	if _, err := curve25519.X25519(lowOrderProbe[:], k[:]); err != nil {
		return fmt.Errorf("%w: low-order public key (refused, as libsodium does)", ErrBadKey)
	}
	return nil
}

// ParseSecretKey parses a 40-character Z85 secret key.
func ParseSecretKey(s string) (SecretKey, error) {
	var k SecretKey
	err := parseKey(s, k[:])
	return k, err
}

func parseKey(s string, dst []byte) error {
	if len(s) != Z85KeyLen {
		return fmt.Errorf("%w: want %d Z85 characters, got %d", ErrBadKey, Z85KeyLen, len(s))
	}
	b, err := Z85Decode(s)
	if err != nil {
		return err
	}
	copy(dst, b)
	return nil
}

// Key file names inside a keys directory.
const (
	secretFile = "server.key_secret"
	publicFile = "server.key"
)

// LoadOrCreate returns the server key pair kept in dir, creating dir (0700) and a
// fresh pair when none exists yet. The secret key is stored as Z85 text in
// "server.key_secret" with mode 0600 and refused (ErrKeyFile) if group or others
// may read it or it is malformed; it is the authority. The public key in
// "server.key" (0600 too; not secret, but needs no wider audience) is always
// derived from it: written when missing and rewritten when it does not match.
//
// The pair is decided once: the secret file is installed with a hard link from
// a complete temp file, which fails if it exists, so the first of several
// processes starting together wins and the others load its secret; every one of
// them then derives the same public file from it.
func LoadOrCreate(dir string) (KeyPair, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KeyPair{}, fmt.Errorf("curve: keys dir %s: %w", dir, err)
	}
	kp, err := loadSecret(dir)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err = createSecret(dir)
	}
	if err != nil {
		return KeyPair{}, err
	}
	if err := ensurePublic(dir, kp.Public); err != nil {
		return KeyPair{}, err
	}
	return kp, nil
}

// createSecret installs a fresh secret unless one appeared meanwhile; then it
// loads that one (first writer wins).
func createSecret(dir string) (KeyPair, error) {
	kp, err := GenerateKeyPair()
	if err != nil {
		return KeyPair{}, err
	}
	err = writeKeyFile(dir, secretFile, kp.Secret.Z85(), false)
	if errors.Is(err, fs.ErrExist) {
		return loadSecret(dir)
	}
	if err != nil {
		return KeyPair{}, err
	}
	return kp, nil
}

// loadSecret reads and checks the secret file and derives the pair.
func loadSecret(dir string) (KeyPair, error) {
	path := filepath.Join(dir, secretFile)
	st, err := os.Stat(path)
	if err != nil {
		return KeyPair{}, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return KeyPair{}, fmt.Errorf("%w: %s has mode %v, want 0600 (chmod 600 it)", ErrKeyFile, path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return KeyPair{}, fmt.Errorf("curve: %w", err)
	}
	sk, err := ParseSecretKey(strings.TrimSpace(string(raw)))
	if err != nil {
		return KeyPair{}, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	kp, err := KeyPairFromSecret(sk)
	if err != nil {
		return KeyPair{}, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	return kp, nil
}

// ensurePublic makes the public file hold pub: left alone when it does,
// written (atomically, by rename) when it is missing or holds another key.
func ensurePublic(dir string, pub PublicKey) error {
	raw, err := os.ReadFile(filepath.Join(dir, publicFile))
	switch {
	case err == nil && bytes.Equal(bytes.TrimSpace(raw), []byte(pub.String())):
		return nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("curve: %w", err)
	}
	return writeKeyFile(dir, publicFile, pub.String(), true)
}

// writeKeyFile creates dir/name with text atomically; replace says whether an
// existing file may be overwritten (else fs.ErrExist is returned).
func writeKeyFile(dir, name, text string, replace bool) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return fmt.Errorf("curve: keys dir %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(text + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("curve: write %s: %w", tmp.Name(), err)
	}
	final := filepath.Join(dir, name)
	if replace {
		err = os.Rename(tmp.Name(), final)
	} else {
		err = os.Link(tmp.Name(), final)
	}
	if err != nil {
		return fmt.Errorf("curve: install %s: %w", final, err)
	}
	return nil
}
