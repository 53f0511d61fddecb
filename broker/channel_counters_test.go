package broker

import (
	"os/exec"
	"reflect"
	"testing"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
)

// expectMsg receives one message on c and fails unless it is a T (and, for a
// reply, unless its status matches ok).
func expectMsg[T proto.Message](t *testing.T, c *client, what string) T {
	t.Helper()
	m := c.recv()
	v, isT := m.(T)
	if !isT {
		t.Fatalf("%s: got %T %+v", what, m, m)
	}
	return v
}

func expectErr(t *testing.T, c *client, code proto.Code, what string) {
	t.Helper()
	if e := expectMsg[*proto.ErrorReply](t, c, what); e.ErrorCode != code {
		t.Fatalf("%s: got %s, want %s", what, e.ErrorCode, code)
	}
}

// want builds the expected counter maps from the non-zero entries; every other
// known key must be present with 0.
func wantMap(keys []string, nonZero map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for _, k := range keys {
		out[k] = nonZero[k]
	}
	return out
}

func checkCounters(t *testing.T, s *Service, name string, regs uint64, req, errs, notes, died map[string]uint64, joined, left, checksum uint64) {
	t.Helper()
	d, err := s.ChannelDetail(name)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Counters
	var reqKeys, noteKeys, codeKeys []string
	for _, k := range chanRequestTypes {
		reqKeys = append(reqKeys, string(k))
	}
	for _, k := range chanNotifyTypes {
		noteKeys = append(noteKeys, string(k))
	}
	for _, k := range proto.Codes {
		codeKeys = append(codeKeys, string(k))
	}
	want := ChannelCounters{
		RegisteredAgeSecs: got.RegisteredAgeSecs, Registrations: regs,
		Requests: wantMap(reqKeys, req), Errors: wantMap(codeKeys, errs), Notifications: wantMap(noteKeys, notes),
		ConsumersJoined: joined, ConsumersLeft: left, ChecksumErrors: checksum,
		ConsumersDied: wantMap([]string{proto.ReasonProcessDead, proto.ReasonHeartbeatTimeout}, died),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s counters:\n got %+v\nwant %+v", name, got, want)
	}
	if got.RegisteredAgeSecs < 0 || got.RegisteredAgeSecs > 600 {
		t.Fatalf("%s registered_age_s %v", name, got.RegisteredAgeSecs)
	}
}

func TestChannelCountersCoverProto(t *testing.T) {
	if len(proto.Codes) != nCodes {
		t.Fatalf("proto.Codes has %d codes, nCodes is %d", len(proto.Codes), nCodes)
	}
	for i, c := range proto.Codes {
		if codeIndex(c) != i {
			t.Fatalf("codeIndex(%s) = %d", c, codeIndex(c))
		}
	}
	for i, ty := range chanRequestTypes {
		if requestIndex(ty) != i {
			t.Fatalf("requestIndex(%s) = %d", ty, requestIndex(ty))
		}
	}
	for i, ty := range chanNotifyTypes {
		if notifyIndex(ty) != i {
			t.Fatalf("notifyIndex(%s) = %d", ty, notifyIndex(ty))
		}
	}
	for i, r := range chanDeathReasons {
		if reasonIndex(r) != i {
			t.Fatalf("reasonIndex(%s) = %d", r, reasonIndex(r))
		}
	}
}

// TestChannelCountersExact scripts requests on two channels and checks every
// per-channel counter exactly: nothing leaks from one channel to the other, the
// counters survive a producer re-registration and restart from zero when the
// channel is removed and registered again.
func TestChannelCountersExact(t *testing.T) {
	s := start(t, Config{ChannelTimeout: -1, ConsumerTimeout: -1, Checksum: ChecksumNotifyOnly})
	const a, b = "plh_cnt_a", "plh_cnt_b"
	pa, pb, pb2, c := dial(t, s), dial(t, s), dial(t, s), dial(t, s)

	// A local consumer process the broker watches with a pidfd; killed below.
	child := exec.Command("sleep", "600")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })

	pa.send(&proto.RegReq{ChannelName: a, SchemaHash: "aa", ProducerPID: 101})
	expectMsg[*proto.RegAck](t, pa, "REG a")
	pb.send(&proto.RegReq{ChannelName: b, SchemaHash: "bb", ProducerPID: 201})
	expectMsg[*proto.RegAck](t, pb, "REG b")

	c.send(&proto.DiscReq{ChannelName: a})
	expectErr(t, c, proto.CodeChannelNotReady, "DISC a before heartbeat")
	pa.send(&proto.HeartbeatReq{ChannelName: a, ProducerPID: 101})
	pa.send(&proto.DiscReq{ChannelName: a}) // same socket: the heartbeat was handled first
	expectMsg[*proto.DiscAck](t, pa, "DISC a")
	c.send(&proto.ConsumerRegReq{ChannelName: a, ConsumerPID: 301, ConsumerHostname: "plh-elsewhere"})
	expectMsg[*proto.ConsumerRegAck](t, c, "CONSUMER_REG a 301")
	// A plh client names its exact process (pid + start time, as hub's Messenger
	// does), which makes it local even with an empty hostname.
	cid, err := proc.Lookup(child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	c.send(&proto.ConsumerRegReq{ChannelName: a, ConsumerPID: uint64(cid.Pid), ConsumerStartTime: cid.StartTime})
	expectMsg[*proto.ConsumerRegAck](t, c, "CONSUMER_REG a child")
	c.send(&proto.ConsumerHeartbeatReq{ChannelName: a, ConsumerPID: 301})
	c.send(&proto.ConsumerDeregReq{ChannelName: a, ConsumerPID: 301})
	expectMsg[*proto.ConsumerDeregAck](t, c, "CONSUMER_DEREG a 301")
	c.send(&proto.ConsumerDeregReq{ChannelName: a, ConsumerPID: 301})
	expectErr(t, c, proto.CodeNotRegistered, "CONSUMER_DEREG a 301 again")
	// Checksum report: CHANNEL_EVENT_NOTIFY to the remaining consumer (socket c)
	// and to the producer.
	c.send(&proto.ChecksumErrorReport{ChannelName: a, SlotIndex: 3, Error: "crc", ReporterPID: 301})
	expectMsg[*proto.ChannelEventNotify](t, c, "event notify to consumer")
	expectMsg[*proto.ChannelEventNotify](t, pa, "event notify to producer")
	// The watched consumer dies: CONSUMER_DIED_NOTIFY to the producer.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if n := expectMsg[*proto.ConsumerDiedNotify](t, pa, "died notify"); n.Reason != proto.ReasonProcessDead || n.ChannelName != a {
		t.Fatalf("died notify %+v", n)
	}

	// Channel b: a schema-mismatched REG (CHANNEL_ERROR_NOTIFY to b's producer),
	// a producer re-registration, one consumer, a DEREG by the wrong pid.
	pb2.send(&proto.RegReq{ChannelName: b, SchemaHash: "xx", ProducerPID: 202})
	expectErr(t, pb2, proto.CodeSchemaMismatch, "REG b mismatch")
	expectMsg[*proto.ChannelErrorNotify](t, pb, "schema mismatch notify")
	pb.send(&proto.RegReq{ChannelName: b, SchemaHash: "bb", ProducerPID: 201})
	expectMsg[*proto.RegAck](t, pb, "REG b again")
	c.send(&proto.ConsumerRegReq{ChannelName: b, ConsumerPID: 302, ConsumerHostname: "plh-elsewhere"})
	expectMsg[*proto.ConsumerRegAck](t, c, "CONSUMER_REG b")
	pb2.send(&proto.DeregReq{ChannelName: b, ProducerPID: 999})
	expectErr(t, pb2, proto.CodeNotRegistered, "DEREG b wrong pid")
	c.send(&proto.DiscReq{ChannelName: "plh_cnt_none"}) // no entry: counted nowhere
	expectErr(t, c, proto.CodeChannelNotFound, "DISC unknown")

	checkCounters(t, s, a, 1,
		map[string]uint64{"REG_REQ": 1, "HEARTBEAT_REQ": 1, "DISC_REQ": 2, "CONSUMER_REG_REQ": 2, "CONSUMER_HEARTBEAT_REQ": 1,
			"CONSUMER_DEREG_REQ": 2, "CHECKSUM_ERROR_REPORT": 1},
		map[string]uint64{"CHANNEL_NOT_READY": 1, "NOT_REGISTERED": 1},
		map[string]uint64{"CHANNEL_EVENT_NOTIFY": 2, "CONSUMER_DIED_NOTIFY": 1},
		map[string]uint64{proto.ReasonProcessDead: 1}, 2, 1, 1)
	checkCounters(t, s, b, 2,
		map[string]uint64{"REG_REQ": 3, "CONSUMER_REG_REQ": 1, "DEREG_REQ": 1},
		map[string]uint64{"SCHEMA_MISMATCH": 1, "NOT_REGISTERED": 1},
		map[string]uint64{"CHANNEL_ERROR_NOTIFY": 1},
		nil, 1, 0, 0)

	// Removing b drops its counters; registered again it starts from zero.
	if err := s.CloseChannel(b); err != nil {
		t.Fatal(err)
	}
	expectMsg[*proto.ChannelClosingNotify](t, c, "closing notify to consumer")
	expectMsg[*proto.ChannelClosingNotify](t, pb, "closing notify to producer")
	pb.send(&proto.RegReq{ChannelName: b, SchemaHash: "bb", ProducerPID: 201})
	expectMsg[*proto.RegAck](t, pb, "REG b after close")
	checkCounters(t, s, b, 1, map[string]uint64{"REG_REQ": 1}, nil, nil, nil, 0, 0, 0)
}
