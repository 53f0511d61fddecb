package nodeevent

import (
	"errors"
	"testing"
)

func TestParseEnv(t *testing.T) {
	vars := map[string]string{"PLH_NAME": "c1", "PLH_ROLE": "consumer", "PLH_BROKER": "tcp://127.0.0.1:5", "PLH_CHANNEL": "plh_x",
		"PLH_SHM": "false", "PLH_RATE": "200", "PLH_COUNT": "7", "PLH_SECRET": "99"}
	e, err := parseEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "c1" || e.Rate != 200 || e.Messages != 7 || e.Secret != 99 || e.Shm {
		t.Fatalf("parsed %+v", e)
	}
	vars["PLH_RATE"] = "fast"
	if _, err := parseEnv(func(k string) string { return vars[k] }); !errors.Is(err, ErrEnv) {
		t.Fatalf("bad rate: %v", err)
	}
	delete(vars, "PLH_BROKER")
	vars["PLH_RATE"] = "1"
	if _, err := parseEnv(func(k string) string { return vars[k] }); !errors.Is(err, ErrEnv) {
		t.Fatalf("no broker: %v", err)
	}
}
