package broker

import (
	"strings"
	"testing"

	"github.com/pylabhub/plh/broker/proto"
)

// reg registers name with a descriptor and returns the reply.
func (c *client) reg(name, hash, schema string, version uint32, blds string) proto.Message {
	c.send(&proto.RegReq{ChannelName: name, SchemaHash: hash, ProducerPID: 9, SchemaName: schema, SchemaVersion: version, SchemaBLDS: blds})
	return c.recv()
}

func TestSchemaRegistry(t *testing.T) {
	s := start(t, Config{})
	c := dial(t, s)
	v100, v110 := proto.PackVersion(1, 0, 0), proto.PackVersion(1, 1, 0)
	if a, ok := c.reg("imu", "h1", "imu_t", v100, "t:u64;x:f32").(*proto.RegAck); !ok || !a.OK() {
		t.Fatalf("reg: %+v", a)
	}
	c.send(&proto.HeartbeatReq{ChannelName: "imu", ProducerPID: 9})
	c.send(&proto.DiscReq{ChannelName: "imu"})
	if a, ok := c.recv().(*proto.DiscAck); !ok || a.Schema() != (proto.Schema{Name: "imu_t", Version: v100, BLDS: "t:u64;x:f32"}) {
		t.Fatalf("disc: %+v", a)
	}

	// Changed field: refused, naming the field; the owner is told.
	if n, ok := c.reg("imu", "h2", "imu_t", v110, "t:u64;x:f64").(*proto.ChannelErrorNotify); !ok || n.AttemptedSchemaHash != "h2" {
		t.Fatalf("notify: %+v", n)
	}
	if e, ok := c.recv().(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeSchemaMismatch || !strings.Contains(e.Message, `field 1 "x"`) {
		t.Fatalf("mismatch: %+v", e)
	}
	// Appended without a higher minor: refused.
	c.reg("imu", "h2", "imu_t", v100, "t:u64;x:f32;y:f32") // the notify
	if e, ok := c.recv().(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeSchemaMismatch || !strings.Contains(e.Message, "minor") {
		t.Fatalf("mismatch: %+v", e)
	}
	// Appended with a higher minor: accepted as an upgrade, consumers kept.
	c.send(&proto.ConsumerRegReq{ChannelName: "imu", ConsumerPID: 1})
	c.recv()
	if a, ok := c.reg("imu", "h2", "imu_t", v110, "t:u64;x:f32;y:f32").(*proto.RegAck); !ok || !a.OK() {
		t.Fatalf("upgrade: %+v", a)
	}
	got := s.Schemas()
	if len(got) != 1 || got[0].Name != "imu_t" || got[0].VersionText != "1.1.0" || got[0].Fields != 3 || got[0].SchemaHash != "h2" {
		t.Fatalf("schemas %+v", got)
	}
	if d, _ := s.ChannelDetail("imu"); d.ConsumerCount != 1 {
		t.Fatalf("consumers not kept: %+v", d)
	}
	// A hash change without a descriptor on one side stays a mismatch.
	c.reg("imu", "h3", "", 0, "")
	if e, ok := c.recv().(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeSchemaMismatch {
		t.Fatalf("no descriptor: %+v", e)
	}
}

func TestSchemaLimits(t *testing.T) {
	s := start(t, Config{Limits: Limits{MaxMetadataBytes: 64, MaxFieldBytes: 16}})
	c := dial(t, s)
	long := strings.Repeat("a:u8;", 20) + "b:u8"
	if e, ok := c.reg("x", "", "s", 0, long).(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeLimitExceeded {
		t.Fatalf("blds over the metadata limit: %+v", e)
	}
	if e, ok := c.reg("x", "", strings.Repeat("n", 17), 0, "").(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeLimitExceeded {
		t.Fatalf("schema_name over the field limit: %+v", e)
	}
	if e, ok := c.reg("x", "", "s", 0, "a:u8;b").(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeInvalidRequest || !strings.Contains(e.Message, `member 1 "b"`) {
		t.Fatalf("bad blds: %+v", e)
	}
	if st := s.Stats(); st.LimitsExceeded["metadata_bytes"] != 1 || st.LimitsExceeded["field_bytes"] != 1 {
		t.Fatalf("stats %+v", st.LimitsExceeded)
	}
}

// TestLogicalNames: every lookup compares the part before " | pid:<pid>-<n>" (B-21).
func TestLogicalNames(t *testing.T) {
	s := start(t, Config{})
	c := dial(t, s)
	if a, ok := c.reg("cam | pid:10-0", "h", "", 0, "").(*proto.RegAck); !ok || !a.OK() {
		t.Fatalf("reg: %+v", a)
	}
	c.reg("cam ! other", "h", "", 0, "") // sorts between "cam" and "cam | pid..."
	c.send(&proto.HeartbeatReq{ChannelName: "cam | pid:11-3"})
	c.send(&proto.DiscReq{ChannelName: "cam"})
	if a, ok := c.recv().(*proto.DiscAck); !ok || !a.OK() {
		t.Fatalf("disc by logical name: %+v", a)
	}
	// A registration under another display name is the same channel.
	c.reg("cam | pid:12-1", "other", "", 0, "") // notify to the owner
	if e, ok := c.recv().(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeSchemaMismatch {
		t.Fatalf("same logical name, other hash: %+v", e)
	}
	c.send(&proto.ConsumerRegReq{ChannelName: "cam | pid:99-9", ConsumerPID: 1})
	if a, ok := c.recv().(*proto.ConsumerRegAck); !ok || !a.OK() {
		t.Fatalf("consumer reg: %+v", a)
	}
	c.send(&proto.ConsumerDeregReq{ChannelName: "cam", ConsumerPID: 1})
	if a, ok := c.recv().(*proto.ConsumerDeregAck); !ok || !a.OK() {
		t.Fatalf("consumer dereg: %+v", a)
	}
	// Paging with a display name as cursor skips no channel.
	c.send(&proto.ChannelListReq{Limit: 1})
	l1, _ := c.recv().(*proto.ChannelListAck)
	c.send(&proto.ChannelListReq{Limit: 1, Cursor: l1.NextCursor})
	l2, _ := c.recv().(*proto.ChannelListAck)
	if len(l1.Channels) != 1 || l1.Channels[0].Name != "cam | pid:10-0" || len(l2.Channels) != 1 || l2.Channels[0].Name != "cam ! other" {
		t.Fatalf("pages %+v / %+v", l1, l2)
	}
	if _, err := s.ChannelDetail("cam | pid:1-1"); err != nil {
		t.Fatal(err)
	}
	c.send(&proto.ChannelCloseReq{ChannelName: "cam"})
	if n, ok := c.recv().(*proto.ChannelClosingNotify); !ok || n.ChannelName != "cam | pid:10-0" {
		t.Fatalf("closing notify names the channel as its producer registered it: %+v", n)
	}
	if a, ok := c.recv().(*proto.ChannelCloseAck); !ok || !a.OK() {
		t.Fatalf("close: %+v", a)
	}
	c.send(&proto.DeregReq{ChannelName: "cam ! other | pid:5-5", ProducerPID: 9})
	if a, ok := c.recv().(*proto.DeregAck); !ok || !a.OK() {
		t.Fatalf("dereg: %+v", a)
	}
	if len(s.Channels()) != 0 {
		t.Fatalf("left %+v", s.Channels())
	}
}

// TestLogicalNameCounters: a request under a display name counts on its channel.
func TestLogicalNameCounters(t *testing.T) {
	s := start(t, Config{})
	c := dial(t, s)
	c.reg("ctr | pid:1-0", "h", "", 0, "")
	c.send(&proto.DiscReq{ChannelName: "ctr | pid:2-2"})
	c.recv()
	d, err := s.ChannelDetail("ctr")
	if err != nil {
		t.Fatal(err)
	}
	if d.Counters.Requests["DISC_REQ"] != 1 || d.Counters.Errors["CHANNEL_NOT_READY"] != 1 {
		t.Fatalf("counters %+v", d.Counters)
	}
}
