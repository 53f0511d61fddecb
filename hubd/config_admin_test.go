package hubd

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestAdminSettings(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "hub.json", `{"admin": {"token": "t", "startup_script": "start.star"}, "metrics": {"listen": "127.0.0.1:0"}}`)
	cfg, err := LoadConfig(Sources{ExplicitFile: path, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	s, err := cfg.AdminSettings()
	if err != nil {
		t.Fatal(err)
	}
	if s.StartupScript != filepath.Join(cfg.ConfigDir, "start.star") || s.MetricsListen != "127.0.0.1:0" || s.AllowNoToken {
		t.Fatalf("settings %+v (config dir %q)", s, cfg.ConfigDir)
	}

	path = writeFile(t, dir, "py.json", `{"python": {"startup_script": "/abs/s.star"}}`)
	cfg, err = LoadConfig(Sources{ExplicitFile: path, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := cfg.AdminSettings(); err != nil || s.StartupScript != "/abs/s.star" || s.MetricsListen != "" {
		t.Fatalf("python.startup_script fallback: %+v %v", s, err)
	}

	for _, body := range []string{`{"metrics": {"listen": 9090}}`, `{"metrics": 1}`, `{"admin": {"startup_script": true}}`,
		`{"admin": {"allow_no_token": "yes"}}`} {
		path = writeFile(t, dir, "bad.json", body)
		cfg, err = LoadConfig(Sources{ExplicitFile: path, Getenv: noEnv})
		if err != nil {
			continue // refused by the loader already
		}
		if _, err := cfg.AdminSettings(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", body, err)
		}
	}
}
