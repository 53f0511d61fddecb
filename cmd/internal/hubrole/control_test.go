package hubrole_test

import (
	"bufio"
	"context"
	"io"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pylabhub/plh/cmd/internal/hubrole"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/wire/wiretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, wiretest.GoleakIgnores()...) }

// With --control the hub answers {"cmd":"snapshot"} with a registry event and
// {"cmd":"stats"} with a stats event carrying its goroutines; an unknown
// command is an error event (op control), and the hub keeps running.
func TestControlSnapshotAndStats(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- hubrole.MainIO(ctx, []string{"--endpoint", "tcp://127.0.0.1:0", "--no-curve", "--control",
			"--stats-interval", "0"}, inR, outW, io.Discard)
		outW.Close()
	}()
	events := make(chan event.Event, 64)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if ev, err := event.Decode(sc.Bytes()); err == nil {
				events <- ev
			}
		}
		close(events)
	}()
	next := func(kind string) event.Event {
		t.Helper()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("event stream ended before %s", kind)
				}
				if ev.Kind == kind {
					return ev
				}
			case <-ctx.Done():
				t.Fatalf("no %s event", kind)
			}
		}
	}
	next("ready")
	for _, l := range []string{`{"cmd":"snapshot"}`, `{"cmd":"stats"}`, `{"cmd":"explode"}`} {
		if _, err := io.WriteString(inW, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	reg := next("registry")
	if chans, ok := reg.Fields["channels"].([]any); !ok || len(chans) != 0 {
		t.Errorf("registry of an empty hub: %+v", reg.Fields)
	}
	st := next("stats")
	if g, ok := st.Num("goroutines"); !ok || g < 1 {
		t.Errorf("stats %+v", st.Fields)
	}
	if e := next("error"); e.Str("op") != "control" {
		t.Errorf("unknown command: %+v", e.Fields)
	}
	cancel()
	inW.Close()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
	for range events {
	}
}
