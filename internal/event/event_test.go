package event

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, "c1")
	if err := w.Emit("notification", map[string]any{"type": "CHANNEL_CLOSING_NOTIFY", "channel": "lab.cam"}); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(buf.String())
	ev, err := Decode([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Node != "c1" || ev.Kind != "notification" || ev.T <= 0 || ev.Str("type") != "CHANNEL_CLOSING_NOTIFY" {
		t.Fatalf("decoded %+v from %s", ev, line)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, bad := range []string{``, `[]`, `{"node":"a","kind":"x"}`, `{"t":"1","node":"a","kind":"x"}`,
		`{"t":1,"kind":"x"}`, `{"t":1,"node":"a","kind":""}`, `{"t":1,"node":"a"`} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrBadEvent) {
			t.Errorf("Decode(%q) = %v, want ErrBadEvent", bad, err)
		}
	}
}

func TestConcurrentLinesDoNotInterleave(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, "p")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_ = w.Emit("written", map[string]any{"count": j})
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if _, err := Decode([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
}
