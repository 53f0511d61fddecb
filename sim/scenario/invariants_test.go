package scenario

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

const invHead = "duration = \"3s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\nchannel = \"c\"\n"

func TestInvariantsAndNewExpectationsValidate(t *testing.T) {
	bad := []struct {
		name, body string
		want       []string
	}{
		{"except without reason", invHead + "[invariants]\nconsumers_read = { except = [\"c\"] }\n", []string{"except needs the reason"}},
		{"except of an unknown node", invHead + "[invariants]\nconsumers_read = { except = [\"x*\"], reason = \"r\" }\n", []string{"matches no node"}},
		{"except on a global invariant", invHead + "[invariants]\nregistry_matches = { except = [\"c\"], reason = \"r\" }\n", []string{"judges no node"}},
		{"unknown invariant", invHead + "[invariants]\nregistry_match = { off = \"x\" }\n", []string{"invariants.registry_match", "unknown invariant"}},
		{"off without reason", invHead + "[invariants]\nno_false_death = { off = \"\" }\n", []string{"invariants.no_false_death", "reason"}},
		{"resource on a pattern", invHead + "[[expect]]\ntype = \"resource\"\nnode = \"c*\"\nmetric = \"fds\"\nmax_growth = 1\n", []string{"one process"}},
		{"resource metric", invHead + "[[expect]]\ntype = \"resource\"\nnode = \"hub\"\nmetric = \"handles\"\nmax_growth = 1\n", []string{"fds, threads, rss, goroutines"}},
		{"resource without bound", invHead + "[[expect]]\ntype = \"resource\"\nnode = \"hub\"\nmetric = \"fds\"\n", []string{"max_growth"}},
		{"delivery mode", invHead + "[[expect]]\ntype = \"delivery\"\ndelivery = \"twice\"\nchannel = \"c\"\n", []string{"twice"}},
		{"delivery channel", invHead + "[[expect]]\ntype = \"delivery\"\ndelivery = \"each\"\nchannel = \"nope\"\n", []string{"no producer writes channel"}},
		{"max_growth elsewhere", invHead + "[[expect]]\nkind = \"ready\"\nmax_growth = 1\n", []string{"max_growth belongs"}},
		{"per_fault on an event", invHead + "[[expect]]\nkind = \"ready\"\nper_fault = true\n", []string{"per_fault"}},
		{"faults without per_fault", invHead + "[[expect]]\ntype = \"count\"\nkind = \"ready\"\nfaults = \"k*\"\nmin = 1\n", []string{"per_fault = true"}},
		{"distinct beyond the pairs", invHead + "[[random_faults]]\nkinds = [\"pause\"]\ntargets = [\"c\"]\ncount = 2\ninterval = [\"100ms\"]\nduration = [\"10ms\"]\ndistinct = true\n",
			[]string{"distinct", "1 pairs"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadOne(t, c.body)
			if !errors.Is(err, ErrScenario) {
				t.Fatalf("err = %v, want ErrScenario", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	p, err := loadOne(t, invHead+"[invariants]\nregistry_matches = { off = \"defect 3\" }\n"+
		"[[expect]]\ntype = \"resource\"\nnode = \"hub\"\nmetric = \"FDS\"\nmax_growth = 4\n"+
		"[[expect]]\ntype = \"delivery\"\ndelivery = \"Exactly_Once\"\nchannel = \"c\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.Invariants["registry_matches"].Off != "defect 3" || p.Expect[0].Metric != "fds" || p.Expect[1].Delivery != "exactly_once" {
		t.Errorf("plan %+v / %+v", p.Invariants, p.Expect)
	}
	if !strings.Contains(string(mustEncode(t, p)), "registry_matches") {
		t.Error("resolved.toml lacks the invariant turned off")
	}
}

func mustEncode(t *testing.T, p *Plan) []byte {
	t.Helper()
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDistinctDrawsEachPairOnce: without replacement, 6 faults over 2 kinds
// × 3 targets are the 6 pairs; with replacement (same seed) pairs repeat.
func TestDistinctDrawsEachPairOnce(t *testing.T) {
	body := "duration = \"10s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\ninstances = 3\nchannel = \"c\"\n" +
		"[[random_faults]]\nkinds = [\"pause\", \"kill\"]\ntargets = [\"c1\", \"c2\", \"c3\"]\ncount = 6\ninterval = [\"100ms\"]\nduration = [\"10ms\"]\n"
	pairs := func(p *Plan) map[string]int {
		m := map[string]int{}
		for _, f := range p.Faults {
			m[string(f.Kind)+"/"+f.Target]++
		}
		return m
	}
	repeated := false
	for seed := uint64(1); seed <= 20; seed++ {
		vs, err := loadVariants(t, body+"distinct = true\n")
		if err != nil {
			t.Fatal(err)
		}
		p, err := Resolve(vs[0], seed)
		if err != nil {
			t.Fatal(err)
		}
		if m := pairs(p); len(m) != 6 || len(p.Faults) != 6 {
			t.Fatalf("seed %d: distinct drew %v", seed, m)
		}
		vs, _ = loadVariants(t, body)
		q, _ := Resolve(vs[0], seed)
		repeated = repeated || len(pairs(q)) < 6
	}
	if !repeated {
		t.Error("with replacement no seed of 20 repeated a pair: the test cannot tell the two apart")
	}
}

func loadVariants(t *testing.T, body string) ([]Variant, error) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"s.toml": body})
	return Load(filepath.Join(dir, "s.toml"))
}
