package broker

import (
	"testing"

	"github.com/pylabhub/plh/broker/proto"
)

// TestRemap: only the registered producer remaps, only forward; the registry
// takes the new segment, hash and generation; consumers then the producer get
// CHANNEL_EVENT_NOTIFY "remap" (B-19).
func TestRemap(t *testing.T) {
	s := start(t, Config{})
	p, k := dial(t, s), dial(t, s)
	if a, ok := p.reg("ch", "h1", "", 0, "").(*proto.RegAck); !ok || !a.OK() {
		t.Fatalf("reg: %+v", a)
	}
	p.send(&proto.HeartbeatReq{ChannelName: "ch", ProducerPID: 9})
	k.send(&proto.ConsumerRegReq{ChannelName: "ch", ConsumerPID: 1})
	k.recv()
	remap := func(c *client, pid, gen uint64) proto.Message {
		c.send(&proto.RemapReq{ChannelName: "ch", ProducerPID: pid, ShmName: "ch.remap-1", SchemaHash: "h2",
			LayoutGeneration: gen, FinalSeq: 42})
		return c.recv()
	}
	if e, ok := remap(k, 9, 1).(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeNotRegistered {
		t.Fatalf("another connection: %+v", e)
	}
	if e, ok := remap(p, 8, 1).(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeNotRegistered {
		t.Fatalf("another pid: %+v", e)
	}
	if e, ok := remap(p, 9, 0).(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeInvalidRequest {
		t.Fatalf("generation 0: %+v", e)
	}
	// The producer hears its own notice before the ACK.
	if n, ok := remap(p, 9, 1).(*proto.ChannelEventNotify); !ok || n.Event != proto.EventRemap {
		t.Fatalf("producer notice: %+v", n)
	}
	if a, ok := p.recv().(*proto.RemapAck); !ok || !a.OK() || a.LayoutGeneration != 1 {
		t.Fatalf("ack: %+v", a)
	}
	n, ok := k.recv().(*proto.ChannelEventNotify)
	if !ok || n.Event != proto.EventRemap || n.BrokerAction != proto.ActionRemap || n.ShmName != "ch.remap-1" ||
		n.SchemaHash != "h2" || n.LayoutGeneration != 1 || n.FinalSeq != 42 {
		t.Fatalf("consumer notice: %+v", n)
	}
	k.send(&proto.DiscReq{ChannelName: "ch"})
	if a, ok := k.recv().(*proto.DiscAck); !ok || a.ShmName != "ch.remap-1" || a.SchemaHash != "h2" || a.LayoutGeneration != 1 || a.ConsumerCount != 1 {
		t.Fatalf("disc: %+v", a)
	}
	if e, ok := remap(p, 9, 1).(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeInvalidRequest {
		t.Fatalf("same generation again: %+v", e)
	}
	if d, _ := s.ChannelDetail("ch"); d.ConsumerCount != 1 {
		t.Fatalf("consumers not kept: %+v", d)
	}
}

// TestRemapBadInput: every bad REMAP_REQ gets an ERROR naming the problem.
func TestRemapBadInput(t *testing.T) {
	s := start(t, Config{Limits: Limits{MaxFieldBytes: 16}})
	p := dial(t, s)
	if a, ok := p.reg("ch", "h1", "", 0, "").(*proto.RegAck); !ok || !a.OK() {
		t.Fatalf("reg: %+v", a)
	}
	for _, tc := range []struct {
		name string
		req  proto.RemapReq
		code proto.Code
	}{
		{"unknown channel", proto.RemapReq{ChannelName: "nope", ProducerPID: 9, ShmName: "s", LayoutGeneration: 1}, proto.CodeChannelNotFound},
		{"no shm_name", proto.RemapReq{ChannelName: "ch", ProducerPID: 9, LayoutGeneration: 1}, proto.CodeInvalidRequest},
		{"no producer_pid", proto.RemapReq{ChannelName: "ch", ShmName: "s", LayoutGeneration: 1}, proto.CodeInvalidRequest},
		{"blds without a name", proto.RemapReq{ChannelName: "ch", ProducerPID: 9, ShmName: "s", LayoutGeneration: 1, SchemaBLDS: "x:u8"}, proto.CodeInvalidRequest},
		{"shm_name too long", proto.RemapReq{ChannelName: "ch", ProducerPID: 9, ShmName: "0123456789abcdefg", LayoutGeneration: 1}, proto.CodeLimitExceeded},
	} {
		p.send(&tc.req)
		if e, ok := p.recv().(*proto.ErrorReply); !ok || e.ErrorCode != tc.code || e.CorrelationID == "" {
			t.Fatalf("%s: %+v, want %s", tc.name, e, tc.code)
		}
	}
	if d, _ := s.ChannelDetail("ch"); d.LayoutGeneration != 0 {
		t.Fatalf("a refused remap changed the channel: %+v", d)
	}
}
