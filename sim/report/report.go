package report

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// Files of a run folder.
const (
	ResolvedFile = "resolved.toml"
	EventsFile   = "events.jsonl"
	ResultsFile  = "results.json"
	JUnitFile    = "junit.xml"
	TimelineFile = "timeline.html"
	ReplayFile   = "replay.sh"
)

// WriteStatic writes into the run folder dir what is known before the run:
// the plan (resolved.toml) and replay.sh.
func WriteStatic(dir string, p *scenario.Plan) error {
	b, err := p.Encode()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ResolvedFile), b, 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	script := fmt.Sprintf(`#!/bin/sh
# Runs this exact schedule again (scenario %q from %s, seed %d) into a new
# folder beside this one. PLH_SIM overrides the plh-sim command.
# The original file with the same seed: plh-sim run --seed %d %s
cd "$(dirname "$0")" || exit 3
exec ${PLH_SIM:-plh-sim} replay --out .. .
`, p.Name, p.Source, p.Seed, p.Seed, shellQuote(p.Source))
	if err := os.WriteFile(filepath.Join(dir, ReplayFile), []byte(script), 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// WriteEvents writes the merged timeline as JSON lines.
func WriteEvents(file string, evs []event.Event) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	w := bufio.NewWriter(f)
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			continue
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	return f.Close()
}

// ReadEvents reads an events.jsonl file.
func ReadEvents(file string) ([]event.Event, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []event.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), event.MaxLine)
	for line := 1; sc.Scan(); line++ {
		ev, err := event.Decode(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// WriteReports writes results.json, junit.xml and timeline.html into dir.
func WriteReports(dir string, p *scenario.Plan, rep *verdict.Report, evs []event.Event) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: results: %v", ErrWrite, err)
	}
	if err := os.WriteFile(filepath.Join(dir, ResultsFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	if b, err = JUnit(rep); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, JUnitFile), b, 0o644); err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	f, err := os.Create(filepath.Join(dir, TimelineFile))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	w := bufio.NewWriter(f)
	if err := RenderTimeline(w, p, rep, evs); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%w: %v", ErrWrite, err)
	}
	return f.Close()
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Suites   []junitSuite `xml:"testsuite"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Props    []junitProp `xml:"properties>property"`
	Cases    []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

// JUnit renders a report as a JUnit XML document: one test case per
// expectation; inconclusive ones are skipped, a harness error is an error case.
func JUnit(rep *verdict.Report) ([]byte, error) {
	s := junitSuite{Name: rep.Name, Time: float64(rep.End-rep.T0) / 1e9,
		Props: []junitProp{{"seed", fmt.Sprint(rep.Seed)}, {"source", rep.Source}, {"run_dir", rep.Dir}, {"status", rep.Status}}}
	if s.Time < 0 {
		s.Time = 0
	}
	if rep.Error != "" {
		s.Cases = append(s.Cases, junitCase{Name: "harness", ClassName: rep.Name, Error: &junitMessage{Message: rep.Error, Body: rep.Error}})
		s.Errors++
	}
	for _, f := range rep.Faults {
		if !f.Fired || f.Error != "" {
			msg := "fault " + f.ID + " did not fire"
			if f.Error != "" {
				msg += ": " + f.Error
			}
			s.Cases = append(s.Cases, junitCase{Name: "fault " + f.ID, ClassName: rep.Name, Skipped: &junitMessage{Message: msg}})
			s.Skipped++
		}
	}
	for _, v := range rep.Expectations {
		c := junitCase{Name: v.Name, ClassName: rep.Name, SystemOut: v.Message}
		body := v.Message + "\n" + evidenceText(v.Evidence)
		switch v.Status {
		case verdict.StatusFail:
			c.Failure = &junitMessage{Message: v.Message, Body: body}
			s.Failures++
		case verdict.StatusInconclusive:
			c.Skipped = &junitMessage{Message: v.Message}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	s.Tests = len(s.Cases)
	doc := junitSuites{Suites: []junitSuite{s}, Tests: s.Tests, Failures: s.Failures, Errors: s.Errors}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%w: junit: %v", ErrWrite, err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}

func evidenceText(evs []event.Event) string {
	var sb strings.Builder
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}
