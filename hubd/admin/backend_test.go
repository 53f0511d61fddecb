package admin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/wire"
)

// startBroker runs a real broker on an ephemeral loopback port.
func startBroker(t *testing.T, m *Metrics) *broker.Service {
	t.Helper()
	cfg := broker.Config{Endpoint: "tcp://127.0.0.1:0", Curve: broker.CurveConfig{Disabled: true}} // raw NULL test parties
	if m != nil {
		cfg.ObserveRequest = m.ObserveBrokerRequest
	}
	svc, err := broker.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

type testParty struct {
	t *testing.T
	d *wire.Dealer
}

var corrSeq int

func dialTestParty(t *testing.T, endpoint string) *testParty {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := wire.Dial(ctx, wire.Config{}, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return &testParty{t: t, d: d}
}

func (p *testParty) request(m proto.Request) proto.Message {
	p.t.Helper()
	corrSeq++
	proto.Stamp(m, fmt.Sprintf("admin-unit-%d", corrSeq))
	frames, err := proto.Encode(m)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.d.Send(frames...); err != nil {
		p.t.Fatal(err)
	}
	return p.next()
}

func (p *testParty) next() proto.Message {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	frames, err := p.d.Recv(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	m, err := proto.DecodeFrames(frames)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

func TestBrokerBackendChannelsDetailCloseMetrics(t *testing.T) {
	m := NewMetrics(nil)
	svc := startBroker(t, m)
	shutdowns := 0
	e := NewEngine(EngineConfig{HubName: "unit.hub", Backend: NewBrokerBackend(svc,
		func() any { return map[string]any{"hub": map[string]any{"name": "unit.hub"}} },
		func() { shutdowns++ })})
	ex := func(code string) string {
		t.Helper()
		out, err := e.Exec(context.Background(), "<test>", code)
		if err != nil {
			t.Fatalf("%q: %v", code, err)
		}
		return out
	}

	name := fmt.Sprintf("plh_test_adminunit_%d", os.Getpid())
	prod := dialTestParty(t, svc.Endpoint())
	if r, ok := prod.request(&proto.RegReq{ChannelName: name, SchemaHash: "ab", ProducerPID: uint64(os.Getpid()), ChannelPattern: "PubSub"}).(*proto.RegAck); !ok || !r.OK() {
		t.Fatalf("REG_REQ: %+v", r)
	}
	cons := dialTestParty(t, svc.Endpoint())
	if r, ok := cons.request(&proto.ConsumerRegReq{ChannelName: name, ConsumerPID: uint64(os.Getpid())}).(*proto.ConsumerRegAck); !ok || !r.OK() {
		t.Fatalf("CONSUMER_REG_REQ: %+v", r)
	}
	if _, ok := cons.request(&proto.DiscReq{ChannelName: "plh_test_nope"}).(*proto.ErrorReply); !ok {
		t.Fatal("DISC_REQ of an unknown channel did not fail")
	}
	if e, ok := cons.request(&proto.DiscReq{ChannelName: name}).(*proto.ErrorReply); !ok || e.ErrorCode != proto.CodeChannelNotReady {
		t.Fatalf("DISC_REQ before the first heartbeat: %+v", e)
	}

	if out := ex("[(c['name'], c['consumer_count'], c['schema_hash']) for c in plh.channels()]"); out != fmt.Sprintf("[(%q, 1, \"ab\")]\n", name) {
		t.Fatalf("channels: %q", out)
	}
	if out := ex(fmt.Sprintf("d = plh.channel(%q)\nprint(d['producer']['pid'] == %d, len(d['consumers']), d['status'])", name, os.Getpid())); !strings.HasPrefix(out, "True 1 ") {
		t.Fatalf("channel detail: %q", out)
	}
	// The channel's own counters: the DISC_REQ of the unknown channel is not in them.
	if out := ex(fmt.Sprintf("def sum(d):\n    n = 0\n    for v in d:\n        n += v\n    return n\n"+
		"c = plh.channel(%q)['counters']\n"+
		"print(c['requests']['REG_REQ'], c['requests']['CONSUMER_REG_REQ'], c['requests']['DISC_REQ'], sum(c['requests'].values()),\n"+
		"  c['errors']['CHANNEL_NOT_READY'], c['errors']['CHANNEL_NOT_FOUND'], sum(c['errors'].values()), sum(c['notifications'].values()),\n"+
		"  c['consumers_joined'], c['consumers_left'], c['consumers_died'], c['checksum_error_reports'], c['producer_registrations'],\n"+
		"  c['registered_age_s'] >= 0)", name)); out != "1 1 1 3 1 0 1 0 1 0 {\"heartbeat_timeout\": 0, \"process_dead\": 0} 0 1 True\n" {
		t.Fatalf("channel counters: %q", out)
	}
	if _, err := e.Exec(context.Background(), "<test>", "plh.channel('plh_test_nope')"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("unknown channel detail: %v", err)
	}
	if out := ex("plh.config()['hub']['name']"); out != "\"unit.hub\"\n" {
		t.Fatalf("config: %q", out)
	}
	if out := ex("m = plh.metrics()\nprint(m['requests']['REG_REQ'], m['requests']['DISC_REQ'], m['errors']['CHANNEL_NOT_FOUND'], m['consumers'])"); out != "1 2 1 1\n" {
		t.Fatalf("metrics: %q", out)
	}

	ex(fmt.Sprintf("plh.close(%q)", name))
	for _, p := range []*testParty{cons, prod} {
		n, ok := p.next().(*proto.ChannelClosingNotify)
		if !ok || n.ChannelName != name || n.Reason != proto.ReasonExplicitClose {
			t.Fatalf("notification: %+v", n)
		}
	}
	if out := ex("len(plh.channels())"); out != "0\n" {
		t.Fatalf("channel survived close: %q", out)
	}
	if _, err := e.Exec(context.Background(), "<test>", fmt.Sprintf("plh.close(%q)", name)); err == nil {
		t.Fatal("closing an unknown channel succeeded")
	}
	if out := ex("plh.metrics()['notifications']['CHANNEL_CLOSING_NOTIFY']"); out != "2\n" {
		t.Fatalf("notification count: %q", out)
	}
	ex("plh.shutdown()")
	if shutdowns != 1 {
		t.Fatalf("shutdown hook called %d times", shutdowns)
	}
}

func TestBrokerBackendSchemasAndTrace(t *testing.T) {
	svc := startBroker(t, NewMetrics(nil))
	e := NewEngine(EngineConfig{HubName: "unit.hub", Backend: NewBrokerBackend(svc, nil, nil)})
	ex := func(code string) (string, error) { return e.Exec(context.Background(), "<test>", code) }
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.jsonl")
	if out, err := ex(fmt.Sprintf("s = plh.trace(on=True, path=%q)\nprint(s['on'], s['path'] == %q)", path, path)); err != nil || out != "True True\n" {
		t.Fatalf("trace on: %q %v", out, err)
	}
	name := fmt.Sprintf("plh_test_schemas_%d", os.Getpid())
	prod := dialTestParty(t, svc.Endpoint())
	if r, ok := prod.request(&proto.RegReq{ChannelName: name, SchemaHash: "ab", ProducerPID: 7, SchemaName: "imu",
		SchemaVersion: proto.PackVersion(1, 2, 0), SchemaBLDS: "t:u64;x:f32"}).(*proto.RegAck); !ok || !r.OK() {
		t.Fatalf("REG_REQ: %+v", r)
	}
	out, err := ex("[(s['channel'], s['name'], s['version_text'], s['blds'], s['fields'], s['schema_hash']) for s in plh.schemas()]")
	if want := fmt.Sprintf("[(%q, \"imu\", \"1.2.0\", \"t:u64;x:f32\", 2, \"ab\")]\n", name); err != nil || out != want {
		t.Fatalf("schemas: %q %v, want %q", out, err, want)
	}
	if out, err := ex("s = plh.trace(on=False)\nprint(s['on'], s['written'])"); err != nil || out != "False 2\n" {
		t.Fatalf("trace off: %q %v", out, err)
	}
	if raw, _ := os.ReadFile(path); strings.Count(string(raw), "\n") != 2 || !strings.Contains(string(raw), `"type":"REG_ACK"`) {
		t.Fatalf("trace file: %s", raw)
	}
	for _, bad := range []string{"plh.trace(on=True, path='relative.jsonl')", "plh.trace(on=True, path='/etc/passwd')", "plh.trace(on=1)"} {
		if _, err := ex(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, err := ex(fmt.Sprintf("plh.trace(on=True, path=%q)", filepath.Join(dir, "nodir", "t.jsonl"))); err == nil || !strings.Contains(err.Error(), "nodir") {
		t.Fatalf("unwritable path: %v", err)
	}
	if out, err := ex("plh.trace()['on']"); err != nil || out != "False\n" {
		t.Fatalf("status: %q %v", out, err)
	}
}
