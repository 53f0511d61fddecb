package hubd

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pylabhub/plh/internal/wire/curve"
)

func TestConfigCurveKeys(t *testing.T) {
	kp, err := curve.GenerateKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	key := kp.Public.String()
	dir := t.TempDir()

	c, err := LoadConfig(Sources{ConfigDir: t.TempDir(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Broker.UseCurve || c.CurveKeysDir() != "" {
		t.Fatalf("defaults: use_curve %v keys dir %q", c.Broker.UseCurve, c.CurveKeysDir())
	}
	if a, err := c.AllowedClients(); err != nil || len(a) != 0 {
		t.Fatalf("default allowlist %v %v", a, err)
	}

	f := writeFile(t, dir, "hub.json", `{"broker":{"use_curve":false},"security":{"curve_keys_dir":"keys","allowed_clients":["`+key+`"]}}`)
	c, err = LoadConfig(Sources{ExplicitFile: f, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.AllowedClients()
	if c.Broker.UseCurve || c.CurveKeysDir() != filepath.Join(dir, "keys") || err != nil || len(a) != 1 || a[0] != kp.Public {
		t.Fatalf("inline: use_curve %v dir %q allow %v %v", c.Broker.UseCurve, c.CurveKeysDir(), a, err)
	}

	writeFile(t, dir, "clients.txt", "# lab clients\n\n"+key+"\n")
	f = writeFile(t, dir, "hub2.json", `{"broker":{"use_curve":false},"security":{"allowed_clients":"clients.txt"}}`)
	env := map[string]string{"PYLABHUB_USE_CURVE": "true", "PYLABHUB_CURVE_KEYS_DIR": "/k"}
	c, err = LoadConfig(Sources{ExplicitFile: f, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	a, err = c.AllowedClients()
	if !c.Broker.UseCurve || c.CurveKeysDir() != "/k" || err != nil || len(a) != 1 || a[0] != kp.Public {
		t.Fatalf("file+env: use_curve %v dir %q allow %v %v", c.Broker.UseCurve, c.CurveKeysDir(), a, err)
	}
}

func TestConfigCurveRefusals(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"allowlist of numbers": `{"security":{"allowed_clients":[1,2]}}`,
		"allowlist object":     `{"security":{"allowed_clients":{"a":1}}}`,
		"use_curve string":     `{"broker":{"use_curve":"yes"}}`,
	} {
		f := writeFile(t, dir, "bad.json", body)
		if _, err := LoadConfig(Sources{ExplicitFile: f, Getenv: noEnv}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
	env := map[string]string{"PYLABHUB_USE_CURVE": "maybe"}
	if _, err := LoadConfig(Sources{ConfigDir: dir, Getenv: func(k string) string { return env[k] }}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "PYLABHUB_USE_CURVE") {
		t.Errorf("bad env: %v", err)
	}
	for name, body := range map[string]string{
		"short key":    `{"security":{"allowed_clients":["abc"]}}`,
		"missing file": `{"security":{"allowed_clients":"nope.txt"}}`,
	} {
		f := writeFile(t, dir, "hub.json", body)
		c, err := LoadConfig(Sources{ExplicitFile: f, Getenv: noEnv})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AllowedClients(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: AllowedClients err %v, want ErrConfig", name, err)
		}
	}
}
