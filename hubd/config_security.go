package hubd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pylabhub/plh/internal/wire/curve"
)

// This file holds the CURVE keys of the hub configuration (docs/security.md):
// broker.use_curve, security.curve_keys_dir, security.allowed_clients, and their
// environment overrides PYLABHUB_USE_CURVE and PYLABHUB_CURVE_KEYS_DIR.

// ClientKeys is security.allowed_clients: either a JSON list of Z85 client
// public keys, or a string naming a file with one key per line (blank lines and
// lines starting with # are ignored; a relative name is resolved against
// config_dir). null or [] = no allowlist (any client knowing the server key).
type ClientKeys struct {
	Keys []string // inline keys
	File string   // key file name, as written in the configuration
}

// UnmarshalJSON accepts null, a list of strings or a string.
func (k *ClientKeys) UnmarshalJSON(b []byte) error {
	*k = ClientKeys{}
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &k.File)
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &k.Keys); err == nil {
			return nil
		}
	}
	return fmt.Errorf("key %q: want a list of Z85 keys or a file name, got %.40s", "security.allowed_clients", b)
}

// MarshalJSON writes the form it was read in (plh.config() shows it).
func (k ClientKeys) MarshalJSON() ([]byte, error) {
	switch {
	case k.File != "":
		return json.Marshal(k.File)
	case k.Keys != nil:
		return json.Marshal(k.Keys)
	}
	return []byte("null"), nil
}

// CurveKeysDir returns security.curve_keys_dir resolved against ConfigDir ("" = none).
func (c *Config) CurveKeysDir() string {
	if c.Security.CurveKeysDir == nil || *c.Security.CurveKeysDir == "" {
		return ""
	}
	d := *c.Security.CurveKeysDir
	if !filepath.IsAbs(d) && c.ConfigDir != "" {
		d = filepath.Join(c.ConfigDir, d)
	}
	return d
}

// AllowedClients parses security.allowed_clients (reading the file if it names
// one). A malformed key or an unreadable file is an ErrConfig naming it.
func (c *Config) AllowedClients() ([]curve.PublicKey, error) {
	ak := c.Security.AllowedClients
	lines, where := ak.Keys, "security.allowed_clients"
	if ak.File != "" {
		path := ak.File
		if !filepath.IsAbs(path) && c.ConfigDir != "" {
			path = filepath.Join(c.ConfigDir, path)
		}
		where = path
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: security.allowed_clients: %v", ErrConfig, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
	}
	keys := make([]curve.PublicKey, 0, len(lines))
	for i, l := range lines {
		k, err := curve.ParsePublicKey(strings.TrimSpace(l))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %d: %v", ErrConfig, where, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// securityEnv applies PYLABHUB_USE_CURVE (true/false/1/0) and
// PYLABHUB_CURVE_KEYS_DIR to the merged layers.
func securityEnv(merged map[string]any, getenv func(string) string) error {
	section := func(name string) map[string]any {
		m, _ := merged[name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			merged[name] = m
		}
		return m
	}
	if v := getenv("PYLABHUB_USE_CURVE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%w: PYLABHUB_USE_CURVE=%q: want true or false", ErrConfig, v)
		}
		section("broker")["use_curve"] = b
	}
	if v := getenv("PYLABHUB_CURVE_KEYS_DIR"); v != "" {
		section("security")["curve_keys_dir"] = v
	}
	return nil
}
