package hubd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker"
)

// The built-in defaults are the broker's own (docs/config.md lists them once).
func TestLimitsDefaultsAreTheBrokers(t *testing.T) {
	c, err := LoadConfig(Sources{ConfigDir: t.TempDir(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.BrokerConfig(nil).Limits, broker.DefaultLimits(); got != want {
		t.Fatalf("limits %+v, want the broker's defaults %+v", got, want)
	}
}

// A file sets limits, the environment overrides it, negative removes a limit
// and 0 takes the broker's default.
func TestLimitsFromFileAndEnv(t *testing.T) {
	f := writeFile(t, t.TempDir(), "hub.json", `{"broker":{"max_channels":3,"max_consumers_per_channel":-1,
		"max_name_bytes":0,"max_metadata_bytes":100,"max_field_bytes":50,"max_body_bytes":2048,
		"list_page":10,"list_page_bytes":4096,"stale_consumer_age_s":1.5}}`)
	env := map[string]string{"PYLABHUB_BROKER_MAX_METADATA_BYTES": "200", "PYLABHUB_BROKER_STALE_CONSUMER_AGE_S": "0"}
	c, err := LoadConfig(Sources{ExplicitFile: f, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	want := broker.Limits{MaxChannels: 3, MaxConsumersPerChannel: -1, MaxNameBytes: 0, MaxMetadataBytes: 200,
		MaxFieldBytes: 50, MaxBodyBytes: 2048, ListPage: 10, ListPageBytes: 4096, StaleConsumerAge: -1}
	if got := c.BrokerConfig(nil).Limits; got != want {
		t.Fatalf("limits %+v, want %+v", got, want)
	}
	delete(env, "PYLABHUB_BROKER_STALE_CONSUMER_AGE_S")
	c, err = LoadConfig(Sources{ExplicitFile: f, Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BrokerConfig(nil).Limits.StaleConsumerAge; got != 1500*time.Millisecond {
		t.Fatalf("stale_consumer_age_s 1.5 gave %v", got)
	}
}

func TestLimitsBadValues(t *testing.T) {
	for _, env := range []map[string]string{
		{"PYLABHUB_BROKER_MAX_CHANNELS": "many"},
		{"PYLABHUB_BROKER_LIST_PAGE": "1.5"},
		{"PYLABHUB_BROKER_STALE_CONSUMER_AGE_S": "1h"},
	} {
		_, err := LoadConfig(Sources{ConfigDir: t.TempDir(), Getenv: func(k string) string { return env[k] }})
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("%v: %v, want ErrConfig", env, err)
		}
		for k := range env {
			if err == nil || !strings.Contains(err.Error(), k) {
				t.Fatalf("error %v does not name %s", err, k)
			}
		}
	}
	f := writeFile(t, t.TempDir(), "hub.json", `{"broker":{"max_channels":"ten"}}`)
	if _, err := LoadConfig(Sources{ExplicitFile: f, Getenv: noEnv}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "max_channels") {
		t.Fatalf("a string limit: %v", err)
	}
}
