package hubd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hubd/admin"
	"github.com/pylabhub/plh/internal/wire/wiretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, wiretest.GoleakIgnores()...) }

// loadTestConfig writes body as the explicit config file (with start.star
// beside it holding script) and loads it without CURVE.
func loadTestConfig(t *testing.T, body, script string) (*Config, broker.Config) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "start.star", script)
	cfg, err := LoadConfig(Sources{ExplicitFile: writeFile(t, dir, "hub.json", body), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	bc := cfg.BrokerConfig(slog.New(slog.DiscardHandler))
	bc.Curve = broker.CurveConfig{Disabled: true}
	return cfg, bc
}

func TestStartRunsBrokerShellScriptAndMetrics(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // the generated admin token's file
	cfg, bc := loadTestConfig(t, `{"hub":{"name":"h1","broker_endpoint":"tcp://127.0.0.1:0","admin_endpoint":"tcp://127.0.0.1:0"},
		"admin":{"startup_script":"start.star"},"metrics":{"listen":"127.0.0.1:0"}}`, `greeting = "from startup"`+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shutdown := make(chan struct{}, 1)
	h, err := Start(ctx, Params{Config: cfg, Broker: bc, Logger: slog.New(slog.DiscardHandler),
		Shutdown: func() { shutdown <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !strings.HasPrefix(h.Broker().Endpoint(), "tcp://127.0.0.1:") {
		t.Fatalf("broker endpoint %q", h.Broker().Endpoint())
	}
	ready := h.ReadyFields()
	ep, _ := ready["admin_endpoint"].(string)
	addr, _ := ready["metrics_addr"].(string)
	if ep == "" || addr == "" {
		t.Fatalf("ready fields %v: want admin_endpoint and metrics_addr", ready)
	}

	token, err := admin.ReadTokenFile(ready["admin_token_file"].(string))
	if err != nil {
		t.Fatal(err)
	}
	c, err := admin.DialClient(ctx, ep, token)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The startup script ran in the engine the endpoint serves.
	if r, err := c.Exec(ctx, "print(greeting, plh.hub_name())"); err != nil || !r.Success || r.Output != "from startup h1\n" {
		t.Fatalf("exec: %+v %v", r, err)
	}
	if r, err := c.Exec(ctx, "plh.shutdown()"); err != nil || !r.Success {
		t.Fatalf("shutdown: %+v %v", r, err)
	}
	select {
	case <-shutdown:
	case <-ctx.Done():
		t.Fatal("plh.shutdown() did not reach Params.Shutdown")
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("metrics: %d %q", resp.StatusCode, body)
	}
	h.Close()
	h.Close() // idempotent
}

func TestStartFailuresNameThePartAndLeaveNothing(t *testing.T) {
	for name, tc := range map[string]struct{ body, script, op, want string }{
		"script fails": {`{"hub":{"broker_endpoint":"tcp://127.0.0.1:0","admin_endpoint":"tcp://127.0.0.1:0"},
			"admin":{"startup_script":"start.star"},"metrics":{"listen":"127.0.0.1:0"}}`, "fail(\"no\")\n", "admin", "startup script"},
		"remote admin without token": {`{"hub":{"broker_endpoint":"tcp://127.0.0.1:0","admin_endpoint":"tcp://0.0.0.0:0"}}`, "", "admin", "hub.admin_endpoint"},
		"broker cannot bind":         {`{"hub":{"broker_endpoint":"bogus://x","admin_endpoint":""}}`, "", "broker", "bogus"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, bc := loadTestConfig(t, tc.body, tc.script)
			h, err := Start(context.Background(), Params{Config: cfg, Broker: bc, Logger: slog.New(slog.DiscardHandler)})
			var se *StartError
			if h != nil || !errors.As(err, &se) || se.Op != tc.op || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, %v; want *StartError op %q containing %q", h, err, tc.op, tc.want)
			}
			// goleak (TestMain) proves nothing was left running.
		})
	}
	var h *Hub
	h.Close() // nil-safe
}

func TestBrokerConfigMapsKeys(t *testing.T) {
	cfg, err := LoadConfig(Sources{ExplicitFile: writeFile(t, t.TempDir(), "hub.json",
		`{"hub":{"broker_endpoint":"tcp://127.0.0.1:7"},"broker":{"channel_timeout_s":0,"consumer_timeout_s":2,
		"checksum_repair_policy":"NotifyOnly","max_frame_bytes":4096,"peer_queue":8}}`), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	bc := cfg.BrokerConfig(nil)
	if bc.Endpoint != "tcp://127.0.0.1:7" || bc.ChannelTimeout != -1 || bc.ConsumerTimeout != 2*time.Second ||
		bc.LivenessInterval != 5*time.Second || bc.Checksum != broker.ChecksumNotifyOnly ||
		bc.Wire.MaxFrame != 4096 || bc.Wire.PeerQueue != 8 {
		t.Fatalf("%+v", bc)
	}
}

func TestBrokerConfigMapsTraceKeys(t *testing.T) {
	cfg, err := LoadConfig(Sources{ExplicitFile: writeFile(t, t.TempDir(), "hub.json",
		`{"broker":{"trace":true,"trace_path":"/tmp/plh-trace.jsonl","trace_max_bytes":4096}}`), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if tc := cfg.BrokerConfig(nil).Trace; tc != (broker.TraceConfig{On: true, Path: "/tmp/plh-trace.jsonl", MaxBytes: 4096}) {
		t.Fatalf("%+v", tc)
	}
	def, err := LoadConfig(Sources{Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if tc := def.BrokerConfig(nil).Trace; tc.On || tc.Path != "" {
		t.Fatalf("default %+v", tc)
	}
}
