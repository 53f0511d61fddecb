package curve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// logBuf collects log lines so tests can wait for a refusal to be logged.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitLog waits until the log contains s.
func waitLog(t *testing.T, b *logBuf, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never contained %q; log:\n%s", s, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustKeys(t testing.TB) KeyPair {
	t.Helper()
	kp, err := GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// startRouter listens a zmq4 ROUTER on a CURVE endpoint and echoes every message.
func startRouter(t testing.TB, cfg ServerConfig) (addr string) {
	t.Helper()
	ep, err := ServerEndpoint("tcp://127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := zmq4.NewRouter(ctx, zmq4.WithTimeout(2*time.Second))
	if err := r.Listen(ep.String()); err != nil {
		t.Fatal(err)
	}
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
	t.Cleanup(func() {
		cancel()
		_ = r.Close()
		<-done
		_ = ep.Close()
	})
	return ep.BoundAddr()
}

func dialDealer(t testing.TB, addr string, cfg ClientConfig) (zmq4.Socket, error) {
	t.Helper()
	ep, err := ClientEndpoint(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := zmq4.NewDealer(ctx, zmq4.WithTimeout(2*time.Second), zmq4.WithDialerMaxRetries(0))
	t.Cleanup(func() {
		cancel()
		_ = d.Close()
		_ = ep.Close()
	})
	return d, d.Dial(ep.String())
}

func TestRouterDealerEcho(t *testing.T) {
	srv := mustKeys(t)
	addr := startRouter(t, ServerConfig{Keys: srv})
	d, err := dialDealer(t, addr, ClientConfig{ServerKey: srv.Public})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		big := bytes.Repeat([]byte{byte(i)}, 300+i*1000)
		want := zmq4.NewMsgFrom([]byte(fmt.Sprintf("m%d", i)), nil, big)
		if err := d.Send(want); err != nil {
			t.Fatal(err)
		}
		got, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Frames) != 3 || string(got.Frames[0]) != fmt.Sprintf("m%d", i) || len(got.Frames[1]) != 0 || !bytes.Equal(got.Frames[2], big) {
			t.Fatalf("reply %d: %d frames %q", i, len(got.Frames), got.Frames[0])
		}
	}
}

func echoOnce(t *testing.T, d zmq4.Socket) {
	t.Helper()
	if err := d.Send(zmq4.NewMsgString("ping")); err != nil {
		t.Fatal(err)
	}
	m, err := d.Recv()
	if err != nil || string(m.Frames[0]) != "ping" {
		t.Fatalf("echo: %v %q", err, m.Frames)
	}
}

func TestRefusals(t *testing.T) {
	srv, good := mustKeys(t), mustKeys(t)
	var lb logBuf
	addr := startRouter(t, ServerConfig{Keys: srv, Allow: []PublicKey{good.Public}, Logger: lb.logger(), HandshakeTimeout: time.Second})

	// A raw TCP client that stops mid-handshake (its whole greeting, no HELLO:
	// part of a greeting would be closed by the listener's greeting timeout,
	// as long as the deadline here).
	raw, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write(makeGreeting("CURVE", false)); err != nil {
		t.Fatal(err)
	}

	_, err = dialDealer(t, addr, ClientConfig{ServerKey: mustKeys(t).Public})
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("wrong server key: %v", err)
	}
	waitLog(t, &lb, "wrong key")

	_, err = dialDealer(t, addr, ClientConfig{ServerKey: srv.Public, Keys: mustKeys(t)})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("unknown client: %v", err)
	}
	waitLog(t, &lb, "client key not allowed")

	d, err := dialDealer(t, addr, ClientConfig{ServerKey: srv.Public, Keys: good})
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, d)
	waitLog(t, &lb, "handshake deadline exceeded")
	echoOnce(t, d)
}

func TestEndpointErrors(t *testing.T) {
	if _, err := ServerEndpoint("ipc:///tmp/x", ServerConfig{Keys: mustKeys(t)}); !errors.Is(err, ErrEndpoint) {
		t.Fatalf("ipc: %v", err)
	}
	if _, err := ServerEndpoint("tcp://127.0.0.1:0", ServerConfig{}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("no keys: %v", err)
	}
	if _, err := ClientEndpoint("tcp://127.0.0.1:1", ClientConfig{}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("no server key: %v", err)
	}
	ep, err := ClientEndpoint("tcp://127.0.0.1:1", ClientConfig{ServerKey: mustKeys(t).Public})
	if err != nil {
		t.Fatal(err)
	}
	_ = ep.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := zmq4.NewDealer(ctx, zmq4.WithDialerMaxRetries(0))
	defer d.Close()
	if err := d.Dial(ep.String()); !errors.Is(err, ErrEndpoint) {
		t.Fatalf("released handle: %v", err)
	}
}
