package hubd

import (
	"fmt"
	"path/filepath"
)

// This file holds the configuration keys of the admin shell and metrics
// (hubd/admin, docs/operations.md) that spec/api.md §9 does not list. They are
// read from Raw, so the layered loading above applies to them unchanged.

// AdminSettings are the admin shell's and metrics' own keys.
type AdminSettings struct {
	// StartupScript is admin.startup_script, else python.startup_script (the
	// original's key), resolved against ConfigDir; "" = none.
	StartupScript string
	// MetricsListen is metrics.listen (host:port); "" = no metrics server.
	MetricsListen string
	// AllowNoToken is admin.allow_no_token: with no admin.token, serve the
	// shell without authentication instead of generating a token (unsafe).
	AllowNoToken bool
}

// AdminSettings reads the admin keys; a key of the wrong JSON type is an
// ErrConfig naming it.
func (c *Config) AdminSettings() (AdminSettings, error) {
	var s AdminSettings
	script, err := rawString(c.Raw, "admin", "startup_script")
	if err != nil {
		return s, err
	}
	if script == "" && c.Python.StartupScript != nil {
		script = *c.Python.StartupScript
	}
	if script != "" && !filepath.IsAbs(script) && c.ConfigDir != "" {
		script = filepath.Join(c.ConfigDir, script)
	}
	s.StartupScript = script
	if s.MetricsListen, err = rawString(c.Raw, "metrics", "listen"); err != nil {
		return s, err
	}
	if s.AllowNoToken, err = rawValue[bool](c.Raw, "admin", "allow_no_token", "a boolean"); err != nil {
		return s, err
	}
	return s, nil
}

// rawString returns Raw[section][key] as a string ("" when absent or null).
func rawString(raw map[string]any, section, key string) (string, error) {
	return rawValue[string](raw, section, key, "a string")
}

// rawValue returns Raw[section][key] as a T (the zero T when absent or null);
// what names T in the error.
func rawValue[T any](raw map[string]any, section, key, what string) (T, error) {
	var zero T
	sec, ok := raw[section]
	if !ok || sec == nil {
		return zero, nil
	}
	m, ok := sec.(map[string]any)
	if !ok {
		return zero, fmt.Errorf("%w: key %q: JSON %T where an object expected", ErrConfig, section, sec)
	}
	v, ok := m[key]
	if !ok || v == nil {
		return zero, nil
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("%w: key %q: JSON %T where %s expected", ErrConfig, section+"."+key, v, what)
	}
	return t, nil
}
