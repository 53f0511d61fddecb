package curve

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestZ85RFC32Vector(t *testing.T) {
	raw := []byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}
	s, err := Z85Encode(raw)
	if err != nil || s != "HelloWorld" {
		t.Fatalf("encode = %q, %v; want HelloWorld", s, err)
	}
	b, err := Z85Decode("HelloWorld")
	if err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("decode = %x, %v", b, err)
	}
}

func TestZ85Errors(t *testing.T) {
	for _, s := range []string{"Hell", "Hello World", "Hello\x00orld", "#####"} {
		if _, err := Z85Decode(s); !errors.Is(err, ErrBadKey) {
			t.Errorf("Z85Decode(%q) err = %v, want ErrBadKey", s, err)
		}
	}
	if _, err := Z85Encode([]byte{1, 2, 3}); !errors.Is(err, ErrBadKey) {
		t.Errorf("Z85Encode(3 bytes) err = %v", err)
	}
}

// The key pair of libzmq's own tests (tests/testutil_security.cpp), checked with
// pyzmq's zmq.curve_public: public derivation and Z85 agree with libzmq.
func TestLibzmqKeyPair(t *testing.T) {
	sk, err := ParseSecretKey("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6")
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(sk[:]) != "8e0bdd697628b91d8f245587ee95c5b04d48963f79259877b49cd9063aead3b7" {
		t.Fatalf("secret decodes to %x", sk)
	}
	kp, err := KeyPairFromSecret(sk)
	if err != nil {
		t.Fatal(err)
	}
	if got := kp.Public.String(); got != "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7" {
		t.Fatalf("public = %s", got)
	}
	if _, err := ParsePublicKey("short"); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short key err = %v", err)
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	a, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("second LoadOrCreate returned another key pair")
	}
	for _, f := range []string{secretFile, publicFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, st.Mode().Perm())
		}
	}
	if err := os.Chmod(filepath.Join(dir, secretFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("world-readable secret: err = %v, want ErrKeyFile", err)
	}
	_ = os.Chmod(filepath.Join(dir, secretFile), 0o600)
	other := mustKeys(t)
	if err := os.WriteFile(filepath.Join(dir, publicFile), []byte(other.Public.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadOrCreate(dir); err != nil || got != a {
		t.Fatalf("mismatched public: %v, want the pair of the secret", err)
	}
	if raw, _ := os.ReadFile(filepath.Join(dir, publicFile)); strings.TrimSpace(string(raw)) != a.Public.String() {
		t.Fatalf("mismatched public file not repaired from the secret: %q", raw)
	}
	if err := os.WriteFile(filepath.Join(dir, secretFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); !errors.Is(err, ErrKeyFile) {
		t.Fatalf("garbage secret: err = %v, want ErrKeyFile", err)
	}
}

// handshake runs the whole RFC 26 handshake between two sessions in memory.
func handshake(t testing.TB, srvKeys, cliKeys KeyPair, serverKey PublicKey, allow map[PublicKey]struct{}) (cli, srv *session, err error) {
	t.Helper()
	cli, err = newSession(false, cliKeys, serverKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err = newSession(true, srvKeys, PublicKey{}, allow)
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.onHello(cli.hello()); err != nil {
		return cli, srv, err
	}
	w, err := srv.welcome()
	if err != nil {
		t.Fatal(err)
	}
	if err = cli.onWelcome(w); err != nil {
		return cli, srv, err
	}
	ini, err := cli.initiate(testMeta)
	if err != nil {
		t.Fatal(err)
	}
	if err = srv.onInitiate(ini); err != nil {
		return cli, srv, err
	}
	rdy, err := srv.ready(testMeta)
	if err != nil {
		t.Fatal(err)
	}
	return cli, srv, cli.onReady(rdy)
}

var testMeta = []byte("\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00")

func TestHandshakeStates(t *testing.T) {
	s, c := mustKeys(t), mustKeys(t)
	cli, srv, err := handshake(t, s, c, s.Public, nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.peer != c.Public || !bytes.Equal(srv.peerMeta, testMeta) || !bytes.Equal(cli.peerMeta, testMeta) {
		t.Fatal("peer key or metadata not carried")
	}
	if cli.shared != srv.shared {
		t.Fatal("shared keys differ")
	}
	// Wrong server key: the server cannot open HELLO.
	if _, _, err := handshake(t, s, c, mustKeys(t).Public, nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong server key: %v", err)
	}
	// Allowlist.
	allow := map[PublicKey]struct{}{mustKeys(t).Public: {}}
	if _, _, err := handshake(t, s, c, s.Public, allow); !errors.Is(err, ErrUnknownClient) {
		t.Fatalf("unknown client: %v", err)
	}
	allow[c.Public] = struct{}{}
	if _, _, err := handshake(t, s, c, s.Public, allow); err != nil {
		t.Fatalf("allowed client: %v", err)
	}
}

func TestHandshakeTampering(t *testing.T) {
	s, c := mustKeys(t), mustKeys(t)
	cli, _ := newSession(false, c, s.Public, nil)
	srv, _ := newSession(true, s, PublicKey{}, nil)
	hello := cli.hello()
	bad := bytes.Clone(hello)
	bad[150] ^= 1
	if err := srv.onHello(bad); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("tampered HELLO: %v", err)
	}
	if err := srv.onHello(hello[:199]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short HELLO: %v", err)
	}
	if err := srv.onHello(hello); err != nil {
		t.Fatal(err)
	}
	w, _ := srv.welcome()
	badW := bytes.Clone(w)
	badW[100] ^= 1
	if err := cli.onWelcome(badW); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("tampered WELCOME: %v", err)
	}
	if err := cli.onWelcome(w); err != nil {
		t.Fatal(err)
	}
	ini, _ := cli.initiate(testMeta)
	for _, at := range []int{30, 108, 200} { // cookie, nonce, box
		badI := bytes.Clone(ini)
		badI[at] ^= 1
		if err := srv.onInitiate(badI); err == nil {
			t.Fatalf("INITIATE tampered at %d accepted", at)
		}
	}
	// Metadata that would crash zmq4's parser is refused.
	badMeta, _ := cli.initiate([]byte("\x0bSocket-Type\x00\x00\x10\x00X"))
	if err := srv.onInitiate(badMeta); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad metadata: %v", err)
	}
}

func TestMessageNonces(t *testing.T) {
	s, c := mustKeys(t), mustKeys(t)
	cli, srv, err := handshake(t, s, c, s.Public, nil)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := range 3 {
		f, err := cli.sealMessage(nil, []byte{boxMore, byte(i), 'x'})
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f[2:]) // drop the ZMTP header: short frames
	}
	got, err := srv.openMessage(nil, frames[0])
	if err != nil || !bytes.Equal(got, []byte{boxMore, 0, 'x'}) {
		t.Fatalf("open = %v, %v", got, err)
	}
	if _, err := srv.openMessage(nil, frames[0]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed: %v", err)
	}
	if _, err := srv.openMessage(nil, frames[2]); err != nil { // gaps are fine
		t.Fatal(err)
	}
	if _, err := srv.openMessage(nil, frames[1]); !errors.Is(err, ErrReplay) {
		t.Fatalf("reordered: %v", err)
	}
	f, _ := cli.sealMessage(nil, []byte{0, 'y'})
	f = f[2:]
	f[len(f)-1] ^= 0x80
	if _, err := srv.openMessage(nil, f); !errors.Is(err, ErrTampered) {
		t.Fatalf("tampered: %v", err)
	}
	// The server's messages use the other nonce prefix: a client message
	// reflected back to the client does not open.
	g, _ := cli.sealMessage(nil, []byte{0, 'z'})
	if _, err := cli.openMessage(nil, g[2:]); !errors.Is(err, ErrTampered) {
		t.Fatalf("reflected: %v", err)
	}
}

func TestValidMetadata(t *testing.T) {
	for _, ok := range [][]byte{nil, testMeta, []byte("\x01a\x00\x00\x00\x00")} {
		if err := validMetadata(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	unknownType := []byte("\x0bSocket-Type\x00\x00\x00\x03FOO") // zmq4 panics on it
	for _, bad := range [][]byte{{0}, []byte("\x05ab"), []byte("\x01a\x00\x00\x00\x05abc"), []byte("\x01a\x00\x00"), unknownType} {
		if err := validMetadata(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
