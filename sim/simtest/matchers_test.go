package simtest

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

func result(t *testing.T) *Result {
	t.Helper()
	dir := t.TempDir()
	en := scenario.EngineName
	evs := []event.Event{
		{T: 1e9, Node: en, Kind: "run_start"},
		{T: 2e9, Node: en, Kind: "fault", Fields: map[string]any{"id": "kill-c"}},
		{T: 2.5e9, Node: "p", Kind: "consumer_died", Fields: map[string]any{"reason": "process_dead"}},
	}
	if err := report.WriteEvents(filepath.Join(dir, report.EventsFile), evs); err != nil {
		t.Fatal(err)
	}
	return &Result{Name: "s", Dir: dir, Report: &verdict.Report{Status: verdict.StatusFail, ExitCode: verdict.ExitFail,
		Expectations: []verdict.Verdict{
			{Name: "invariant registry_matches", Status: verdict.StatusPass, Message: "ok"},
			{Name: "died", Status: verdict.StatusFail, Message: "no consumer_died within 1s"},
		}}}
}

func TestMatchers(t *testing.T) {
	r := result(t)
	cases := []struct {
		name  string
		m     interface{ Match(any) (bool, error) }
		want  bool
		words []string
	}{
		{"pass", Pass(), false, []string{"fail: died: no consumer_died within 1s"}},
		{"verdict", HaveVerdict("died", verdict.StatusFail), true, nil},
		{"missing verdict", HaveVerdict("lived", verdict.StatusPass), false, []string{"no verdict named", "invariant registry_matches"}},
		{"invariant", HoldInvariant("registry_matches"), true, nil},
		{"event in time", HaveEventWithin("consumer_died", "p", time.Second, "kill-c"), true, nil},
		{"event late", HaveEventWithin("consumer_died", "p", 100*time.Millisecond, "kill-c"), false, []string{"too late", "p at 500ms"}},
		{"event from start", HaveEventWithin("consumer_died", "*", 2*time.Second), true, nil},
		{"no such fault", HaveEventWithin("consumer_died", "p", time.Second, "nope"), false, []string{"fault nope never happened"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.m.Match(r)
			if err != nil || got != c.want {
				t.Fatalf("match %v, %v", got, err)
			}
			msg := c.m.(*matcher).FailureMessage(r)
			if !strings.Contains(msg, "run folder: "+r.Dir) {
				t.Errorf("message lacks the run folder: %s", msg)
			}
			for _, w := range c.words {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q: %s", w, msg)
				}
			}
		})
	}
	if _, err := Pass().Match("not a result"); err == nil {
		t.Fatal("a non-Result must be an error")
	}
}
