package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/pylabhub/plh"

// p returns the import path pattern of a plh package; "x/..." matches x and
// every package below it.
func p(rel string) string { return module + "/" + rel }

// rule is one promise of docs/architecture.md about what the packages matching
// from may link (their transitive non-test imports).
type rule struct {
	name string
	from []string
	// only, when set, lists every plh package from may link; any other plh
	// package is forbidden.
	only []string
	// never lists packages (plh or not) from must not link.
	never []string
}

var testLibs = []string{"go.uber.org/goleak/...", "github.com/onsi/ginkgo/...", "github.com/onsi/ginkgo/v2/...", "github.com/onsi/gomega/..."}

var library = []string{p("shm/..."), p("broker/..."), p("hub/..."), p("internal/..."), p("nodeevent")}

var rules = []rule{
	{name: "shm imports no plh package but internal/proc", from: []string{p("shm/...")},
		only: []string{p("shm/..."), p("internal/proc")}},
	{name: "broker/proto imports no plh package", from: []string{p("broker/proto")},
		only: []string{p("broker/proto")}},
	{name: "broker imports only broker/proto, internal/wire, internal/proc and internal/trace; never hub or hubd", from: []string{p("broker/...")},
		only:  []string{p("broker/..."), p("internal/wire"), p("internal/wire/curve"), p("internal/wire/admit"), p("internal/proc"), p("internal/trace")},
		never: []string{p("hub/..."), p("hubd/...")}},
	{name: "the library imports neither sim, chaos, hubd nor cmd", from: library,
		never: []string{p("sim/..."), p("chaos/..."), p("hubd/..."), p("cmd/..."), p("suites/...")}},
	{name: "hub imports only shm, broker/proto and internal (never broker, never hubd)", from: []string{p("hub/...")},
		only:  []string{p("hub/..."), p("shm/..."), p("broker/proto"), p("internal/...")},
		never: []string{p("hubd/...")}},
	{name: "nodeevent imports only internal/event and internal/proc", from: []string{p("nodeevent")},
		only: []string{p("nodeevent"), p("internal/event"), p("internal/proc")}},
	{name: "internal holds only the lowest packages", from: []string{p("internal/...")},
		only: []string{p("internal/...")}},
	{name: "hubd (the hub process) does not import hub, sim, chaos or cmd", from: []string{p("hubd/...")},
		never: []string{p("hub/..."), p("sim/..."), p("chaos/..."), p("cmd/..."), p("suites/...")}},
	{name: "hubd imports only broker, broker/proto, shm and internal", from: []string{p("hubd/...")},
		only: []string{p("hubd/..."), p("broker/..."), p("shm/..."), p("internal/...")}},
	{name: "chaos imports only shm and internal/proc", from: []string{p("chaos/...")},
		only: []string{p("chaos/..."), p("shm/..."), p("internal/proc")}},
	{name: "the engine and nodeevent link no test library (only sim/simtest may)",
		from:  []string{p("sim"), p("sim/scenario"), p("sim/verdict"), p("sim/report"), p("chaos/..."), p("nodeevent")},
		never: testLibs},
	{name: "no binary links a test library", from: []string{p("cmd/...")},
		never: append([]string{p("suites/..."), p("internal/wire/wiretest")}, testLibs...)},
}

func TestImportRules(t *testing.T) {
	graph := loadGraph(t)
	for _, r := range rules {
		for _, v := range violations(graph, r) {
			t.Errorf("%s: %s", r.name, v)
		}
	}
}

// TestRulesCatchViolations proves the checker can fail: a graph with one
// forbidden arrow per rule kind must be reported.
func TestRulesCatchViolations(t *testing.T) {
	graph := map[string][]string{
		p("shm"):            {p("internal/proc"), p("internal/event")},
		p("internal/proc"):  nil,
		p("internal/event"): nil,
		p("cmd/plh-x"):      {p("hubd")},
		p("hubd"):           {p("internal/wire")},
		p("internal/wire"):  {"go.uber.org/goleak"},
		p("hub"):            {p("hubd")},
	}
	check := func(r rule, want string) {
		t.Helper()
		got := strings.Join(violations(graph, r), "\n")
		if !strings.Contains(got, want) {
			t.Errorf("rule %q: violations %q, want one mentioning %q", r.name, got, want)
		}
	}
	check(rules[0], p("internal/event"))             // only: shm -> internal/event
	check(rules[len(rules)-1], "go.uber.org/goleak") // never, transitive through hubd and wire
	check(rule{name: "hub not hubd", from: []string{p("hub/...")}, never: []string{p("hubd/...")}}, p("hubd"))
	// only restricts plh packages: wire's external import is no violation.
	if v := violations(graph, rule{name: "internal", from: []string{p("internal/...")}, only: []string{p("internal/...")}}); len(v) != 0 {
		t.Errorf("internal rule: %q, want none", v)
	}
}

// violations returns, for every package matching r.from, each package it links
// that r forbids, with the import chain that reaches it.
func violations(graph map[string][]string, r rule) []string {
	var out []string
	for _, from := range slices.Sorted(maps.Keys(graph)) {
		if !matchAny(from, r.from) {
			continue
		}
		for dep, chain := range reach(graph, from) {
			plh := dep == module || strings.HasPrefix(dep, module+"/")
			bad := matchAny(dep, r.never) || (r.only != nil && plh && !matchAny(dep, r.only))
			if bad {
				out = append(out, fmt.Sprintf("%s links %s (via %s)", from, dep, strings.Join(chain, " -> ")))
			}
		}
	}
	sort.Strings(out)
	return out
}

// reach returns every package from links (transitively, pending edges skipped)
// with one import chain leading to it.
func reach(graph map[string][]string, from string) map[string][]string {
	seen := map[string][]string{}
	var walk func(pkg string, chain []string)
	walk = func(pkg string, chain []string) {
		for _, dep := range graph[pkg] {
			if _, ok := seen[dep]; ok {
				continue
			}
			next := append(append([]string(nil), chain...), dep)
			seen[dep] = next
			walk(dep, next)
		}
	}
	walk(from, []string{from})
	return seen
}

// loadGraph returns the non-test import graph of the module's packages and
// everything they link, from `go list -deps -json ./...` run at the module root.
func loadGraph(t *testing.T) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	root, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Imports", "./...")
	cmd.Dir = strings.TrimSpace(string(root))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.Bytes())
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		var pkg struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		graph[pkg.ImportPath] = pkg.Imports
	}
	if len(graph[p("hub")]) == 0 {
		t.Fatalf("go list returned no imports for %s: wrong directory?", p("hub"))
	}
	return graph
}

func matchAny(path string, patterns []string) bool {
	for _, pat := range patterns {
		if base, ok := strings.CutSuffix(pat, "/..."); ok {
			if path == base || strings.HasPrefix(path, base+"/") {
				return true
			}
		} else if path == pat {
			return true
		}
	}
	return false
}
