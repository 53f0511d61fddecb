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
		"keys without Enabled":      {Curve: CurveConfig{Keys: kp}},
		"allowlist without Enabled": {Curve: CurveConfig{Allow: []curve.PublicKey{kp.Public}}},
		"both Curve and Security":   {Curve: CurveConfig{Enabled: true}, Wire: wire.Config{Security: sec}},
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
		s := start(t, Config{Curve: CurveConfig{Enabled: true, KeysDir: dir}})
		keys = append(keys, s.PublicKey())
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys[0]) != 40 || keys[0] != keys[1] {
		t.Fatalf("public keys %q, want the same 40-char key twice", keys)
	}
	fresh := start(t, Config{Curve: CurveConfig{Enabled: true}})
	if fresh.PublicKey() == keys[0] || len(fresh.PublicKey()) != 40 {
		t.Fatalf("fresh key %q", fresh.PublicKey())
	}
}

func TestCurvePingOverCurve(t *testing.T) {
	s := start(t, Config{Curve: CurveConfig{Enabled: true}})
	pk, err := curve.ParsePublicKey(s.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	sec, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: pk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := wire.Dial(ctx, wire.Config{Security: sec}, s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := &client{t: t, d: d}
	c.send(&proto.PingReq{})
	if _, ok := c.recv().(*proto.PingAck); !ok {
		t.Fatal("no PING_ACK over CURVE")
	}
}
