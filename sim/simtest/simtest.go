package simtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// Engine runs scenarios in the calling process.
type Engine struct {
	// Bin is a plh-sim binary; its hub, node and janitor roles are run
	// (required).
	Bin string
	// OutDir is the parent of the run folders (required: e.g. a test's
	// TempDir, or a folder kept for CI artifacts).
	OutDir string
	// Seed, when set, overrides the scenario's seed (else: the file's, else
	// random; always in the report and resolved.toml).
	Seed *uint64
	// Logger receives the engine's diagnostics (nil: discard).
	Logger *slog.Logger
}

// Result is one finished run.
type Result struct {
	// Name is the scenario's name (or the file when it could not be loaded).
	Name string
	// Report is the verdict (nil when the scenario could not be loaded or the
	// harness failed before a report existed).
	Report *verdict.Report
	// Err is a bad scenario (wraps scenario.ErrScenario) or a harness error.
	Err error
	// Dir is the run folder ("" when no run started).
	Dir string

	once sync.Once
	evs  []event.Event
	eerr error
}

// Events returns the run's merged timeline (events.jsonl), read once.
func (r *Result) Events() ([]event.Event, error) {
	r.once.Do(func() {
		if r.Dir == "" {
			r.eerr = fmt.Errorf("no run folder (%v)", r.Err)
			return
		}
		r.evs, r.eerr = report.ReadEvents(filepath.Join(r.Dir, report.EventsFile))
	})
	return r.evs, r.eerr
}

// RunFile loads, validates and runs the scenario file. A file with a
// [matrix] of several variants is refused (run one file per variant).
func (e Engine) RunFile(ctx context.Context, file string) *Result {
	res := &Result{Name: file}
	vs, err := scenario.Load(file)
	if err != nil {
		res.Err = err
		return res
	}
	if len(vs) != 1 {
		res.Err = fmt.Errorf("%w: %s: %d matrix variants: simtest runs one", scenario.ErrScenario, file, len(vs))
		return res
	}
	res.Name = vs[0].Scenario.Name
	seed := scenario.NewSeed()
	switch {
	case e.Seed != nil:
		seed = *e.Seed
	case vs[0].Scenario.Seed != nil:
		seed = *vs[0].Scenario.Seed
	}
	p, err := scenario.Resolve(vs[0], seed)
	if err != nil {
		res.Err = err
		return res
	}
	return e.runPlan(ctx, res, p)
}

// RunScenario runs a scenario built in Go: it is written as TOML into a new
// folder under OutDir (kept, next to the run folder) and run as a file.
// Relative dir keys of programs are taken from the working directory.
func (e Engine) RunScenario(ctx context.Context, s *scenario.Scenario) *Result {
	res := &Result{Name: s.Name}
	if err := os.MkdirAll(e.OutDir, 0o755); err != nil {
		res.Err = fmt.Errorf("%w: %v", sim.ErrHarness, err)
		return res
	}
	dir, err := os.MkdirTemp(e.OutDir, "scenario-")
	if err != nil {
		res.Err = fmt.Errorf("%w: %v", sim.ErrHarness, err)
		return res
	}
	c := *s
	c.Producers, c.Consumers = absDirs(s.Producers), absDirs(s.Consumers)
	b, err := toml.Marshal(&c)
	if err != nil {
		res.Err = fmt.Errorf("%w: encode: %v", scenario.ErrScenario, err)
		return res
	}
	name := "scenario.toml"
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		res.Err = fmt.Errorf("%w: %v", sim.ErrHarness, err)
		return res
	}
	return e.RunFile(ctx, file)
}

// absDirs copies nodes with their program dir made absolute against the
// working directory.
func absDirs(ns []scenario.NodeSpec) []scenario.NodeSpec {
	out := append([]scenario.NodeSpec(nil), ns...)
	for i := range out {
		if out[i].IsProgram() {
			if abs, err := filepath.Abs(out[i].Dir); err == nil {
				out[i].Dir = abs
			}
		}
	}
	return out
}

func (e Engine) runPlan(ctx context.Context, res *Result, p *scenario.Plan) *Result {
	if e.Bin == "" || e.OutDir == "" {
		res.Err = fmt.Errorf("%w: simtest.Engine needs Bin and OutDir", sim.ErrHarness)
		return res
	}
	cfg := sim.Config{HubCmd: []string{e.Bin, "hub"}, NodeCmd: []string{e.Bin, "node"},
		JanitorCmd: []string{e.Bin, "janitor"}, OutDir: e.OutDir, Logger: e.Logger}
	rep, err := sim.Run(ctx, cfg, p)
	res.Report, res.Err = rep, err
	if rep != nil {
		res.Dir = rep.Dir
	}
	return res
}
