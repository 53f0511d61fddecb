package curve_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
)

// python is Debian's interpreter with python3-zmq (libzmq 4.3 with CURVE).
const python = "/usr/bin/python3"

func needPyZMQ(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import zmq; assert zmq.has('curve')").CombinedOutput(); err != nil {
		t.Skipf("python3-zmq with CURVE not available: %v %s", err, out)
	}
}

// echoRouter listens a wire Router with cfg and echoes every message until the
// test ends.
func echoRouter(t *testing.T, cfg wire.Config) *wire.Router {
	t.Helper()
	r, err := wire.Listen(cfg, "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.Recv(ctx)
			if err != nil {
				return
			}
			_ = r.Send(m.Peer, m.Frames...)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		r.Close()
	})
	return r
}

// TestLibzmqHeartbeatsKeepConnection: a libzmq DEALER with ZMTP heartbeats
// (PING every second, answered by a PONG from inside the CURVE conn) stays
// connected to a CURVE wire Router and keeps being answered well past the
// Router's SendTimeout (2 s), which the PONG's write deadline once inherited.
func TestLibzmqHeartbeatsKeepConnection(t *testing.T) {
	needPyZMQ(t)
	srv, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	ss, err := curve.NewServerSecurity(curve.ServerConfig{Keys: srv})
	if err != nil {
		t.Fatal(err)
	}
	r := echoRouter(t, wire.Config{Security: ss})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "testdata/heartbeat.py", r.Endpoint(), srv.Public.String(), "6").CombinedOutput()
	t.Logf("client: %s", out)
	if err != nil {
		t.Fatalf("heartbeat client failed (dropped or unanswered): %v", err)
	}
	if st := r.Stats(); st.Accepted != 1 {
		t.Fatalf("router accepted %d connections, want 1 (the client was dropped and reconnected)", st.Accepted)
	}
}
