package curve_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

var _ wire.Security = (*curve.Security)(nil)

// TestWireSeam runs CURVE through internal/wire's Security seam: a wire Router
// with a server Security, a wire Dealer with a client Security.
func TestWireSeam(t *testing.T) {
	srv, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ss, err := curve.NewServerSecurity(curve.ServerConfig{Keys: srv})
	if err != nil {
		t.Fatal(err)
	}
	r, err := wire.Listen(wire.Config{Security: ss}, "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.PublicKey() != srv.Public.String() {
		t.Fatalf("Router.PublicKey = %q", r.PublicKey())
	}
	cs, err := curve.NewClientSecurity(curve.ClientConfig{ServerKey: srv.Public})
	if err != nil {
		t.Fatal(err)
	}
	d, err := wire.NewDealer(wire.Config{Security: cs}, r.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := d.Send([]byte("C"), []byte("ping")); err != nil {
			t.Fatal(err)
		}
		m, err := r.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Frames) != 2 || string(m.Frames[1]) != "ping" {
			t.Fatalf("router got %q", m.Frames)
		}
		if err := r.Send(m.Peer, []byte("C"), []byte("pong")); err != nil {
			t.Fatal(err)
		}
		rep, err := d.Recv(ctx)
		if err != nil || string(rep[1]) != "pong" {
			t.Fatalf("dealer got %q, %v", rep, err)
		}
	}

	// A client Security cannot serve a listener.
	if _, err := cs.Secure(nil, true); !errors.Is(err, curve.ErrEndpoint) {
		t.Fatalf("client Security as server: %v", err)
	}
}

// BenchmarkWireEcho4K measures 4 KiB request/echo round trips between a wire
// Dealer and Router with CURVE (the guard's deadlines and coalescing included).
func BenchmarkWireEcho4K(b *testing.B) {
	srv, err := curve.GenerateKeyPair()
	if err != nil {
		b.Fatal(err)
	}
	ss, _ := curve.NewServerSecurity(curve.ServerConfig{Keys: srv})
	cs, _ := curve.NewClientSecurity(curve.ClientConfig{ServerKey: srv.Public})
	r, err := wire.Listen(wire.Config{Security: ss}, "tcp://127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := wire.Dial(ctx, wire.Config{Security: cs}, r.Endpoint())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	payload := make([]byte, 4096)
	b.SetBytes(2 * 4096)
	b.ResetTimer()
	for range b.N {
		if err := d.Send(payload); err != nil {
			b.Fatal(err)
		}
		m, err := r.Recv(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Send(m.Peer, m.Frames...); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Recv(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
