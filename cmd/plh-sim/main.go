// Command plh-sim runs fault stories written in TOML with real processes and
// says, with evidence, whether the system behaved (docs/scenarios.md).
//
//	plh-sim run [--seed N] [--repeat N] [--out DIR] FILE...
//	plh-sim validate FILE...
//	plh-sim list DIR
//	plh-sim replay [--out DIR] RUNDIR
//	plh-sim explore [--time 10m] [--runs N] [--seed S] [--out DIR] FILE
//	plh-sim shrink [--tries K] [--max-reruns N] RUNDIR
//
// Exit status: 0 every expectation held, 1 one failed, 2 inconclusive (a fault
// could not fire, the run was interrupted), 3 bad scenario or harness error.
//
// The hub and node roles are reachable from this binary too (hidden
// subcommands `hub` and `node`, which the engine runs by re-executing itself),
// so installing plh-sim alone is enough to run every scenario; `janitor` is the
// helper that cleans up if plh-sim itself is killed.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/pylabhub/plh/cmd/internal/shutdown"
	"github.com/pylabhub/plh/sim/verdict"
)

// command is one subcommand: it parses its own args and returns the exit status.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

var (
	commands = map[string]command{}
	hidden   = map[string]bool{}
)

// register adds a subcommand; called from each subcommand file's init.
func register(name string, c command, isHidden bool) {
	commands[name] = c
	hidden[name] = isHidden
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(verdict.ExitError)
	}
	name, args := os.Args[1], os.Args[2:]
	if name == "-h" || name == "--help" || name == "help" {
		usage(os.Stdout)
		os.Exit(0)
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "plh-sim: unknown command %q\n", name)
		usage(os.Stderr)
		os.Exit(verdict.ExitError)
	}
	ctx, stop := shutdown.OnSignal(context.Background(), os.Exit)
	rc := c(ctx, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(rc)
}

func usage(w io.Writer) {
	var names []string
	for n := range commands {
		if !hidden[n] {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	fmt.Fprintf(w, `usage: plh-sim COMMAND [flags] ARGS
commands: %v
  run [--seed N] [--repeat N] [--out DIR] FILE...   run scenarios, write run folders
  validate FILE...                                  check scenario files
  list DIR                                          list the scenarios of a folder
  replay [--out DIR] RUNDIR                         run a run folder's resolved.toml again
  explore [--time 10m] [--runs N] [--seed S] FILE   draw fault schedules until one fails, then shrink it
  shrink RUNDIR                                     reduce a failed run's schedule to a smallest failing one
exit status: 0 pass, 1 an expectation failed, 2 inconclusive, 3 bad scenario or harness error
`, names)
}
