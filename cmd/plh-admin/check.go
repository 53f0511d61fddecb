package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/pylabhub/plh/shm"
)

// Exit statuses of "plh-admin check".
const (
	checkClean    = 0
	checkProblems = 1
	checkError    = 2
)

// runCheck implements "plh-admin check SEGMENT": it reads the segment's header,
// slot entries and heartbeat entries with shm.Inspect (no mapping, no secret),
// then runs shm.Check without repair, and prints both. Exit status: 0 clean,
// 1 problems found, 2 the check could not run (usage, no such segment, not a
// DataBlock of this layout).
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plh-admin check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: plh-admin check SEGMENT") }
	if err := fs.Parse(args); err != nil {
		return checkError
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return checkError
	}
	name := fs.Arg(0)
	in, err := shm.Inspect(name)
	if err != nil {
		fmt.Fprintln(stderr, "plh-admin check:", err)
		return checkError
	}
	printInspection(stdout, name, in)
	rep, err := shm.Check(name, false)
	if err != nil {
		fmt.Fprintln(stderr, "plh-admin check:", err)
		return checkError
	}
	if rep.OK() {
		fmt.Fprintf(stdout, "result: ok (%d committed slot checksums verified)\n", rep.SlotsVerified)
		return checkClean
	}
	fmt.Fprintf(stdout, "result: %d problem(s)\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "  -", p)
	}
	return checkProblems
}

// lockAge renders how long a slot's write lock has been held: the original's
// stuck_duration_ms for a dead holder, held_ms for a live one (B-22).
func lockAge(s shm.SlotDiagnosis) string {
	if s.IsStuck {
		return shm.StuckText(s.StuckDuration)
	}
	return fmt.Sprintf("held_ms %d", s.LockHeld.Milliseconds())
}

// printInspection prints the segment's geometry, indices, held slots and
// consumers.
func printInspection(w io.Writer, name string, in *shm.Inspection) {
	fmt.Fprintf(w, "segment %s (%s): %d slots of %d bytes, flex %d bytes, %v, checksum %v\n",
		name, in.Path, in.Capacity, in.SlotSize, in.FlexSize, in.Sync, in.ChecksumPolicy)
	commit := "none"
	if in.CommitIndex != shm.NoCommit {
		commit = fmt.Sprint(in.CommitIndex)
	}
	fmt.Fprintf(w, "indices: write %d, commit %s, read %d; active consumers %d\n",
		in.WriteIndex, commit, in.ReadIndex, in.ActiveConsumers)
	for _, s := range in.Slots {
		if s.Writer == "" && s.ReaderCount == 0 && s.State != shm.SlotWriting && s.State != shm.SlotDraining {
			continue
		}
		fmt.Fprintf(w, "slot %d: %v id %d, readers %d", s.Index, s.State, s.SlotID, s.ReaderCount)
		if s.Writer != "" {
			fmt.Fprintf(w, ", write lock %s (alive %t, %s)", s.Writer, !s.IsStuck, lockAge(s))
		}
		fmt.Fprintln(w)
	}
	for _, c := range in.Consumers {
		if c.Reclaiming {
			fmt.Fprintf(w, "consumer entry %d: being reclaimed\n", c.Entry)
			continue
		}
		fmt.Fprintf(w, "consumer entry %d: pid %d uid %q name %q position %d holding %d\n",
			c.Entry, c.Pid, c.UID, c.Name, c.Position, c.Held)
	}
}
