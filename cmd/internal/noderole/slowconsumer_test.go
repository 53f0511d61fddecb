package noderole

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pylabhub/plh/hub"
)

func TestSlowConsumerFlag(t *testing.T) {
	base := []string{"--role", "producer", "--broker", "tcp://127.0.0.1:1", "--channel", "c"}
	for flag, want := range map[string]hub.SlowConsumerPolicy{"": hub.SlowConsumerDrop, "block": hub.SlowConsumerBlock,
		"drop": hub.SlowConsumerDrop, "disconnect": hub.SlowConsumerDisconnect} {
		args := base
		if flag != "" {
			args = append(append([]string(nil), base...), "--slow-consumer", flag)
		}
		o, err := parseFlags(args, io.Discard)
		if err != nil || o.slowConsumer != want {
			t.Errorf("--slow-consumer %q: %q %v, want %q", flag, o.slowConsumer, err, want)
		}
	}
	_, err := parseFlags(append(base, "--slow-consumer", "sometimes"), io.Discard)
	if !errors.Is(err, hub.ErrInvalidArgument) || !strings.Contains(err.Error(), "--slow-consumer") {
		t.Fatalf("bad policy: %v", err)
	}
}
