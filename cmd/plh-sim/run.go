package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/pylabhub/plh/sim"
	"github.com/pylabhub/plh/sim/report"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

func init() {
	register("run", runCmd, false)
	register("replay", replayCmd, false)
}

// engineFlags are the flags shared by run and replay.
type engineFlags struct {
	out      string
	hubBin   string
	nodeBin  string
	quiet    bool
	progress bool
}

func (e *engineFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&e.out, "out", "runs", "parent folder of run folders")
	fs.StringVar(&e.hubBin, "hub-bin", "", "run the hub role from this plh-hub binary instead of plh-sim itself")
	fs.StringVar(&e.nodeBin, "node-bin", "", "run the node role from this plh-node binary instead of plh-sim itself")
	fs.BoolVar(&e.quiet, "quiet", false, "no live progress, only the summary")
}

// config builds the engine configuration: roles by re-executing this binary
// (or the given standalone binaries), a janitor from this binary.
func (e *engineFlags) config(stdout io.Writer) (sim.Config, error) {
	self, err := os.Executable()
	if err != nil {
		return sim.Config{}, fmt.Errorf("locate plh-sim: %w", err)
	}
	cfg := sim.Config{
		HubCmd:     []string{self, "hub"},
		NodeCmd:    []string{self, "node"},
		JanitorCmd: []string{self, "janitor"},
		OutDir:     e.out,
	}
	if e.hubBin != "" {
		cfg.HubCmd = []string{e.hubBin}
	}
	if e.nodeBin != "" {
		cfg.NodeCmd = []string{e.nodeBin}
	}
	if !e.quiet {
		cfg.Progress = stdout
		if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			cfg.Terminal = true
		}
	}
	return cfg, nil
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef engineFlags
	ef.add(fs)
	seed := fs.Uint64("seed", 0, "seed for every run (default: the file's seed, else random)")
	repeat := fs.Int("repeat", 1, "run each scenario N times")
	if err := fs.Parse(args); err != nil {
		return verdict.ExitError
	}
	seedSet := false
	fs.Visit(func(f *flag.Flag) { seedSet = seedSet || f.Name == "seed" })
	if fs.NArg() == 0 || *repeat < 1 {
		fmt.Fprintln(stderr, "usage: plh-sim run [--seed N] [--repeat N] [--out DIR] FILE...")
		return verdict.ExitError
	}
	cfg, err := ef.config(stdout)
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	// Load everything first: a bad file stops the whole command before any run.
	type job struct {
		v    scenario.Variant
		seed uint64
	}
	var jobs []job
	for _, file := range fs.Args() {
		vs, err := scenario.Load(file)
		if err != nil {
			fmt.Fprintln(stderr, "plh-sim:", err)
			return verdict.ExitError
		}
		for _, v := range vs {
			for i := 0; i < *repeat; i++ {
				s := randomSeed()
				switch {
				case seedSet:
					s = *seed
				case v.Scenario.Seed != nil:
					s = *v.Scenario.Seed
				}
				jobs = append(jobs, job{v, s})
			}
		}
	}
	worst := verdict.ExitPass
	for _, j := range jobs {
		p, err := scenario.Resolve(j.v, j.seed)
		if err != nil {
			fmt.Fprintln(stderr, "plh-sim:", err)
			return verdict.ExitError
		}
		worst = combine(worst, runOne(ctx, cfg, p, stdout, stderr))
		if ctx.Err() != nil {
			break
		}
	}
	return worst
}

func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ef engineFlags
	ef.add(fs)
	if err := fs.Parse(args); err != nil {
		return verdict.ExitError
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: plh-sim replay [--out DIR] RUNDIR")
		return verdict.ExitError
	}
	outSet := false
	fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if !outSet {
		ef.out = filepath.Dir(filepath.Clean(fs.Arg(0)))
	}
	p, err := scenario.LoadPlan(filepath.Join(fs.Arg(0), report.ResolvedFile))
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	cfg, err := ef.config(stdout)
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	return runOne(ctx, cfg, p, stdout, stderr)
}

// runOne runs one plan and prints its summary.
func runOne(ctx context.Context, cfg sim.Config, p *scenario.Plan, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "== %s (seed %d, %v)\n", p.Name, p.Seed, p.Duration.D())
	rep, err := sim.Run(ctx, cfg, p)
	if rep == nil {
		fmt.Fprintln(stderr, "plh-sim:", err)
		return verdict.ExitError
	}
	if err != nil {
		fmt.Fprintln(stderr, "plh-sim: writing reports:", err)
	}
	for _, f := range rep.Faults {
		switch {
		case f.Error != "":
			fmt.Fprintf(stdout, "   fault %-28s could not fire: %s\n", f.ID, f.Error)
		case !f.Fired:
			fmt.Fprintf(stdout, "   fault %-28s did not fire\n", f.ID)
		}
	}
	for _, v := range rep.Expectations {
		fmt.Fprintf(stdout, "   %-12s %s: %s\n", v.Status, v.Name, v.Message)
	}
	if rep.Error != "" {
		fmt.Fprintf(stdout, "   error        %s\n", rep.Error)
	}
	fmt.Fprintf(stdout, "-> %s (exit %d)\n   run folder: %s\n   timeline:   %s\n", upper(rep.Status), rep.ExitCode,
		rep.Dir, filepath.Join(rep.Dir, report.TimelineFile))
	if err != nil && rep.ExitCode == verdict.ExitPass {
		return verdict.ExitError
	}
	return rep.ExitCode
}

// combine keeps the most serious exit status: error > fail > inconclusive > pass.
func combine(a, b int) int {
	rank := map[int]int{verdict.ExitPass: 0, verdict.ExitInconclusive: 1, verdict.ExitFail: 2, verdict.ExitError: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("no randomness")) // crypto/rand never fails on Linux
	}
	return binary.LittleEndian.Uint64(b[:]) >> 1 // keep it readable as a signed int too
}
