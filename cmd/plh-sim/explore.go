package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pylabhub/plh/sim"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

func init() {
	register("explore", exploreCmd, false)
	register("shrink", shrinkCmd, false)
}

// shrinkFlags are the flags of a shrink, in explore and in shrink.
func shrinkFlags(fs *flag.FlagSet) *sim.ShrinkConfig {
	var sc sim.ShrinkConfig
	fs.IntVar(&sc.Tries, "tries", sim.DefaultShrinkTries, "shrink: a candidate still fails when one of this many runs fails the same verdict")
	fs.IntVar(&sc.MaxReruns, "max-reruns", sim.DefaultShrinkReruns, "shrink: at most this many runs in all")
	return &sc
}

func exploreCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef engineFlags
	ef.add(fs)
	budget := fs.Duration("time", 0, "time budget (default 10m unless --runs is given)")
	runs := fs.Int("runs", 0, "at most this many runs")
	seed := fs.Uint64("seed", 0, "seed of the exploration (default random)")
	noShrink := fs.Bool("no-shrink", false, "do not shrink a failed run")
	sc := shrinkFlags(fs)
	if err := fs.Parse(args); err != nil {
		return verdict.ExitError
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if fs.NArg() != 1 || *runs < 0 || *budget < 0 {
		fmt.Fprintln(stderr, "usage: plh-sim explore [--time 10m] [--runs N] [--seed S] [--out DIR] FILE")
		return verdict.ExitError
	}
	vs, err := scenario.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	if len(vs) != 1 {
		fmt.Fprintf(stderr, "plh-sim: explore takes a file without [matrix] (%s has %d variants)\n", fs.Arg(0), len(vs))
		return verdict.ExitError
	}
	cfg, err := ef.config(stdout)
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	if !seedSet {
		*seed = randomSeed()
	}
	xc := sim.ExploreConfig{Engine: cfg, Budget: *budget, Runs: *runs, Seed: *seed, Shrink: *sc, NoShrink: *noShrink,
		Progress: cfg.Progress, Terminal: cfg.Terminal}
	fmt.Fprintf(stdout, "== explore %s (seed %d)\n", vs[0].Scenario.Name, *seed)
	res, err := sim.Explore(ctx, xc, vs[0])
	if res != nil {
		fmt.Fprint(stdout, res.Summary())
	}
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	case res.FailedRun > 0:
		return verdict.ExitFail
	case res.Interrupted:
		return verdict.ExitInconclusive
	}
	return verdict.ExitPass
}

// shrinkCmd shrinks the schedule of a failed run folder.
func shrinkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shrink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef engineFlags
	ef.add(fs)
	sc := shrinkFlags(fs)
	if err := fs.Parse(args); err != nil {
		return verdict.ExitError
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: plh-sim shrink [--tries K] [--max-reruns N] [--out DIR] RUNDIR")
		return verdict.ExitError
	}
	dir := filepath.Clean(fs.Arg(0))
	outSet := false
	fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if !outSet {
		ef.out = filepath.Join(dir, sim.ShrinkDir)
	}
	p, err := scenario.LoadPlan(filepath.Join(dir, report.ResolvedFile))
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	rep, err := readResults(dir)
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	v, err := scenario.SourceVariant(p)
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim: shrink resolves candidates from the scenario file the run came from:", err)
		return verdict.ExitError
	}
	cfg, err := ef.config(stdout)
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	cfg.Progress = nil
	if !ef.quiet {
		sc.Progress = stdout
	}
	res, err := sim.Shrink(ctx, cfg, v, p, rep, *sc)
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	fmt.Fprint(stdout, res.Text())
	if !res.Reproduced {
		return verdict.ExitInconclusive
	}
	fmt.Fprintf(stdout, "minimal schedule: %s (replay.sh)\n", res.Dir)
	if ctx.Err() != nil {
		return verdict.ExitInconclusive
	}
	return verdict.ExitFail
}

// readResults reads a run folder's results.json.
func readResults(dir string) (*verdict.Report, error) {
	b, err := os.ReadFile(filepath.Join(dir, report.ResultsFile))
	if err != nil {
		return nil, err
	}
	var rep verdict.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", report.ResultsFile, err)
	}
	if rep.Dir == "" {
		rep.Dir = dir
	}
	return &rep, nil
}
