package messenger_test

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hub"
	"github.com/pylabhub/plh/internal/wire"
)

// scripted is a broker that is not ours: a raw wire ROUTER whose answers each
// spec writes by hand (an original broker, a broken one, a reordering one).
type scripted struct {
	r *wire.Router
}

// req is one request the scripted broker received.
type req struct {
	peer []byte
	typ  string
	body map[string]any
}

func (q req) corr() string { s, _ := q.body["correlation_id"].(string); return s }

// startScripted runs handle for every control message the ROUTER receives.
func startScripted(handle func(s *scripted, q req)) *scripted {
	r, err := wire.Listen(wire.Config{}, "tcp://127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	s := &scripted{r: r}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		for {
			m, err := r.Recv(ctx)
			if err != nil {
				return
			}
			f, err := proto.Parse(m.Frames)
			if err != nil || f.Kind != proto.KindControl {
				continue
			}
			q := req{peer: m.Peer, typ: f.Type}
			_ = json.Unmarshal(f.Body, &q.body)
			handle(s, q)
		}
	}()
	DeferCleanup(func() { cancel(); _ = r.Close(); <-done })
	return s
}

func (s *scripted) endpoint() string { return s.r.Endpoint() }

// send sends ['C'][typ][body] to peer; body is JSON-encoded unless it is []byte.
func (s *scripted) send(peer []byte, typ string, body any) {
	raw, ok := body.([]byte)
	if !ok {
		var err error
		raw, err = json.Marshal(body)
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(s.r.Send(peer, proto.ControlFrames(typ, raw)...)).To(Succeed())
}

// pong answers PING_REQ like our broker.
func (s *scripted) pong(q req) bool {
	if q.typ != string(proto.TypePingReq) {
		return false
	}
	s.send(q.peer, string(proto.TypePingAck), map[string]any{"status": "success", "correlation_id": q.corr()})
	return true
}

var _ = Describe("Messenger against brokers that are not ours", func() {
	It("judges replies by their body, not their type: REG_RESP / DISC_RESP (1.7)", func() {
		s := startScripted(func(s *scripted, q req) {
			switch {
			case s.pong(q):
			case q.typ == "REG_REQ":
				s.send(q.peer, "REG_RESP", map[string]any{"status": "success", "correlation_id": q.corr()})
			case q.typ == "DISC_REQ":
				s.send(q.peer, "DISC_RESP", map[string]any{"status": "success", "correlation_id": q.corr(),
					"shm_name": q.body["channel_name"], "schema_hash": "", "schema_version": 0})
			}
		})
		m := connected(s.endpoint(), hub.MessengerConfig{})
		Expect(m.RegisterProducer(ctx5(), "plh_fake", hub.ProducerInfo{})).To(Succeed())
		info, err := m.Discover(ctx5(), "plh_fake")
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ShmName).To(Equal("plh_fake"))
		Expect(info.SchemaVersion).To(BeZero())
	})

	It("dispatches a notification that arrives while a request waits, and still matches the reply (§9.3)", func() {
		s := startScripted(func(s *scripted, q req) {
			switch {
			case s.pong(q):
			case q.typ == "DISC_REQ":
				ch := q.body["channel_name"]
				s.send(q.peer, "CHANNEL_ERROR_NOTIFY", map[string]any{"channel_name": ch, "event": "schema_mismatch_attempt",
					"existing_schema_hash": "aa", "attempted_schema_hash": "bb", "attempted_pid": 7})
				s.send(q.peer, "DISC_ACK", map[string]any{"status": "success", "correlation_id": "someone-else", "shm_name": "WRONG"})
				s.send(q.peer, "DISC_ACK", map[string]any{"status": "success", "correlation_id": q.corr(), "shm_name": "right"})
			}
		})
		m := connected(s.endpoint(), hub.MessengerConfig{})
		notes := make(chan hub.ChannelNotice, 1)
		m.OnChannelError("plh_n", func(n hub.ChannelNotice) { notes <- n })
		info, err := m.Discover(ctx5(), "plh_n")
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ShmName).To(Equal("right"))
		var n hub.ChannelNotice
		Eventually(notes).WithTimeout(5 * time.Second).Should(Receive(&n))
		Expect(n.Event).To(Equal("schema_mismatch_attempt"))
		Expect(n.AttemptedPid).To(BeEquivalentTo(7))
	})

	It("gives each caller its own reply when the broker answers out of order (B-14)", func() {
		var mu sync.Mutex
		var held []req
		s := startScripted(func(s *scripted, q req) {
			if s.pong(q) || q.typ != "DISC_REQ" {
				return
			}
			mu.Lock()
			held = append(held, q)
			batch := held
			if len(held) == 4 {
				held = nil
			}
			mu.Unlock()
			if len(batch) == 4 {
				for i := len(batch) - 1; i >= 0; i-- { // newest first
					s.send(batch[i].peer, "DISC_ACK", map[string]any{"status": "success",
						"correlation_id": batch[i].corr(), "shm_name": batch[i].body["channel_name"]})
				}
			}
		})
		m := connected(s.endpoint(), hub.MessengerConfig{})
		var wg sync.WaitGroup
		got := make([]string, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				info, err := m.Discover(ctx5(), "plh_order_"+string(rune('a'+i)))
				Expect(err).NotTo(HaveOccurred())
				got[i] = info.ShmName
			}()
		}
		wg.Wait()
		Expect(got).To(Equal([]string{"plh_order_a", "plh_order_b", "plh_order_c", "plh_order_d"}))
	})

	It("drops garbage from the broker and reports a malformed reply as ErrBadReply", func() {
		s := startScripted(func(s *scripted, q req) {
			switch {
			case s.pong(q):
			case q.typ == "DISC_REQ" && q.body["channel_name"] == "plh_bad":
				_ = s.r.Send(q.peer, []byte("only one frame"))
				_ = s.r.Send(q.peer, proto.DataFrames([]byte("data"))...)
				s.send(q.peer, "DISC_ACK", []byte("not json"))
				s.send(q.peer, "NO_SUCH_NOTIFY", map[string]any{"channel_name": "plh_bad"})
				s.send(q.peer, "CHANNEL_CLOSING_NOTIFY", []byte(`{"channel_name": 5}`))
				s.send(q.peer, "DISC_ACK", []byte(`{"status":"success","correlation_id":"`+q.corr()+`","schema_version":"seven"}`))
			case q.typ == "DISC_REQ":
				s.send(q.peer, "DISC_ACK", map[string]any{"status": "success", "correlation_id": q.corr(), "shm_name": "ok"})
			}
		})
		m := connected(s.endpoint(), hub.MessengerConfig{})
		_, err := m.Discover(ctx5(), "plh_bad")
		Expect(err).To(MatchError(hub.ErrBadReply))
		info, err := m.Discover(ctx5(), "plh_good")
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ShmName).To(Equal("ok"))
	})

	It("fails Connect with ErrVersionMismatch against a broker of another major version (B-8)", func() {
		s := startScripted(func(s *scripted, q req) {
			s.send(q.peer, "ERROR", map[string]any{"status": "error", "correlation_id": q.corr(),
				"error_code": "VERSION_MISMATCH", "message": "broker speaks 2.0"})
		})
		m := newMessenger(hub.MessengerConfig{})
		Expect(m.Connect(ctx5(), s.endpoint(), "")).To(MatchError(hub.ErrVersionMismatch))
		_, err := m.Discover(ctx5(), "plh_v")
		Expect(err).To(MatchError(hub.ErrNotConnected))
	})

	It("connects to a broker that does not know PING_REQ (an original broker)", func() {
		s := startScripted(func(s *scripted, q req) {
			if q.typ == "PING_REQ" {
				s.send(q.peer, "ERROR", map[string]any{"status": "error", "correlation_id": q.corr(),
					"error_code": "UNKNOWN_MSG_TYPE", "message": "Unknown message type: PING_REQ"})
			}
		})
		m := newMessenger(hub.MessengerConfig{})
		Expect(m.Connect(ctx5(), s.endpoint(), "")).To(Succeed())
		Expect(m.Connected()).To(BeTrue())
	})
})
