package admin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTokenFileNamedAfterEndpoint(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	for ep, want := range map[string]string{
		"tcp://127.0.0.1:5600": "admin-tcp-127.0.0.1-5600.token",
		"tcp://localhost:5600": "admin-tcp-127.0.0.1-5600.token",
		"tcp://[::1]:7":        "admin-tcp-1-7.token",
		"ipc:///run/a b.sock":  "admin-ipc-run-a-b.sock.token",
	} {
		got, err := TokenFile(ep)
		if err != nil || got != filepath.Join(rt, "plh", want) {
			t.Errorf("TokenFile(%q) = %q, %v; want %s", ep, got, err, want)
		}
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("HOME", "/home/u")
	if got, _ := TokenFile(DefaultEndpoint); got != "/home/u/.local/share/plh/runtime/admin-tcp-127.0.0.1-5600.token" {
		t.Errorf("fallback: %q", got)
	}
}

func TestWriteReadRemoveTokenFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plh")
	path := filepath.Join(dir, "admin-x.token")
	if err := WriteTokenFile(path, "tok1"); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v %v, want %o", p, st, err, mode)
		}
	}
	if tok, err := ReadTokenFile(path); err != nil || tok != "tok1" {
		t.Fatalf("read: %q %v", tok, err)
	}
	// A directory open to others is tightened; the file replaced atomically.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteTokenFile(path, "tok2"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %o", st.Mode().Perm())
	}
	// Removing with another token leaves the file (a later hub's).
	if err := RemoveTokenFile(path, "tok1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal("file of another token removed")
	}
	if err := RemoveTokenFile(path, "tok2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file kept: %v", err)
	}
	if _, err := ReadTokenFile(path); !errors.Is(err, ErrTokenFile) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read missing: %v", err)
	}
}

func TestWriteTokenFileRefusesSymlinkedDir(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "elsewhere")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "plh")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteTokenFile(filepath.Join(link, "admin-x.token"), "t"); !errors.Is(err, ErrTokenFile) {
		t.Fatalf("symlinked dir accepted: %v", err)
	}
	if err := os.WriteFile(filepath.Join(base, "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTokenFile(filepath.Join(base, "empty")); !errors.Is(err, ErrTokenFile) {
		t.Fatalf("empty file accepted: %v", err)
	}
}
