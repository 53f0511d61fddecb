package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/wire"
)

func startServer(t *testing.T, token string, lim Limits, m *Metrics) *Server {
	t.Helper()
	e := NewEngine(EngineConfig{HubName: "srv.hub", Limits: lim})
	s, err := Listen(ServerConfig{Endpoint: "tcp://127.0.0.1:0", Token: token, Engine: e, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dialClient(t *testing.T, s *Server, token string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := DialClient(ctx, s.Endpoint(), token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func execReply(t *testing.T, c *Client, code string) Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := c.Exec(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestServerTokenAndGlobals(t *testing.T) {
	s := startServer(t, "s3cret", Limits{}, nil)
	good := dialClient(t, s, "s3cret")
	bad := dialClient(t, s, "wrong")
	none := dialClient(t, s, "")

	if r := execReply(t, good, "x = 41\nprint('set')"); !r.Success || r.Output != "set\n" {
		t.Fatalf("good token: %+v", r)
	}
	for _, c := range []*Client{bad, none} {
		r := execReply(t, c, "x = 0\nprint('ran')")
		if r.Success || r.Error != "unauthorized" || r.Output != "" {
			t.Fatalf("refused request: %+v", r)
		}
	}
	// The refused requests ran nothing: x is still 41.
	if r := execReply(t, good, "print(x + 1)"); !r.Success || r.Output != "42\n" {
		t.Fatalf("globals: %+v", r)
	}
}

func TestServerBadEnvelopes(t *testing.T) {
	s := startServer(t, "", Limits{}, nil)
	c := dialClient(t, s, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cases := map[string]string{
		"not json":          "invalid JSON request",
		"[1, 2]":            "invalid JSON request",
		"null":              "invalid JSON request",
		`"code"`:            "invalid JSON request",
		`{}`:                "missing or invalid 'code' field",
		`{"code": 5}`:       "missing or invalid 'code' field",
		`{"code": []}`:      "missing or invalid 'code' field",
		`{"code": "x = ("}`: "interpreter error: ",
	}
	for payload, want := range cases {
		r, err := c.Raw(ctx, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		if r.Success || !strings.HasPrefix(r.Error, want) || (want != "interpreter error: " && r.Error != want) {
			t.Fatalf("%s: got %+v, want error %q", payload, r, want)
		}
	}
	// A raw DEALER without the REQ delimiter, and one sending three frames.
	d, err := wire.Dial(ctx, wire.Config{}, s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Send([]byte(`{"code": "print(7)"}`)); err != nil {
		t.Fatal(err)
	}
	frames, err := d.Recv(ctx)
	if err != nil || len(frames) != 1 || !strings.Contains(string(frames[0]), `"output":"7\n"`) {
		t.Fatalf("dealer envelope: %q %v", frames, err)
	}
	if err := d.Send([]byte{}, []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	frames, err = d.Recv(ctx)
	if err != nil || len(frames) != 2 || !strings.Contains(string(frames[1]), "invalid JSON request") {
		t.Fatalf("three frames: %q %v", frames, err)
	}
}

func TestServerRunawayThenServes(t *testing.T) {
	s := startServer(t, "", Limits{MaxSteps: 1_000_000}, nil)
	c := dialClient(t, s, "")
	r := execReply(t, c, "while True:\n    pass")
	if r.Success || !strings.Contains(r.Error, "interpreter error: ") || !strings.Contains(r.Error, ErrLimit.Error()) {
		t.Fatalf("runaway: %+v", r)
	}
	if r := execReply(t, c, "print('alive')"); !r.Success || r.Output != "alive\n" {
		t.Fatalf("after runaway: %+v", r)
	}
}

func TestServerShortcuts(t *testing.T) {
	s := startServer(t, "", Limits{}, nil)
	c := dialClient(t, s, "")
	if r := execReply(t, c, ":help"); !r.Success || !strings.Contains(r.Output, "plh.channels()") {
		t.Fatalf(":help %+v", r)
	}
	if r := execReply(t, c, ":channels"); !r.Success || r.Output != "(no channels)\n" {
		t.Fatalf(":channels %+v", r)
	}
	if r := execReply(t, c, ":bogus"); r.Success || !strings.Contains(r.Error, "unknown shortcut") {
		t.Fatalf(":bogus %+v", r)
	}
}

func TestCheckBind(t *testing.T) {
	for _, ep := range []string{"tcp://127.0.0.1:5600", "tcp://localhost:1", "tcp://[::1]:5600", "ipc:///tmp/x.sock"} {
		if err := CheckBind(ep, ""); err != nil {
			t.Errorf("%s refused: %v", ep, err)
		}
	}
	for _, ep := range []string{"tcp://0.0.0.0:5600", "tcp://*:5600", "tcp://10.1.2.3:5600"} {
		if err := CheckBind(ep, ""); !errors.Is(err, ErrInsecureBind) {
			t.Errorf("%s without token: %v", ep, err)
		}
		if err := CheckBind(ep, "tok"); err != nil {
			t.Errorf("%s with token: %v", ep, err)
		}
	}
	if err := CheckBind("nonsense", ""); err == nil {
		t.Error("bad endpoint accepted")
	}
	if _, err := Listen(ServerConfig{Endpoint: "tcp://0.0.0.0:0", Engine: NewEngine(EngineConfig{})}); !errors.Is(err, ErrInsecureBind) {
		t.Errorf("Listen beyond loopback without token: %v", err)
	}
}

func TestMetricsAdminCountsOverHTTP(t *testing.T) {
	stats := HubStats{
		Requests:         map[string]uint64{"REG_REQ": 3, "DISC_REQ": 2},
		Errors:           map[string]uint64{"CHANNEL_NOT_FOUND": 1},
		Notifications:    map[string]uint64{"CHANNEL_CLOSING_NOTIFY": 4},
		ChannelsByStatus: map[string]int{"Ready": 2},
		Consumers:        5, HeartbeatTimeouts: 6, DeadConsumers: 7,
		ChecksumRepairs: map[string]uint64{"repaired": 8, "failed": 9},
	}
	m := NewMetrics(func() HubStats { return stats })
	m.ObserveRequest("REG_REQ", time.Millisecond)
	s := startServer(t, "tok", Limits{}, m)
	good := dialClient(t, s, "tok")
	bad := dialClient(t, s, "no")
	execReply(t, good, "print(1)")
	execReply(t, good, "print(2)")
	execReply(t, good, "fail('x')")
	execReply(t, bad, "print(3)")

	ms, err := ServeMetrics("127.0.0.1:0", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	resp, err := http.Get("http://" + ms.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`plh_admin_requests_total{outcome="ok"} 2`,
		`plh_admin_requests_total{outcome="script_error"} 1`,
		`plh_admin_requests_total{outcome="unauthorized"} 1`,
		`plh_admin_requests_total{outcome="bad_request"} 0`,
		`plh_admin_request_duration_seconds_count 4`,
		`plh_broker_requests_total{type="REG_REQ"} 3`,
		`plh_broker_requests_total{type="DISC_REQ"} 2`,
		`plh_broker_errors_total{code="CHANNEL_NOT_FOUND"} 1`,
		`plh_broker_notifications_sent_total{type="CHANNEL_CLOSING_NOTIFY"} 4`,
		`plh_broker_channels{status="Ready"} 2`,
		"plh_broker_consumers 5",
		"plh_broker_heartbeat_timeouts_total 6",
		"plh_broker_dead_consumers_total 7",
		`plh_broker_checksum_repairs_total{outcome="repaired"} 8`,
		`plh_broker_checksum_repairs_total{outcome="failed"} 9`,
		`plh_broker_request_duration_seconds_count{type="REG_REQ"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestServerPyzmqREQClient(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	s := startServer(t, "tok", Limits{}, nil)
	script := filepath.Join("..", "..", "suites", "admin", "testdata", "req_client.py")
	out, err := exec.Command("/usr/bin/python3", script, s.Endpoint(), "tok", "y = 6", "print(y * 7)", "fail('no')").Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("python client: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], `"output": "42\n"`) || !strings.Contains(lines[2], `"success": false`) {
		t.Fatalf("python client replies:\n%s", out)
	}
}
