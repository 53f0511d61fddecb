package broker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

func TestCurveConfigRefusals(t *testing.T) {
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := curve.NewServerSecurity(curve.ServerConfig{Keys: kp})
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"keys with Disabled":      {Curve: CurveConfig{Disabled: true, Keys: kp}},
		"allowlist with Disabled": {Curve: CurveConfig{Disabled: true, Allow: []curve.PublicKey{kp.Public}}},
		"keys dir and Security":   {Curve: CurveConfig{KeysDir: t.TempDir()}, Wire: wire.Config{Security: sec}},
	} {
		cfg.Endpoint = "tcp://127.0.0.1:0"
		s, err := Start(context.Background(), cfg)
		if !errors.Is(err, ErrBadConfig) {
			s.Close()
			t.Errorf("%s: Start = %v, want ErrBadConfig", name, err)
		}
	}
}

func TestCurveKeysDirKeepsThePublicKey(t *testing.T) {
	dir := t.TempDir()
	var keys []string
	for range 2 {
		s := start(t, Config{Curve: CurveConfig{KeysDir: dir}})
		keys = append(keys, s.PublicKey())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys[0]) != 40 || keys[0] != keys[1] {
		t.Fatalf("public keys %q, want the same 40-char key twice", keys)
	}
	fresh := start(t, Config{})
	if fresh.PublicKey() == keys[0] || len(fresh.PublicKey()) != 40 {
		t.Fatalf("fresh key %q", fresh.PublicKey())
	}
}

func TestCurvePingOverCurve(t *testing.T) {
	c := dial(t, start(t, Config{})) // CURVE with the broker's key
	c.send(&proto.PingReq{})
	if _, ok := c.recv().(*proto.PingAck); !ok {
		t.Fatal("no PING_ACK over CURVE")
	}
}

// clientSecurity is a CURVE client for s, or nil (NULL) when s has no key.
func clientSecurity(t testing.TB, s *Service) wire.Security {
	t.Helper()
	if s.PublicKey() == "" {
		return nil
	}
	pk, err := curve.ParsePublicKey(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	sec, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: pk})
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func TestCurveIsTheDefault(t *testing.T) {
	s := start(t, Config{})
	if len(s.PublicKey()) != 40 {
		t.Fatalf("default broker public key %q, want CURVE (40 Z85 chars)", s.PublicKey())
	}
	null := start(t, Config{Curve: CurveConfig{Disabled: true}})
	if null.PublicKey() != "" {
		t.Fatalf("Curve.Disabled broker public key %q, want none", null.PublicKey())
	}
	c := dial(t, null) // NULL
	c.send(&proto.PingReq{})
	if _, ok := c.recv().(*proto.PingAck); !ok {
		t.Fatal("no PING_ACK over NULL")
	}
}

func TestCurveRefusesNullClient(t *testing.T) {
	s := start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := wire.Dial(ctx, wire.Config{HandshakeTimeout: time.Second}, s.Endpoint())
	if err == nil {
		d.Close()
		t.Fatal("a NULL client connected to the default (CURVE) broker")
	}
}
