package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pylabhub/plh/sim"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

func init() {
	register("validate", validateCmd, false)
	register("list", listCmd, false)
	register("janitor", janitorCmd, true)
}

// check loads and resolves every variant of file (seed: the file's, else 0).
func check(file string) ([]*scenario.Plan, error) {
	vs, err := scenario.Load(file)
	if err != nil {
		return nil, err
	}
	var out []*scenario.Plan
	for _, v := range vs {
		var seed uint64
		if v.Scenario.Seed != nil {
			seed = *v.Scenario.Seed
		}
		p, err := scenario.Resolve(v, seed)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func validateCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: plh-sim validate FILE...")
		return verdict.ExitError
	}
	rc := verdict.ExitPass
	for _, f := range args {
		ps, err := check(f)
		if err != nil {
			fmt.Fprintln(stderr, err)
			rc = verdict.ExitError
			continue
		}
		nodes, faults, expect := 0, 0, 0
		for _, p := range ps {
			nodes, faults, expect = len(p.Nodes), len(p.Faults), len(p.Expect)
		}
		fmt.Fprintf(stdout, "ok %s: %d variant(s), %d nodes, %d faults, %d expectations\n", f, len(ps), nodes, faults, expect)
	}
	return rc
}

func listCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: plh-sim list DIR")
		return verdict.ExitError
	}
	files, err := filepath.Glob(filepath.Join(args[0], "*.toml"))
	if err != nil || len(files) == 0 {
		fmt.Fprintf(stderr, "plh-sim: no scenario files in %s\n", args[0])
		return verdict.ExitError
	}
	sort.Strings(files)
	rc := verdict.ExitPass
	for _, f := range files {
		ps, err := check(f)
		if err != nil {
			fmt.Fprintf(stdout, "%-34s INVALID  %v\n", filepath.Base(f), err)
			rc = verdict.ExitError
			continue
		}
		p := ps[0]
		desc := strings.SplitN(strings.TrimSpace(p.Description), "\n", 2)[0]
		variants := ""
		if len(ps) > 1 {
			variants = fmt.Sprintf(" ×%d", len(ps))
		}
		fmt.Fprintf(stdout, "%-34s %6v%-4s %d nodes %2d faults  %s\n", filepath.Base(f), p.Duration.D(), variants,
			len(p.Nodes), len(p.Faults), desc)
	}
	return rc
}

func janitorCmd(_ context.Context, _ []string, _, stderr io.Writer) int {
	for _, c := range sim.RunJanitor(os.Stdin, "/dev/shm") {
		fmt.Fprintln(stderr, "plh-sim janitor: cleaned", c)
	}
	return 0
}
