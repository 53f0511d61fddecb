package admin

import (
	"context"
	"testing"
	"time"
)

// FuzzHandle feeds arbitrary request bytes (and, through valid envelopes,
// arbitrary code) to the handler: every input gets a reply, never a panic or a
// hang.
func FuzzHandle(f *testing.F) {
	for _, s := range []string{
		`{"code": "print(1)"}`, `{"token": "t", "code": "x = 1"}`, `{"code": ":channels"}`,
		`{"code": "while True:\n  pass"}`, `{"code": "'a' * 100000000"}`, `not json`, `[]`,
		`{"code": "l = [1]\nfor i in range(99):\n  l += l"}`, `{"code": "plh.close('x')"}`,
	} {
		f.Add([]byte(s))
	}
	e := NewEngine(EngineConfig{HubName: "fuzz", Limits: Limits{MaxSteps: 20_000, Timeout: 200 * time.Millisecond, MaxValueLen: 1 << 16, MaxOutput: 4096}})
	h := NewHandler(e, nil, "", nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, o := h.Handle(context.Background(), raw)
		if o == OutcomeOK != r.Success {
			t.Fatalf("outcome %s but success %v", o, r.Success)
		}
		if !r.Success && r.Error == "" {
			t.Fatalf("failure without error text: %+v", r)
		}
		e.Reset()
	})
}
