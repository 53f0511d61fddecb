package admin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// This file keeps the admin token a hub generates when none is configured
// (docs/operations.md, as Jupyter does): a 0600 file in the user's runtime
// directory, named after the endpoint the shell is bound to. An endpoint is held
// by one process at a time, so two hubs never share a file, and plh-admin finds
// the file from the endpoint alone.

// GenerateToken returns a random token: 32 bytes from crypto/rand, in hex.
func GenerateToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// RuntimeDir returns the directory of token files: $XDG_RUNTIME_DIR/plh, else
// ~/.local/share/plh/runtime (Jupyter's fallback).
func RuntimeDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "plh"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: neither XDG_RUNTIME_DIR nor a home directory: %v", ErrTokenFile, err)
	}
	return filepath.Join(home, ".local", "share", "plh", "runtime"), nil
}

// TokenFile returns the token file of the admin endpoint ep:
// RuntimeDir()/admin-<ep as a file name>.token, e.g.
// admin-tcp-127.0.0.1-5600.token for tcp://127.0.0.1:5600 (localhost is
// spelled 127.0.0.1, as the hub reports its bound endpoint).
func TokenFile(ep string) (string, error) {
	dir, err := RuntimeDir()
	if err != nil {
		return "", err
	}
	ep = strings.Replace(ep, "://localhost:", "://127.0.0.1:", 1)
	var b strings.Builder
	dash := false
	for _, r := range ep {
		ok := r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	return filepath.Join(dir, "admin-"+name+".token"), nil
}

// WriteTokenFile writes token to path with mode 0600, creating its directory
// with mode 0700. The directory must belong to this user and be closed to
// others (a group/other-accessible one of ours is tightened); the file is
// replaced atomically.
func WriteTokenFile(path, token string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrTokenFile, err)
	}
	if err := privateDir(dir); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".admin-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTokenFile, err)
	}
	_, werr := tmp.WriteString(token + "\n")
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("%w: %v", ErrTokenFile, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("%w: %v", ErrTokenFile, err)
	}
	return nil
}

// privateDir checks that dir is a directory of this user, not a symlink, and
// makes it 0700.
func privateDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTokenFile, err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: %s is not a directory owned by this user", ErrTokenFile, dir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%w: %v", ErrTokenFile, err)
		}
	}
	return nil
}

// ReadTokenFile returns the token kept in path.
func ReadTokenFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrTokenFile, err)
	}
	tok := strings.TrimSpace(string(raw))
	if tok == "" {
		return "", fmt.Errorf("%w: %s is empty", ErrTokenFile, path)
	}
	return tok, nil
}

// RemoveTokenFile removes path if it still holds token (a later hub on the
// same endpoint may have replaced it).
func RemoveTokenFile(path, token string) error {
	if tok, err := ReadTokenFile(path); err != nil || tok != token {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %v", ErrTokenFile, err)
	}
	return nil
}
