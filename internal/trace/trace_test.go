package trace

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ctl(typ, body string) [][]byte { return [][]byte{{'C'}, []byte(typ), []byte(body)} }

func records(t *testing.T, path string) []Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestTraceFilePairsAndHidesBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.jsonl")
	tr := New("messenger")
	tr.Message(Out, []byte("ep"), ctl("PING_REQ", `{}`)) // off: nothing
	if err := tr.Set(true, Config{Path: path}); err != nil {
		t.Fatal(err)
	}
	tr.Message(Out, []byte("ep"), ctl("REG_REQ", `{"correlation_id":"7","channel_name":"cam","metadata":{"secret":"hunter2"}}`))
	tr.Message(In, []byte("ep"), ctl("ERROR", `{"correlation_id":"7","error_code":"SCHEMA_MISMATCH"}`))
	tr.Message(In, []byte{0, 1}, [][]byte{{'A'}, []byte("data")})
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr.Message(Out, []byte("ep"), ctl("PING_REQ", `{}`)) // off again
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), "metadata") {
		t.Fatalf("a body reached the trace: %s", raw)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	rs := records(t, path)
	if len(rs) != 3 {
		t.Fatalf("%d records: %s", len(rs), raw)
	}
	if r := rs[0]; r.Side != "messenger" || r.Dir != Out || r.Type != "REG_REQ" || r.CorrelationID != "7" || r.Channel != "cam" || r.Peer != "ep" || r.Size == 0 || r.ElapsedUS != nil {
		t.Fatalf("request %+v", r)
	}
	if r := rs[1]; r.Type != "ERROR" || r.ErrorCode != "SCHEMA_MISMATCH" || r.ElapsedUS == nil || *r.ElapsedUS < 0 {
		t.Fatalf("reply %+v", r)
	}
	if r := rs[2]; r.Type != "(not control)" || r.Peer != "0001" || r.Size != 5 {
		t.Fatalf("data %+v", r)
	}
}

func TestTraceBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.jsonl")
	tr := New("broker")
	if err := tr.Set(true, Config{Path: path, MaxBytes: 2000}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		tr.Message(In, []byte("p"), ctl("HEARTBEAT_REQ", `{"channel_name":"c"}`))
	}
	st := tr.Status()
	if st.Written != 100 || st.Rotated == 0 {
		t.Fatalf("status %+v", st)
	}
	for _, p := range []string{path, path + ".1"} {
		if fi, err := os.Stat(p); err != nil || fi.Size() > 2000 {
			t.Fatalf("%s: %v %v", p, fi.Size(), err)
		}
	}
	if err := tr.Set(true, Config{Path: path, MaxRate: 10}); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		tr.Message(In, []byte("p"), ctl("HEARTBEAT_REQ", `{"channel_name":"c"}`))
	}
	if st := tr.Status(); st.Dropped == 0 || st.Written < 100+10 || st.Written > 100+20 {
		t.Fatalf("rate: %+v", st)
	}
	tr.Close()
	if err := tr.Set(true, Config{Path: filepath.Join(t.TempDir(), "no", "such", "dir")}); !errors.Is(err, ErrTrace) || tr.On() {
		t.Fatalf("bad path: %v, on %v", err, tr.On())
	}
}
