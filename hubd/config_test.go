package hubd

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) string { return "" }

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "hub.default.json", `{"hub":{"name":"a","description":"d"},"broker":{"channel_timeout_s":3}}`)
	writeFile(t, dir, "hub.user.json", `{"hub":{"name":"b"},"extra":{"x":1}}`)
	env := map[string]string{"PYLABHUB_BROKER_ENDPOINT": "tcp://127.0.0.1:7000"}
	c, err := LoadConfig(Sources{ConfigDir: dir, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hub.Name != "b" || c.Hub.Description != "d" || c.Hub.BrokerEndpoint != "tcp://127.0.0.1:7000" ||
		c.ChannelTimeout() != 3*time.Second || c.Hub.AdminEndpoint != "tcp://127.0.0.1:5600" || c.Raw["extra"] == nil {
		t.Fatalf("%+v", c.Hub)
	}
	if len(c.Sources) != 2 {
		t.Fatal(c.Sources)
	}
}

func TestConfigDefaultsAndUID(t *testing.T) {
	c, err := LoadConfig(Sources{ConfigDir: t.TempDir(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hub.BrokerEndpoint != "tcp://0.0.0.0:5570" || c.ConsumerLivenessCheck() != 5*time.Second {
		t.Fatalf("%+v", c)
	}
	if !regexp.MustCompile(`^HUB-MYLABHUB-[0-9A-F]{8}$`).MatchString(GenerateUID("my lab hub")) ||
		!regexp.MustCompile(`^HUB-NODE-`).MatchString(GenerateUID("!!")) {
		t.Fatal(GenerateUID("my lab hub"))
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "x.json", `{"broker":{"channel_timeout_s":"ten"}}`)
	if _, err := LoadConfig(Sources{ExplicitFile: bad, Getenv: noEnv}); !errors.Is(err, ErrConfig) {
		t.Fatalf("wrong type: %v", err)
	}
	notJSON := writeFile(t, dir, "y.json", `nope`)
	if _, err := LoadConfig(Sources{ExplicitFile: notJSON, Getenv: noEnv}); !errors.Is(err, ErrConfig) {
		t.Fatalf("not json: %v", err)
	}
	if _, err := LoadConfig(Sources{ExplicitFile: filepath.Join(dir, "missing"), Getenv: noEnv}); !errors.Is(err, ErrConfig) {
		t.Fatal("missing explicit file accepted")
	}
	// Invalid JSON in config_dir is skipped; a wrong type there is still an error.
	d2 := t.TempDir()
	writeFile(t, d2, "hub.user.json", `{broken`)
	if _, err := LoadConfig(Sources{ConfigDir: d2, Getenv: noEnv}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, d2, "hub.default.json", `{"hub":{"name":7}}`)
	if _, err := LoadConfig(Sources{ConfigDir: d2, Getenv: noEnv}); !errors.Is(err, ErrConfig) {
		t.Fatal("wrong type in config_dir accepted")
	}
}
