// Command plh-bench measures plh on this machine. Each subcommand lives in its own
// file and registers itself in benches; every subcommand prints a readable table
// and ends with one machine-readable line starting with "RESULT"; ratios held to a
// target are printed with ratio() ("RATIO" lines), and "all" ends with a summary
// table of them (summary.go).
//
//	plh-bench ring|broker|hub|curve [--quick]
//	plh-bench all [--quick]
package main

import (
	"fmt"
	"os"
	"sort"
)

// bench is one subcommand: it parses its own args and returns the exit status.
type bench func(args []string) int

var benches = map[string]bench{}

// register adds a subcommand; called from each subcommand file's init.
func register(name string, b bench) { benches[name] = b }

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name, args := os.Args[1], os.Args[2:]
	if name == "all" {
		os.Exit(runAll(args))
	}
	b, ok := benches[name]
	if !ok {
		usage()
		os.Exit(2)
	}
	os.Exit(b(args))
}

func names() []string {
	var ns []string
	for n := range benches {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: plh-bench {%v|all} [--quick]\n", names())
}
