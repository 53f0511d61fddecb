package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Every bench prints each ratio it holds to a target with ratio(): a readable line
// and a machine-readable "RATIO" line. "plh-bench all" runs each bench as a child
// process, passes its output through, collects the RATIO lines (and the RESULT
// lines of benches that print no RATIO line) and ends with one summary table.

// cmp says which side of the target passes.
type cmp string

const (
	atLeast cmp = ">="
	atMost  cmp = "<="
	noRatio cmp = "info" // shown without a target
)

// ratio prints one ratio against its target. A NaN value (no reference measured)
// prints as n/a and neither passes nor misses.
func ratio(name string, v float64, c cmp, target float64) {
	if c == noRatio {
		fmt.Printf("  %-52s %s (no target)\n", name, fmtRatio(v))
	} else {
		fmt.Printf("  %-52s %s (target %s %.2fx)\n", name, fmtRatio(v), c, target)
	}
	fmt.Printf("RATIO %s|%s|%s|%g\n", name, strconv.FormatFloat(v, 'g', 4, 64), c, target)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", v)
}

type ratioLine struct {
	bench, name string
	v           float64
	c           cmp
	target      float64
}

func (r ratioLine) verdict() string {
	switch {
	case r.c == noRatio:
		return "info"
	case math.IsNaN(r.v) || math.IsInf(r.v, 0):
		return "n/a"
	case r.c == atLeast && r.v >= r.target, r.c == atMost && r.v <= r.target:
		return "pass"
	}
	return "MISS"
}

func parseRatio(bench, line string) (ratioLine, bool) {
	f := strings.Split(strings.TrimPrefix(line, "RATIO "), "|")
	if len(f) != 4 {
		return ratioLine{}, false
	}
	v, err1 := strconv.ParseFloat(f[1], 64)
	t, err2 := strconv.ParseFloat(f[3], 64)
	if err1 != nil || err2 != nil {
		return ratioLine{}, false
	}
	return ratioLine{bench, f[0], v, cmp(f[2]), t}, true
}

// resultRatios derives ratios from the RESULT line of a bench that prints none
// (broker: plh's REG+DISC round trip against zmq4's DEALER/ROUTER round trip).
func resultRatios(bench, line string) []ratioLine {
	kv := map[string]float64{}
	for _, f := range strings.Fields(strings.TrimPrefix(line, "RESULT")) {
		k, v, ok := strings.Cut(f, "=")
		if x, err := strconv.ParseFloat(v, 64); ok && err == nil {
			kv[k] = x
		}
	}
	if a, b := kv["regdisc_per_s"], kv["zmq_rr_per_s"]; bench == "broker" && a > 0 && b > 0 {
		return []ratioLine{{bench, "broker REG+DISC/s / zmq4 DEALER-ROUTER round trips/s", a / b, noRatio, 0}}
	}
	return nil
}

// runAll runs every bench in a child process and prints the summary table.
func runAll(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "all:", err)
		return 1
	}
	status := 0
	var rows []ratioLine
	for _, n := range names() {
		if n == "demo" {
			continue // a demonstration, not a measurement
		}
		fmt.Printf("== %s\n", n)
		got, rc := runChildBench(self, n, args)
		if rc != 0 {
			status = rc
			rows = append(rows, ratioLine{n, "bench failed (exit " + strconv.Itoa(rc) + ")", math.NaN(), noRatio, 0})
		}
		rows = append(rows, got...)
	}
	printSummary(rows)
	return status
}

func runChildBench(self, name string, args []string) ([]ratioLine, int) {
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		return nil, 1
	}
	var rows, derived []ratioLine
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		if r, ok := parseRatio(name, line); ok && strings.HasPrefix(line, "RATIO ") {
			rows = append(rows, r)
		}
		if strings.HasPrefix(line, "RESULT") {
			derived = append(derived, resultRatios(name, line)...)
		}
	}
	_, _ = io.Copy(io.Discard, out)
	rc := 0
	if err := cmd.Wait(); err != nil {
		rc = 1
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
			rc = ee.ExitCode()
		}
	}
	if len(rows) == 0 {
		rows = derived
	}
	return rows, rc
}

func printSummary(rows []ratioLine) {
	fmt.Printf("\n== summary (load average %s)\n", loadAvg())
	fmt.Printf("%-8s %-60s %8s %10s %6s\n", "bench", "ratio", "value", "target", "")
	pass, miss := 0, 0
	for _, r := range rows {
		target := "-"
		if r.c != noRatio {
			target = fmt.Sprintf("%s %.2fx", r.c, r.target)
		}
		v := r.verdict()
		switch v {
		case "pass":
			pass++
		case "MISS":
			miss++
		}
		fmt.Printf("%-8s %-60s %8s %10s %6s\n", r.bench, r.name, fmtRatio(r.v), target, v)
	}
	fmt.Printf("%d pass, %d miss\n", pass, miss)
}
