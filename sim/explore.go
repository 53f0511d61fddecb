package sim

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// DefaultExploreBudget is explore's time budget when neither a time nor a
// number of runs is given.
const DefaultExploreBudget = 10 * time.Minute

// Files of an explore folder.
const (
	CoverageFile = "coverage.tsv" // elapsed, runs, features, corpus: one line per run
	RunsFile     = "runs.tsv"     // one line per run: schedule, status, new features, folder
	SummaryFile  = "summary.txt"
	ShrinkDir    = "shrink" // the shrink's runs, and minimal/
)

// ExploreConfig tells Explore its budget and where to write.
type ExploreConfig struct {
	// Engine runs each schedule; its OutDir is the parent of the explore
	// folder, its Progress is not used (explore prints its own lines).
	Engine Config
	// Budget and Runs end the exploration (whichever comes first; both zero:
	// DefaultExploreBudget). A run started before the budget ends finishes.
	Budget time.Duration
	Runs   int
	// Seed is the exploration's seed: run k draws from (Seed, k).
	Seed uint64
	// Shrink bounds the shrink of a failed run; NoShrink skips it.
	Shrink   ShrinkConfig
	NoShrink bool
	// Progress gets a status line rewritten in place (Terminal) or one line
	// per run; nil: none.
	Progress io.Writer
	Terminal bool
}

// ExploreResult is the outcome of an exploration.
type ExploreResult struct {
	Dir          string
	Runs         int
	Faults       int // faults that fired over all runs
	Inconclusive int
	Features     int // coverage reached
	Corpus       int
	Elapsed      time.Duration // the whole exploration, shrink included
	Exploring    time.Duration // until the end of the last run (no shrink)
	// FailedRun is the run that failed (1-based; 0: none), Failed its report.
	FailedRun int
	Failed    *verdict.Report
	// FoundAfter is the time from the start to the end of the failed run.
	FoundAfter time.Duration
	Shrunk     *ShrinkResult
	// Interrupted: ctx ended the exploration.
	Interrupted bool
	// Flaky lists failed runs whose schedule did not fail again when the
	// shrink re-ran it (the exploration went on past them).
	Flaky []string
	// Curve is the coverage after each run (coverage.tsv holds the same).
	Curve []CoveragePoint
}

// CoveragePoint is the coverage reached after a run.
type CoveragePoint struct {
	Elapsed  time.Duration
	Runs     int
	Features int
}

// corpusEntry is a schedule that reached something new.
type corpusEntry struct {
	faults []scenario.FaultSpec
	fresh  int // features it added
}

// Explore runs the system of v (a scenario with [explore]) again and again,
// each run with a schedule drawn from (cfg.Seed, run number): a fresh random
// one, or, once the corpus holds schedules that reached new coverage, half
// the time a mutation of one of them (shift, add, drop, retarget, redraw).
// Every run has every invariant on and its own run folder (resolved.toml,
// replay.sh). It stops at the first failed run (then shrinks it), at the
// end of the budget, or when ctx ends.
func Explore(ctx context.Context, cfg ExploreConfig, v scenario.Variant) (*ExploreResult, error) {
	if v.Scenario.Explore == nil {
		return nil, fmt.Errorf("%w: %s has no [explore] table", scenario.ErrScenario, v.File)
	}
	if _, err := planFor(v, nil, 0, 0); err != nil {
		return nil, err
	}
	if cfg.Budget == 0 && cfg.Runs == 0 {
		cfg.Budget = DefaultExploreBudget
	}
	out := cfg.Engine.OutDir
	if out == "" {
		out = "runs"
	}
	dir, err := filepath.Abs(filepath.Join(out, fmt.Sprintf("explore-%s-%s-s%d", dirName(v.Scenario.Name),
		time.Now().Format("20060102-150405"), cfg.Seed)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHarness, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: explore folder: %v", ErrHarness, err)
	}
	e := &explorer{cfg: cfg, v: v, gen: newGenerator(v), cov: coverage{seen: map[string]bool{}},
		res: &ExploreResult{Dir: dir}, start: time.Now()}
	e.cfg.Engine.OutDir = filepath.Join(dir, "runs")
	e.cfg.Engine.Progress = nil
	if err := e.openLogs(); err != nil {
		return nil, err
	}
	defer e.closeLogs()
	err = e.loop(ctx)
	e.res.Elapsed = time.Since(e.start)
	e.res.Features, e.res.Corpus = len(e.cov.seen), len(e.corpus)
	e.status(true)
	if werr := os.WriteFile(filepath.Join(dir, SummaryFile), []byte(e.res.Summary()), 0o644); werr != nil && err == nil {
		err = fmt.Errorf("%w: %v", ErrHarness, werr)
	}
	return e.res, err
}

// explorer is the state of one exploration.
type explorer struct {
	cfg    ExploreConfig
	v      scenario.Variant
	gen    *generator
	cov    coverage
	corpus []corpusEntry
	res    *ExploreResult
	start  time.Time
	covLog *os.File
	runLog *os.File
}

func (e *explorer) loop(ctx context.Context) error {
	for k := 1; ; k++ {
		if ctx.Err() != nil {
			e.res.Interrupted = true
			return nil
		}
		if (e.cfg.Runs > 0 && k > e.cfg.Runs) || (e.cfg.Budget > 0 && time.Since(e.start) >= e.cfg.Budget) {
			return nil
		}
		faults, origin := e.schedule(k)
		p, err := planFor(e.v, faults, runSeed(e.cfg.Seed, k), k)
		if err != nil {
			return err
		}
		rep, err := Run(ctx, e.cfg.Engine, p)
		if rep == nil {
			return err
		}
		e.res.Runs = k
		fired := 0
		for _, f := range rep.Faults {
			if f.Fired {
				fired++
			}
		}
		e.res.Faults += fired
		evs, _ := report.ReadEvents(filepath.Join(rep.Dir, report.EventsFile))
		fresh := e.cov.add(features(evs, rep))
		if len(fresh) > 0 && rep.Status != verdict.StatusError {
			e.corpus = append(e.corpus, corpusEntry{faults: stripIDs(p.Faults), fresh: len(fresh)})
		}
		e.logRun(k, p, origin, rep, fresh)
		switch {
		case ctx.Err() != nil:
			e.res.Interrupted = true
			return nil
		case rep.Status == verdict.StatusError:
			return fmt.Errorf("%w: run %d: %s (%s)", ErrHarness, k, rep.Error, rep.Dir)
		case rep.Status == verdict.StatusInconclusive:
			e.res.Inconclusive++
		case rep.Status == verdict.StatusFail:
			e.res.FailedRun, e.res.Failed, e.res.FoundAfter = k, rep, time.Since(e.start)
			if err := e.shrink(ctx, k, p, rep); err != nil || e.res.Shrunk == nil || e.res.Shrunk.Reproduced || ctx.Err() != nil {
				return err
			}
			e.printf("run %d did not fail again in %d runs: recorded as flaky, exploring on\n", k, e.res.Shrunk.Reruns)
			e.res.Flaky = append(e.res.Flaky, fmt.Sprintf("run %d: %s (%s)", k, violation(rep, failedNames(rep)), rep.Dir))
			e.res.FailedRun, e.res.Failed, e.res.Shrunk = 0, nil, nil
		}
	}
}

// schedule returns run k's faults: fresh, or a mutation of a corpus entry
// (entries that added more features are picked more often).
func (e *explorer) schedule(k int) ([]scenario.FaultSpec, string) {
	rng := rand.New(rand.NewPCG(e.cfg.Seed, uint64(k)))
	if len(e.corpus) == 0 || rng.IntN(2) == 0 {
		return e.gen.fresh(rng), "fresh"
	}
	total := 0
	for _, c := range e.corpus {
		total += c.fresh
	}
	pick := rng.IntN(total)
	i := 0
	for ; pick >= e.corpus[i].fresh; i++ {
		pick -= e.corpus[i].fresh
	}
	fs, ops := e.gen.mutate(rng, e.corpus[i].faults)
	return fs, fmt.Sprintf("corpus %d: %s", i+1, ops)
}

func (e *explorer) shrink(ctx context.Context, k int, p *scenario.Plan, rep *verdict.Report) error {
	e.status(true)
	e.printf("run %d failed: %s\n", k, violation(rep, failedNames(rep)))
	if e.cfg.NoShrink {
		return nil
	}
	eng := e.cfg.Engine
	eng.OutDir = filepath.Join(e.res.Dir, ShrinkDir)
	sc := e.cfg.Shrink
	sc.Run = k
	if sc.Progress == nil {
		sc.Progress = e.cfg.Progress
	}
	res, err := Shrink(ctx, eng, e.v, p, rep, sc)
	e.res.Shrunk = res
	if ctx.Err() != nil {
		e.res.Interrupted = true
	}
	return err
}

// planFor resolves v with faults as its schedule, seed as its seed, and names
// it after run k.
func planFor(v scenario.Variant, faults []scenario.FaultSpec, seed uint64, k int) (*scenario.Plan, error) {
	vv, err := scenario.WithFaults(v, faults)
	if err != nil {
		return nil, err
	}
	p, err := scenario.Resolve(vv, seed)
	if err != nil {
		return nil, err
	}
	p.Name = fmt.Sprintf("%s-run%d", v.Scenario.Name, k)
	return p, nil
}

// runSeed derives run k's seed from the exploration's.
func runSeed(seed uint64, k int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d", seed, k)
	return h.Sum64() >> 1
}

// stripIDs drops the ids Resolve gave, so a mutated fault gets a fresh one.
func stripIDs(fs []scenario.FaultSpec) []scenario.FaultSpec {
	out := make([]scenario.FaultSpec, len(fs))
	for i, f := range fs {
		f.ID = ""
		out[i] = f
	}
	return out
}

func (e *explorer) openLogs() error {
	var err error
	if e.covLog, err = os.Create(filepath.Join(e.res.Dir, CoverageFile)); err != nil {
		return fmt.Errorf("%w: %v", ErrHarness, err)
	}
	if e.runLog, err = os.Create(filepath.Join(e.res.Dir, RunsFile)); err != nil {
		e.covLog.Close()
		return fmt.Errorf("%w: %v", ErrHarness, err)
	}
	fmt.Fprintln(e.covLog, "elapsed_s\truns\tfaults\tfeatures\tcorpus")
	fmt.Fprintln(e.runLog, "run\tseed\tstatus\tfaults_fired\tnew_features\torigin\tschedule\trun_dir\tnew")
	return nil
}

func (e *explorer) closeLogs() {
	_ = e.covLog.Close()
	_ = e.runLog.Close()
}

// logRun writes the run's lines (coverage.tsv, runs.tsv) and its progress.
func (e *explorer) logRun(k int, p *scenario.Plan, origin string, rep *verdict.Report, fresh []string) {
	el := time.Since(e.start)
	e.res.Exploring = el
	e.res.Curve = append(e.res.Curve, CoveragePoint{Elapsed: el, Runs: k, Features: len(e.cov.seen)})
	fmt.Fprintf(e.covLog, "%.1f\t%d\t%d\t%d\t%d\n", el.Seconds(), k, e.res.Faults, len(e.cov.seen), len(e.corpus))
	fmt.Fprintf(e.runLog, "%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", k, p.Seed, rep.Status, len(rep.Faults),
		len(fresh), origin, scheduleText(p.Faults), rep.Dir, strings.Join(fresh, " "))
	if e.cfg.Terminal {
		e.status(false)
		return
	}
	e.printf("run %d %s: %s, %s, +%d features (%d), %s\n", k, origin, rep.Status, scheduleText(p.Faults),
		len(fresh), len(e.cov.seen), rep.Dir)
}

// status rewrites the terminal's status line (final: end it with a newline).
func (e *explorer) status(final bool) {
	if !e.cfg.Terminal {
		return
	}
	budget := "∞"
	if e.cfg.Budget > 0 {
		budget = e.cfg.Budget.String()
	}
	end := ""
	if final {
		end = "\n"
	}
	failures := 0
	if e.res.FailedRun > 0 {
		failures = 1
	}
	e.printf("\r\033[Kexplore %s: runs %d, faults fired %d, failures %d, inconclusive %d, coverage %d features, corpus %d, %s/%s%s",
		e.v.Scenario.Name, e.res.Runs, e.res.Faults, failures, e.res.Inconclusive,
		len(e.cov.seen), len(e.corpus), time.Since(e.start).Round(time.Second), budget, end)
}

func (e *explorer) printf(format string, args ...any) {
	if e.cfg.Progress != nil {
		fmt.Fprintf(e.cfg.Progress, format, args...)
	}
}

// Summary is the exploration's closing text (summary.txt).
func (r *ExploreResult) Summary() string {
	var b strings.Builder
	mins := r.Exploring.Minutes()
	fmt.Fprintf(&b, "explore folder: %s\n", r.Dir)
	fmt.Fprintf(&b, "runs %d in %v (%.1f per minute; %v in all), faults fired %d (%.2f per run), inconclusive %d\n",
		r.Runs, r.Exploring.Round(time.Second), float64(r.Runs)/max(mins, 1e-9), r.Elapsed.Round(time.Second), r.Faults,
		float64(r.Faults)/float64(max(r.Runs, 1)), r.Inconclusive)
	fmt.Fprintf(&b, "coverage: %d features, corpus %d schedules; over time (%s): %s\n", r.Features, r.Corpus,
		CoverageFile, curveText(r.Curve))
	switch {
	case r.FailedRun > 0:
		fmt.Fprintf(&b, "FAILED on run %d after %v: %s\n   run folder: %s\n", r.FailedRun, r.FoundAfter.Round(time.Second),
			violation(r.Failed, failedNames(r.Failed)), r.Failed.Dir)
		if r.Shrunk != nil {
			b.WriteString(r.Shrunk.Text())
			fmt.Fprintf(&b, "minimal schedule: %s (replay.sh)\n", r.Shrunk.Dir)
		}
	}
	for _, f := range r.Flaky {
		fmt.Fprintf(&b, "flaky (failed once, not again in the re-runs): %s\n", f)
	}
	switch {
	case r.FailedRun > 0:
	case r.Interrupted:
		b.WriteString("interrupted: no failure found so far\n")
	case len(r.Flaky) > 0:
		b.WriteString("no failure found that reproduces\n")
	default:
		b.WriteString("no failure found\n")
	}
	return b.String()
}

// curveText samples the coverage curve at up to 6 points: "56 at 5s (run
// 1), 80 at 2m30s (run 30), …".
func curveText(c []CoveragePoint) string {
	if len(c) == 0 {
		return "no run"
	}
	var parts []string
	last := -1
	for i := 0; i < 6; i++ {
		j := i * (len(c) - 1) / 5
		if j == last {
			continue
		}
		last = j
		parts = append(parts, fmt.Sprintf("%d at %v (run %d)", c[j].Features, c[j].Elapsed.Round(time.Second), c[j].Runs))
	}
	return strings.Join(parts, ", ")
}
