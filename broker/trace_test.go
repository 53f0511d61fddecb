package broker

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pylabhub/plh/broker/proto"
)

func TestProtocolTrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.jsonl")
	s := start(t, Config{Trace: TraceConfig{On: true, Path: path}})
	c := dial(t, s)
	c.send(&proto.RegReq{ChannelName: "tr", ProducerPID: 3, Metadata: map[string]any{"token": "hunter2"}})
	c.recv()
	c.send(&proto.DiscReq{ChannelName: "nope"})
	c.recv()
	if st := s.TraceStatus(); !st.On || st.Written != 4 || st.Path != path {
		t.Fatalf("status %+v", st)
	}
	if err := s.SetTrace(TraceConfig{}); err != nil {
		t.Fatal(err)
	}
	c.send(&proto.PingReq{})
	c.recv()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 4 || strings.Contains(text, "hunter2") || strings.Contains(text, "PING") {
		t.Fatalf("trace:\n%s", text)
	}
	for i, want := range []string{`"dir":"in","type":"REG_REQ"`, `"dir":"out","type":"REG_ACK"`, `"dir":"in","type":"DISC_REQ"`, `"error_code":"CHANNEL_NOT_FOUND"`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"side":"broker"`) || !strings.Contains(lines[i], `"correlation_id":"c`) {
			t.Errorf("line %d %s, want %s", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[1], `"elapsed_us":`) || !strings.Contains(lines[2], `"channel":"nope"`) {
		t.Fatalf("reply lines: %s / %s", lines[1], lines[3])
	}
	if err := s.SetTrace(TraceConfig{On: true, Path: filepath.Join(path, "x")}); !errors.Is(err, ErrBadConfig) || s.TraceStatus().On {
		t.Fatalf("bad path: %v", err)
	}
}
