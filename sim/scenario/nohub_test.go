package scenario

import (
	"errors"
	"strings"
	"testing"
)

const noHub = `
name = "no hub"
duration = "2s"

[hub]
enabled = false

[[producers]]
name = "p"
channel = "cam"

[[consumers]]
name = "c"
channel = "cam"
`

func TestNoHubResolves(t *testing.T) {
	p, err := loadOne(t, noHub)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Hub.Off() || p.Hub.Exit != ExitAny {
		t.Errorf("hub %+v, want off with no exit to judge", p.Hub)
	}
	for _, name := range hubInvariants {
		if p.Invariants[name].Off != noHubReason {
			t.Errorf("invariant %s: %+v, want turned off", name, p.Invariants[name])
		}
	}
	if p.Invariants["consumers_read"].Off != "" {
		t.Error("consumers_read turned off too")
	}
	// Resolved plans round-trip (resolved.toml, replay).
	if !strings.Contains(string(mustEncode(t, p)), "enabled = false") {
		t.Error("resolved plan lost [hub] enabled = false")
	}
	withHub, err := loadOne(t, strings.Replace(noHub, "enabled = false", "enabled = true", 1))
	if err != nil || withHub.Hub.Off() || withHub.Hub.Exit != ExitClean {
		t.Errorf("enabled = true: %+v, %v", withHub.Hub, err)
	}
}

func TestNoHubRefusesWhatNeedsAHub(t *testing.T) {
	cases := map[string]string{
		"other hub key": strings.Replace(noHub, "enabled = false", "enabled = false\nchannel_timeout = \"2s\"", 1),
		"broker_restart": noHub + `
[[faults]]
at = "1s"
kind = "broker_restart"
`,
		"kill the hub": noHub + `
[[faults]]
at = "1s"
kind = "kill"
target = "hub"
`,
		"link fault": noHub + `
[[faults]]
at = "1s"
kind = "link_reset"
target = "c"
`,
		"random broker_restart": noHub + `
[[random_faults]]
kinds = ["broker_restart"]
targets = ["hub"]
count = 1
interval = ["1s"]
`,
		"expectation on the hub": noHub + `
[[expect]]
kind = "ready"
node = "hub"
`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := loadOne(t, body)
			if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), "enabled = false") {
				t.Errorf("%v, want ErrScenario naming [hub] enabled = false", err)
			}
		})
	}
}
