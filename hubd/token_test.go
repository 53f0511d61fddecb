package hubd

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pylabhub/plh/hubd/admin"
)

// startTestHub starts a hub on ephemeral loopback ports with the admin keys
// given as JSON (e.g. `"token":"x"`), its runtime directory in a fresh
// XDG_RUNTIME_DIR.
func startTestHub(t *testing.T, adminKeys string) (*Hub, string) {
	t.Helper()
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	cfg, bc := loadTestConfig(t, `{"hub":{"name":"tok","broker_endpoint":"tcp://127.0.0.1:0","admin_endpoint":"tcp://127.0.0.1:0"},
		"admin":{`+adminKeys+`}}`, "")
	h, err := Start(context.Background(), Params{Config: cfg, Broker: bc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, rt
}

func execAdmin(t *testing.T, ep, token, code string) admin.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := admin.DialClient(ctx, ep, token)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Exec(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// With no token configured the hub makes one, keeps it in a 0600 file in
// the runtime directory (named in the ready fields, never the token itself),
// refuses requests without it, and removes the file on Close.
func TestStartGeneratesAdminTokenFile(t *testing.T) {
	h, rt := startTestHub(t, "")
	ready := h.ReadyFields()
	ep, _ := ready["admin_endpoint"].(string)
	path, _ := ready["admin_token_file"].(string)
	if path == "" || !strings.HasPrefix(path, filepath.Join(rt, "plh")+"/") {
		t.Fatalf("ready fields %v: want admin_token_file under %s/plh", ready, rt)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v %v, want mode 0600", path, st, err)
	}
	raw, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(raw))
	if len(token) < 32 {
		t.Fatalf("token %q too short", token)
	}
	for k, v := range ready {
		if s, ok := v.(string); ok && strings.Contains(s, token) {
			t.Fatalf("ready field %s carries the token", k)
		}
	}
	if r := execAdmin(t, ep, "", "print(1)"); r.Success || r.Error != "unauthorized" {
		t.Fatalf("request without token: %+v", r)
	}
	if r := execAdmin(t, ep, token, "print(1)"); !r.Success || r.Output != "1\n" {
		t.Fatalf("request with the file's token: %+v", r)
	}
	h.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("token file left after Close: %v", err)
	}
}

// admin.allow_no_token = true opts out (unsafe): no token, no file.
func TestStartAllowNoToken(t *testing.T) {
	h, rt := startTestHub(t, `"allow_no_token":true`)
	ready := h.ReadyFields()
	if _, ok := ready["admin_token_file"]; ok {
		t.Fatalf("ready fields %v: no token file expected", ready)
	}
	if r := execAdmin(t, ready["admin_endpoint"].(string), "", "print(2)"); !r.Success {
		t.Fatalf("open shell refused: %+v", r)
	}
	if ents, _ := os.ReadDir(filepath.Join(rt, "plh")); len(ents) != 0 {
		t.Fatalf("files written: %v", ents)
	}
}

// A configured token is used as is and no file is written.
func TestStartConfiguredTokenNoFile(t *testing.T) {
	h, rt := startTestHub(t, `"token":"s3cret"`)
	ready := h.ReadyFields()
	if _, ok := ready["admin_token_file"]; ok {
		t.Fatalf("ready fields %v: no token file expected", ready)
	}
	if r := execAdmin(t, ready["admin_endpoint"].(string), "s3cret", "print(3)"); !r.Success {
		t.Fatalf("configured token refused: %+v", r)
	}
	if ents, _ := os.ReadDir(filepath.Join(rt, "plh")); len(ents) != 0 {
		t.Fatalf("files written: %v", ents)
	}
}

// A token file that cannot be written refuses the start (configured endpoint):
// the shell never runs open by accident.
func TestStartTokenFileUnwritable(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", notDir)
	cfg, bc := loadTestConfig(t, `{"hub":{"broker_endpoint":"tcp://127.0.0.1:0","admin_endpoint":"tcp://127.0.0.1:0"}}`, "")
	h, err := Start(context.Background(), Params{Config: cfg, Broker: bc, Logger: slog.New(slog.DiscardHandler)})
	var se *StartError
	if h != nil || !errors.As(err, &se) || se.Op != "admin" || !errors.Is(err, admin.ErrTokenFile) {
		t.Fatalf("Start: %v, %v; want an admin StartError wrapping ErrTokenFile", h, err)
	}
}
