package broker

import (
	"context"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/wiretest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, wiretest.GoleakIgnores()...) }

type client struct {
	t *testing.T
	d *wire.Dealer
	n int
}

func start(t *testing.T, cfg Config) *Service {
	t.Helper()
	cfg.Endpoint = "tcp://127.0.0.1:0"
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t *testing.T, s *Service) *client {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := wire.Dial(ctx, wire.Config{Security: clientSecurity(t, s)}, s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &client{t: t, d: d}
}

func (c *client) send(r proto.Message) {
	if rq, ok := proto.AsRequest(r); ok {
		c.n++
		proto.Stamp(rq, "c"+string(rune('0'+c.n)))
	}
	f, _ := proto.Encode(r)
	if err := c.d.Send(f...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) recv() proto.Message {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := c.d.Recv(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	m, err := proto.DecodeFrames(f)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func TestRegDiscAndErrors(t *testing.T) {
	s := start(t, Config{})
	c := dial(t, s)
	c.send(&proto.RegReq{ChannelName: "plh_a", SchemaHash: "00", ProducerPID: 5, ShmName: "shm"})
	if a, ok := c.recv().(*proto.RegAck); !ok || !a.OK() || a.BrokerVersion != proto.BrokerVersion || a.CorrelationID == "" {
		t.Fatalf("reg: %+v", a)
	}
	c.send(&proto.DiscReq{ChannelName: "plh_a"})
	if e, ok := c.recv().(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeChannelNotReady {
		t.Fatalf("want not ready, got %+v", e)
	}
	c.send(&proto.HeartbeatReq{ChannelName: "plh_a", ProducerPID: 5})
	c.send(&proto.DiscReq{ChannelName: "plh_a"})
	if a, ok := c.recv().(*proto.DiscAck); !ok || a.ShmName != "shm" {
		t.Fatalf("disc: %+v", a)
	}
	c.send(&proto.RegReq{ChannelName: "plh_a", SchemaHash: "aa", ProducerPID: 6})
	// The notify to the owner (same socket here) and the error reply, in that order.
	if n, ok := c.recv().(*proto.ChannelErrorNotify); !ok || n.Event != proto.EventSchemaMismatch {
		t.Fatalf("notify: %+v", n)
	}
	if e, ok := c.recv().(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeSchemaMismatch {
		t.Fatalf("mismatch: %+v", e)
	}
	st := s.Stats()
	if st.Received[string(proto.TypeRegReq)] != 2 || st.Errors[string(proto.CodeSchemaMismatch)] != 1 ||
		st.Notifications[string(proto.TypeChannelErrorNotify)] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSweepTimesOutChannel(t *testing.T) {
	s := start(t, Config{ChannelTimeout: 200 * time.Millisecond})
	c := dial(t, s)
	c.send(&proto.RegReq{ChannelName: "plh_t", ProducerPID: 1})
	c.recv()
	if n, ok := c.recv().(*proto.ChannelClosingNotify); !ok || n.Reason != proto.ReasonHeartbeatTimeout {
		t.Fatalf("%+v", n)
	}
	if len(s.Channels()) != 0 || s.Stats().ChannelTimeouts != 1 {
		t.Fatal("not removed")
	}
}

func FuzzHandle(f *testing.F) {
	s, err := Start(context.Background(), Config{Endpoint: "tcp://127.0.0.1:0", Curve: CurveConfig{Disabled: true}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Add([]byte{'C'}, []byte("REG_REQ"), []byte(`{"channel_name":"x"}`))
	f.Add([]byte{'C'}, []byte("DISC_REQ"), []byte(`{"channel_name":5}`))
	f.Add([]byte{'A'}, []byte("x"), []byte(nil))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		s.handle(wire.Msg{Peer: []byte("fuzzpeer"), Frames: [][]byte{a, b, c}})
	})
}
