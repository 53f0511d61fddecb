package hub

import (
	"encoding/json"
	"fmt"

	"github.com/pylabhub/plh/broker/proto"
)

// Peer (P2C) control message types. A consumer and its producer share one
// connection: the consumer's DEALER to the producer's ROUTER. Data frames
// ['A'][payload] and control frames ['C'][type][body] (spec/protocol.md §2) both
// travel on it, in order. The types below are reserved; any other type is a user
// control message ("CTRL" is the default).
const (
	// TypeHello: consumer → producer, JSON helloBody. The producer counts the
	// consumer joined, grants it Window credits and answers HELLO_ACK.
	TypeHello = "HELLO"
	// TypeHelloAck: producer → consumer, JSON helloAckBody. Every data message
	// the producer sends this consumer after it is delivered after it: once a
	// consumer holds HELLO_ACK it loses nothing to a "slow joiner".
	TypeHelloAck = "HELLO_ACK"
	// TypeBye: consumer → producer (leaving), or producer → consumer (channel
	// closed by its producer). Empty body.
	TypeBye = "BYE"
	// TypeByeAck: producer → consumer, empty body: answer to the consumer's BYE,
	// sent after the producer stopped sending to it, so the consumer may close
	// its connection with nothing unread (an unread byte makes TCP reset the
	// connection, and the producer could lose the BYE).
	TypeByeAck = "BYE_ACK"
	// TypePeerHeartbeat: consumer → producer, empty body, every PeerHeartbeat
	// (backlog B-4). Any message refreshes liveness; this one exists for idle
	// consumers.
	TypePeerHeartbeat = "PEER_HEARTBEAT"
	// TypeCredit: consumer → producer, JSON creditBody: the consumer has consumed
	// N more data messages, so the producer may send N more (flow control).
	TypeCredit = "CREDIT"
	// TypeRejoin: producer → consumer, empty body: the producer heard a
	// consumer it does not count joined (it was dropped as dead, e.g. paused past
	// a timeout, and is back). The consumer answers with HELLO and is admitted
	// again (Go addition; a consumer that does not know it sees a user message).
	TypeRejoin = "REJOIN"
	// TypeGap: producer → consumer, JSON gapBody: under SlowConsumerDrop the
	// producer skipped Missed data messages for this consumer while it had no
	// credit; sent before the next data message it gets (Go addition).
	TypeGap = "GAP"
	// TypeSlowConsumer: producer → consumer, JSON gapBody: under
	// SlowConsumerDisconnect the producer dropped this consumer for not
	// returning credit; it gets no more data unless it is re-admitted (REJOIN,
	// HELLO). Go addition.
	TypeSlowConsumer = "SLOW_CONSUMER"
	// TypeCtrl is the default user control type.
	TypeCtrl = "CTRL"
)

// ReasonPeerTimeout is the OnConsumerDied reason for a consumer dropped for
// missing its peer heartbeats (B-4).
const ReasonPeerTimeout = "peer_heartbeat_timeout"

// maxWindow bounds the credit window a consumer may claim.
const maxWindow = 1 << 16

func reservedType(t string) bool {
	switch t {
	case TypeHello, TypeHelloAck, TypeBye, TypeByeAck, TypePeerHeartbeat, TypeCredit, TypeRejoin,
		TypeGap, TypeSlowConsumer:
		return true
	}
	return false
}

// helloBody is the HELLO body: the consumer's identity (original:
// {"consumer_pid":pid}; the other fields are Go additions, all optional).
type helloBody struct {
	ConsumerPid       uint64 `json:"consumer_pid"`
	ConsumerStartTime uint64 `json:"consumer_start_time,omitempty"`
	ConsumerUID       string `json:"consumer_uid,omitempty"`
	ConsumerName      string `json:"consumer_name,omitempty"`
	Window            int    `json:"window,omitempty"`       // credit window (0 = default)
	HeartbeatMs       int64  `json:"heartbeat_ms,omitempty"` // peer heartbeat period (0 = none)
	// Group is the consumer group the consumer joins (B-7; "" = none): its
	// members split the stream (producer_group.go).
	Group string `json:"group,omitempty"`
}

// helloAckBody is the HELLO_ACK body.
type helloAckBody struct {
	Channel string `json:"channel_name"`
	Pattern string `json:"pattern"`
	Window  int    `json:"window"` // credit granted
	// Group echoes HELLO's group: a producer that knows consumer groups
	// confirms the membership (an older one leaves it out, and the consumer
	// refuses to run as a member that would get every item).
	Group string `json:"group,omitempty"`
}

// creditBody is the CREDIT body.
type creditBody struct {
	N int `json:"n"`
}

// gapBody is the GAP and SLOW_CONSUMER body.
type gapBody struct {
	Missed uint64 `json:"missed"`           // data messages skipped for this consumer
	Reason string `json:"reason,omitempty"` // SLOW_CONSUMER: why it was dropped
}

// decodeHello parses and checks a HELLO body from an untrusted peer.
func decodeHello(b []byte) (helloBody, error) {
	var h helloBody
	if len(b) == 0 {
		return h, fmt.Errorf("%w: empty HELLO", ErrPeerProtocol)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%w: HELLO: %v", ErrPeerProtocol, err)
	}
	if h.Window < 0 || h.Window > maxWindow {
		return h, fmt.Errorf("%w: HELLO window %d out of [0, %d]", ErrPeerProtocol, h.Window, maxWindow)
	}
	if h.HeartbeatMs < 0 || h.HeartbeatMs > 3600_000 {
		return h, fmt.Errorf("%w: HELLO heartbeat_ms %d", ErrPeerProtocol, h.HeartbeatMs)
	}
	if len(h.ConsumerUID) > 64 || len(h.ConsumerName) > 64 {
		return h, fmt.Errorf("%w: HELLO uid/name too long", ErrPeerProtocol)
	}
	if err := validGroup(h.Group); err != nil {
		return h, fmt.Errorf("%w: HELLO %w", ErrPeerProtocol, err)
	}
	if h.Window == 0 {
		h.Window = defaultWindow
	}
	return h, nil
}

// decodeCredit parses and checks a CREDIT body.
func decodeCredit(b []byte) (int, error) {
	var c creditBody
	if err := json.Unmarshal(b, &c); err != nil {
		return 0, fmt.Errorf("%w: CREDIT: %v", ErrPeerProtocol, err)
	}
	if c.N <= 0 || c.N > maxWindow {
		return 0, fmt.Errorf("%w: CREDIT n=%d", ErrPeerProtocol, c.N)
	}
	return c.N, nil
}

// parsePeer parses the frames of one peer message (never panics).
func parsePeer(frames [][]byte) (proto.Frame, error) {
	f, err := proto.Parse(frames)
	if err != nil {
		return f, fmt.Errorf("%w: %w", ErrPeerProtocol, err)
	}
	return f, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // plain structs of ints and strings: cannot fail
	return b
}
