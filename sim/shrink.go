package sim

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// Shrink defaults: a candidate "still fails" when one of DefaultShrinkTries
// runs fails a verdict of the same name as the original failure; at most
// DefaultShrinkReruns runs are spent in all.
const (
	DefaultShrinkTries  = 3
	DefaultShrinkReruns = 40
)

// MinimalDir is the folder (in the shrink folder) holding the smallest
// failing schedule: resolved.toml, replay.sh, report.txt.
const MinimalDir = "minimal"

// ShrinkConfig bounds a shrink.
type ShrinkConfig struct {
	// Tries is how many runs a candidate gets to fail (0: DefaultShrinkTries).
	Tries int
	// MaxReruns bounds the runs of the whole shrink (0: DefaultShrinkReruns).
	MaxReruns int
	// Progress gets one line per candidate (nil: none).
	Progress io.Writer
	// Run is the explore run that failed, for the report (0: none).
	Run int
}

// ShrinkResult is the outcome of a shrink.
type ShrinkResult struct {
	Run int // the explore run that failed (0: none)
	// Reproduced: the failed schedule failed again (else nothing was shrunk).
	Reproduced bool
	From, To   int      // faults before and after
	Reruns     int      // runs spent
	Names      []string // the failing verdicts a candidate had to reproduce
	Plan       *scenario.Plan
	Report     *verdict.Report // the minimal schedule's failing run
	Dir        string          // the minimal folder
	// Violation: "invariant X violated at t" of the minimal run.
	Violation string
}

// Shrink reduces the schedule of a failed run (plan failed, its report rep)
// to a smaller one that still fails. It first runs the failed schedule again:
// if that does not fail (in Tries runs) the result says Reproduced = false and
// nothing else is done. Then it drops faults (all of them first, then
// halves, quarters … down to one at a time, delta-debugging style), then moves
// each fault earlier (half its offset) and shortens it (half its duration,
// churn cycles). Runs are not deterministic, so a candidate still fails when
// one of cfg.Tries runs fails a verdict whose name is among the original's
// failures. Candidates resolve through v (the scenario the plan came from),
// so exit modes and proxies follow the faults kept. The runs go into
// eng.OutDir; the minimal schedule into eng.OutDir/minimal.
func Shrink(ctx context.Context, eng Config, v scenario.Variant, failed *scenario.Plan, rep *verdict.Report, cfg ShrinkConfig) (*ShrinkResult, error) {
	if cfg.Tries <= 0 {
		cfg.Tries = DefaultShrinkTries
	}
	if cfg.MaxReruns <= 0 {
		cfg.MaxReruns = DefaultShrinkReruns
	}
	names := failedNames(rep)
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: the run to shrink did not fail", ErrHarness)
	}
	s := &shrinker{ctx: ctx, eng: eng, v: v, seed: failed.Seed, name: failed.Name, cfg: cfg, names: names}
	res := &ShrinkResult{Run: cfg.Run, From: len(failed.Faults), Names: names, Plan: failed, Report: rep}
	cur := slices.Clone(failed.Faults)
	// First the failed schedule itself: a failure that does not come back in
	// Tries runs is not shrunk (Reproduced false).
	if p, r := s.fails(cur, "the failed schedule again"); p != nil {
		res.Reproduced, res.Report = true, r
	} else {
		res.Reruns, res.Violation = s.runs, violation(rep, names)
		return res, nil
	}
	try := func(cand []scenario.FaultSpec, what string) bool {
		if s.runs >= cfg.MaxReruns || ctx.Err() != nil {
			return false
		}
		p, r := s.fails(cand, what)
		if p == nil {
			return false
		}
		cur, res.Plan, res.Report = cand, p, r
		return true
	}
	if len(cur) > 0 && !try(nil, "no faults") {
		for chunk := max(len(cur)/2, 1); ; {
			progress := false
			for i := 0; i < len(cur) && len(cur) > 1; {
				end := min(i+chunk, len(cur))
				cand := slices.Concat(cur[:i], cur[end:])
				if try(cand, fmt.Sprintf("drop %s", ids(cur[i:end]))) {
					progress = true
					continue
				}
				i += chunk
			}
			if chunk == 1 && !progress {
				break
			}
			chunk = max(min(chunk/2, len(cur)/2), 1)
		}
		for i := range cur {
			if cur[i].At > scenario.Duration(100*time.Millisecond) {
				cand := slices.Clone(cur)
				cand[i].At = toMillis(cur[i].At / 2)
				try(cand, fmt.Sprintf("move %s to %v", cur[i].ID, cand[i].At.D()))
			}
			if cur[i].Duration > scenario.Duration(100*time.Millisecond) {
				cand := slices.Clone(cur)
				cand[i].Duration = toMillis(cur[i].Duration / 2)
				try(cand, fmt.Sprintf("shorten %s to %v", cur[i].ID, cand[i].Duration.D()))
			}
			if cur[i].Kind == scenario.FaultConsumerChurn && cur[i].Count > 1 {
				cand := slices.Clone(cur)
				cand[i].Count = cur[i].Count / 2
				try(cand, fmt.Sprintf("churn %s %d cycles", cur[i].ID, cand[i].Count))
			}
		}
	}
	res.To, res.Reruns = len(res.Plan.Faults), s.runs
	res.Violation = violation(res.Report, names)
	dir, err := writeMinimal(filepath.Join(eng.OutDir, MinimalDir), res)
	res.Dir = dir
	return res, err
}

// shrinker runs candidates.
type shrinker struct {
	ctx   context.Context
	eng   Config
	v     scenario.Variant
	seed  uint64
	name  string
	cfg   ShrinkConfig
	names []string
	runs  int
}

// fails runs candidate cand up to cfg.Tries times and returns its plan and
// the first run failing one of s.names, or nil when none did (or the
// candidate does not resolve: an expectation anchored on a dropped fault).
func (s *shrinker) fails(cand []scenario.FaultSpec, what string) (*scenario.Plan, *verdict.Report) {
	v, err := scenario.WithFaults(s.v, cand)
	if err != nil {
		return nil, nil
	}
	p, err := scenario.Resolve(v, s.seed)
	if err != nil {
		s.logf("   shrink: %s: does not resolve: %v", what, err)
		return nil, nil
	}
	p.Name = s.name + "-shrink"
	for try := 1; try <= s.cfg.Tries && s.runs < s.cfg.MaxReruns && s.ctx.Err() == nil; try++ {
		s.runs++
		rep, err := Run(s.ctx, s.eng, p)
		if rep == nil {
			s.logf("   shrink: %s: %v", what, err)
			return nil, nil
		}
		if rep.Status == verdict.StatusFail && len(intersect(failedNames(rep), s.names)) > 0 {
			s.logf("   shrink: %s (%d faults): still fails (try %d): %s", what, len(cand), try,
				strings.Join(intersect(failedNames(rep), s.names), "; "))
			return p, rep
		}
	}
	s.logf("   shrink: %s (%d faults): passes", what, len(cand))
	return nil, nil
}

func (s *shrinker) logf(format string, args ...any) {
	if s.cfg.Progress != nil {
		fmt.Fprintf(s.cfg.Progress, format+"\n", args...)
	}
}

// failedNames lists the names of a report's failed verdicts.
func failedNames(rep *verdict.Report) []string {
	var out []string
	if rep == nil {
		return nil
	}
	for _, v := range rep.Expectations {
		if v.Status == verdict.StatusFail {
			out = append(out, v.Name)
		}
	}
	return out
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func ids(fs []scenario.FaultSpec) string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = faultLabel(f)
	}
	return strings.Join(out, ", ")
}

// violation says which of names the report failed and when: "invariant X
// violated at 2.31s (message)", t after run start from its first evidence.
func violation(rep *verdict.Report, names []string) string {
	for _, v := range rep.Expectations {
		if v.Status != verdict.StatusFail || !slices.Contains(names, v.Name) {
			continue
		}
		at := "run_end"
		if t := firstT(v.Evidence); t > 0 && rep.T0 > 0 {
			at = fmt.Sprintf("%.2fs", float64(t-rep.T0)/1e9)
		}
		return fmt.Sprintf("%s violated at %s: %s", v.Name, at, v.Message)
	}
	return "no failure"
}

func firstT(evs []event.Event) int64 {
	for _, ev := range evs {
		if ev.T > 0 {
			return ev.T
		}
	}
	return 0
}

// writeMinimal writes the minimal schedule's folder: resolved.toml and
// replay.sh (report.WriteStatic) and report.txt.
func writeMinimal(dir string, res *ShrinkResult) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%w: %v", ErrHarness, err)
	}
	if err := report.WriteStatic(dir, res.Plan); err != nil {
		return "", fmt.Errorf("%w: %w", ErrHarness, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(res.Text()), 0o644); err != nil {
		return "", fmt.Errorf("%w: %v", ErrHarness, err)
	}
	return dir, nil
}

// Text is the shrink's report: "failed on run k; shrunk from n faults to m
// in r re-runs; invariant X violated at t: ...", what "still fails" meant,
// the schedule and its failing run.
func (res *ShrinkResult) Text() string {
	var b strings.Builder
	if res.Run > 0 {
		fmt.Fprintf(&b, "failed on run %d; ", res.Run)
	}
	if !res.Reproduced {
		fmt.Fprintf(&b, "did not fail again in %d re-runs: not shrunk; %s\n", res.Reruns, res.Violation)
		return b.String()
	}
	fmt.Fprintf(&b, "shrunk from %d faults to %d in %d re-runs; %s\n", res.From, res.To, res.Reruns, res.Violation)
	fmt.Fprintf(&b, "still fails = a run fails one of: %s\n", strings.Join(res.Names, "; "))
	fmt.Fprintf(&b, "schedule: %s\n", scheduleText(res.Plan.Faults))
	if res.Report != nil && res.Report.Dir != "" {
		fmt.Fprintf(&b, "failing run of this schedule: %s\n", res.Report.Dir)
	}
	return b.String()
}
