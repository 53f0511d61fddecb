package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

const ms = int64(1e6)

// fixture is a small run: hub, a producer p and consumers c1, c2; c1 killed
// at 1 s, c2 paused at 4 s; one verdict of each status.
func fixture() (*scenario.Plan, *verdict.Report, []event.Event) {
	p := &scenario.Plan{Name: "synth", Nodes: []scenario.PlanNode{
		{Role: "producer", NodeSpec: scenario.NodeSpec{Name: "p", Channel: "cam"}},
		{Role: "consumer", NodeSpec: scenario.NodeSpec{Name: "c1", Channel: "cam"}},
		{Role: "consumer", NodeSpec: scenario.NodeSpec{Name: "c2", Channel: "cam"}},
	}}
	t0 := 1000 * ms
	ev := func(off int64, node, kind string, kv ...any) event.Event {
		f := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			f[kv[i].(string)] = kv[i+1]
		}
		return event.Event{T: t0 + off*ms, Node: node, Kind: kind, Fields: f}
	}
	en := scenario.EngineName
	evs := []event.Event{
		ev(-600, en, "spawned", "target", scenario.HubName, "pid", 9.0),
		ev(-500, en, "spawned", "target", "p", "pid", 10.0),
		ev(0, en, "run_start"),
		ev(100, "p", "written", "count", 100.0),
		ev(200, "p", "backpressure_stall", "duration_ns", 2e6),
		ev(300, "c2", "read", "count", 50.0),
		ev(1000, en, "fault", "id", "kill", "fault", "kill", "target", "c1"),
		ev(1200, "p", "notification", "type", "CONSUMER_DIED_NOTIFY"),
		ev(4000, en, "fault", "id", "later", "fault", "pause", "target", "c2", "detail", `<script>x</script>`),
		ev(4100, en, "fault_end", "id", "later"),
		ev(4200, en, scenario.KindLockReclaimed, "target", "c2", "how", "reclaim-marker-on-c2-lane"),
		ev(5000, en, "run_end"),
		ev(5101, en, "process_end", "target", "p", "code", 0.0),
	}
	rep := &verdict.Report{Name: "synth", Status: verdict.StatusFail, ExitCode: verdict.ExitFail, T0: t0, End: t0 + 5000*ms,
		Faults: []verdict.FaultResult{{ID: "kill", Fired: true}, {ID: "never", Error: "not running"}},
		Expectations: []verdict.Verdict{
			{Name: "died", Status: verdict.StatusPass},
			{Name: "no closing", Status: verdict.StatusFail, Message: "1 notification", Evidence: evs[7:8]},
			{Name: "after never", Status: verdict.StatusInconclusive},
		}}
	return p, rep, evs
}

func TestJUnit(t *testing.T) {
	_, rep, _ := fixture()
	b, err := JUnit(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Suites[0]
	// 3 expectations + 1 fault that could not fire.
	if doc.Failures != 1 || s.Tests != 4 || s.Skipped != 2 || !strings.Contains(string(b), "CONSUMER_DIED_NOTIFY") {
		t.Errorf("junit failures %d tests %d skipped %d:\n%s", doc.Failures, s.Tests, s.Skipped, b)
	}
}

func TestTimelineRendering(t *testing.T) {
	p, rep, evs := fixture()
	var buf bytes.Buffer
	if err := RenderTimeline(&buf, p, rep, evs); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{"<svg", "</svg>", ">c1</text>", ">c2</text>", ">hub</text>", "⚡kill", "⚡later",
		"CONSUMER_DIED_NOTIFY", "throughput", "stalls (1)", "died", "reclaim-marker-on-c2-lane"} {
		if !strings.Contains(s, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(s, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("timeline contains %q (must be self-contained and escaped)", bad)
		}
	}
}

// TestRunFolderFiles: the whole report set writes and the events read back.
func TestRunFolderFiles(t *testing.T) {
	p, rep, evs := fixture()
	p.Duration, p.Source, p.Seed = scenario.Duration(5e9), "scenarios/x.toml", 3
	dir := t.TempDir()
	if err := WriteStatic(dir, p); err != nil {
		t.Fatal(err)
	}
	if err := WriteEvents(filepath.Join(dir, EventsFile), evs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadEvents(filepath.Join(dir, EventsFile))
	if err != nil || len(back) != len(evs) {
		t.Fatalf("read back %d events, %v", len(back), err)
	}
	if err := WriteReports(dir, p, rep, back); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ResolvedFile, ReplayFile, ResultsFile, JUnitFile, TimelineFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := scenario.LoadPlan(filepath.Join(dir, ResolvedFile)); err != nil {
		t.Errorf("resolved.toml does not load back: %v", err)
	}
	if err := WriteEvents(filepath.Join(dir, "missing", EventsFile), evs); !errors.Is(err, ErrWrite) {
		t.Errorf("writing into a missing folder: %v, want ErrWrite", err)
	}
}

// TestTimelineResourceStrip: the hub's sampled descriptors and goroutines are
// lines of the resource strip, its marked samples dots with their event.
func TestTimelineResourceStrip(t *testing.T) {
	p, rep, evs := fixture()
	evs = append(evs,
		event.Event{T: rep.T0, Node: scenario.HubName, Kind: "resource", Fields: map[string]any{"fds": 13.0, "goroutines": 16.0, "phase": "t0"}},
		event.Event{T: rep.T0 + 500*ms, Node: scenario.HubName, Kind: "stats", Fields: map[string]any{"goroutines": 40.0}},
		event.Event{T: rep.T0 + 900*ms, Node: scenario.HubName, Kind: "resource", Fields: map[string]any{"fds": 218.0, "phase": "run_end"}},
		event.Event{T: rep.T0 + 900*ms, Node: "c2", Kind: "resource", Fields: map[string]any{"fds": 20.0}},
	)
	var buf bytes.Buffer
	if err := RenderTimeline(&buf, p, rep, evs); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{">resources</text>", "peak 218", "<title>hub fds</title>", "<title>hub goroutines</title>",
		"<title>c2 fds</title>", "&#34;phase&#34;:&#34;run_end&#34;"} {
		if !strings.Contains(s, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
}
