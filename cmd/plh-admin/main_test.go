package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pylabhub/plh/hubd/admin"
)

// serveWithTokenFile runs an admin server with a token, kept in the token file
// of its endpoint as plh-hub does, in a fresh XDG_RUNTIME_DIR.
func serveWithTokenFile(t *testing.T) (ep, path string) {
	t.Helper()
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	t.Setenv("PLH_ADMIN_TOKEN", "")
	srv, err := admin.Listen(admin.ServerConfig{Endpoint: "tcp://127.0.0.1:0", Token: "file-token",
		Engine: admin.NewEngine(admin.EngineConfig{HubName: "t"})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	path, err = admin.TokenFile(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.WriteTokenFile(path, "file-token"); err != nil {
		t.Fatal(err)
	}
	return srv.Endpoint(), path
}

func runAdmin(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTokenFromTheEndpointsFile(t *testing.T) {
	ep, path := serveWithTokenFile(t)
	if code, out, errOut := runAdmin("--endpoint", ep, "--exec", "print(6 * 7)"); code != 0 || out != "42\n" {
		t.Fatalf("default token file: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := runAdmin("--endpoint", ep, "--token-file", path, "--exec", "print(1)"); code != 0 || out != "1\n" {
		t.Fatalf("--token-file: %d %q %q", code, out, errOut)
	}
	// An explicit token wins over the file.
	if code, _, errOut := runAdmin("--endpoint", ep, "--token", "wrong", "--exec", "print(1)"); code != 1 || errOut != "unauthorized\n" {
		t.Fatalf("--token wrong: %d %q", code, errOut)
	}
	t.Setenv("PLH_ADMIN_TOKEN", "wrong")
	if code, _, errOut := runAdmin("--endpoint", ep, "--exec", "print(1)"); code != 1 || errOut != "unauthorized\n" {
		t.Fatalf("$PLH_ADMIN_TOKEN wrong: %d %q", code, errOut)
	}
	// A named token file that cannot be read is an error, not a silent no-token.
	t.Setenv("PLH_ADMIN_TOKEN", "")
	missing := filepath.Join(t.TempDir(), "none.token")
	if code, _, errOut := runAdmin("--endpoint", ep, "--token-file", missing, "--exec", "print(1)"); code != 1 || !strings.Contains(errOut, "none.token") {
		t.Fatalf("missing --token-file: %d %q", code, errOut)
	}
}
