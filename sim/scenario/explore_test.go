package scenario

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// exploreHead: a producer with shared memory (ps), one without (pn) on
// another channel, a consumer on each.
const exploreHead = `duration = "5s"
[[producers]]
name = "ps"
channel = "a"
shm = true
[[producers]]
name = "pn"
channel = "b"
[[consumers]]
name = "ca"
channel = "a"
[[consumers]]
name = "cb"
channel = "b"
`

func loadVariant(t *testing.T, body string) (Variant, error) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"s.toml": body})
	vs, err := Load(filepath.Join(dir, "s.toml"))
	if err != nil {
		return Variant{}, err
	}
	return vs[0], nil
}

func TestExploreAndNewFaultKindsValidate(t *testing.T) {
	bad := []struct{ name, body, want string }{
		{"no kinds", exploreHead + "[explore]\ntargets = [\"ca\"]\n", "explore needs kinds"},
		{"kind not explorable", exploreHead + "[explore]\nkinds = [\"heal\"]\n", "unknown explorable fault kind \"heal\""},
		{"unknown target", exploreHead + "[explore]\nkinds = [\"kill\"]\ntargets = [\"zz\"]\n", "unknown target \"zz\""},
		{"kind fits no target", exploreHead + "[explore]\nkinds = [\"slow_consumer\"]\ntargets = [\"ps\"]\n", "slow_consumer fits none of the targets"},
		{"shm kind without shm", exploreHead + "[explore]\nkinds = [\"corrupt_control\"]\ntargets = [\"pn\"]\n", "corrupt_control fits none"},
		{"max_faults", exploreHead + "[explore]\nkinds = [\"kill\"]\nmax_faults = 21\n", "between 1 and 20"},
		{"window after the run", exploreHead + "[explore]\nkinds = [\"kill\"]\nwindow = [\"1s\", \"9s\"]\n", "ends after the run"},
		{"window order", exploreHead + "[explore]\nkinds = [\"kill\"]\nwindow = [\"2s\", \"1s\"]\n", "min ≤ max"},
		{"hub_pause without duration", exploreHead + "[[faults]]\nat = \"1s\"\nkind = \"hub_pause\"\n", "hub_pause needs duration"},
		{"hub_pause of a node", exploreHead + "[[faults]]\nat = \"1s\"\nkind = \"hub_pause\"\ntarget = \"ca\"\nduration = \"1s\"\n", "targets the hub"},
		{"churn of the hub", exploreHead + "[[faults]]\nat = \"1s\"\nkind = \"consumer_churn\"\ntarget = \"hub\"\n", "want a producer or consumer"},
		{"restart of a consumer", exploreHead + "[[faults]]\nat = \"1s\"\nkind = \"producer_restart\"\ntarget = \"ca\"\n", "want a producer"},
		{"control word", exploreHead + "[[faults]]\nat = \"1s\"\nkind = \"corrupt_control\"\ntarget = \"ps\"\ncontrol = \"slots\"\n", "unknown control target \"slots\""},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadVariant(t, c.body)
			if !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrScenario containing %q", err, c.want)
			}
		})
	}
}

func TestExplorePairsFitTheirKinds(t *testing.T) {
	v, err := loadVariant(t, exploreHead+`[explore]
kinds = ["slow_consumer", "corrupt_control", "hub_pause", "kill"]
targets = ["ps", "pn", "ca", "hub"]
`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range ExplorePairs(v) {
		got = append(got, string(f.Kind)+" "+f.Target)
	}
	want := "slow_consumer ca|corrupt_control ps|hub_pause hub|kill ps|kill pn|kill ca"
	if strings.Join(got, "|") != want {
		t.Fatalf("pairs %q, want %q", strings.Join(got, "|"), want)
	}
	if lo, hi := ExploreWindow(v); lo.D().String() != "500ms" || hi.D().String() != "4s" {
		t.Fatalf("default window %v..%v, want 500ms..4s", lo.D(), hi.D())
	}
}

// TestWithFaultsResolvesLikeAFile: a drawn schedule gets the defaults,
// ids, channels and exit modes a file listing it would.
func TestWithFaultsResolvesLikeAFile(t *testing.T) {
	v, err := loadVariant(t, exploreHead+"[explore]\nkinds = [\"kill\"]\n[[faults]]\nat = \"1s\"\nkind = \"kill\"\ntarget = \"cb\"\n")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := WithFaults(v, []FaultSpec{
		{At: Duration(2e9), Kind: FaultConsumerChurn, Target: "ca"},
		{At: Duration(1e9), Kind: FaultHubPause, Duration: Duration(3e8)},
		{At: Duration(3e9), Kind: FaultCorruptControl, Target: "ps"},
		{At: Duration(4e9), Kind: FaultProducerRestart, Target: "ps"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Scenario.Faults) != 1 {
		t.Fatal("WithFaults changed the variant it was given")
	}
	p, err := Resolve(v2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Faults) != 4 {
		t.Fatalf("faults %+v: the file's own kill must be replaced", p.Faults)
	}
	hp, churn, cc, rs := p.Faults[0], p.Faults[1], p.Faults[2], p.Faults[3]
	if hp.Target != HubName || !hp.Ends() {
		t.Errorf("hub_pause %+v: target hub, ends", hp)
	}
	if churn.Count != 5 || churn.Every.D().String() != "50ms" || churn.Channel != "a" || churn.NodeName() != "consumer_churn-ca" {
		t.Errorf("consumer_churn %+v", churn)
	}
	if cc.Control != "random" || cc.Channel != "a" {
		t.Errorf("corrupt_control %+v", cc)
	}
	if rs.Signal != "KILL" {
		t.Errorf("producer_restart %+v: signal KILL", rs)
	}
	for _, n := range p.Nodes {
		want := ExitClean
		if n.Channel == "a" {
			want = ExitAny // corrupt_control on a: a consumer may stop with an error
		}
		if n.Exit != want {
			t.Errorf("%s exit %s, want %s (a restarted producer ends as its successor)", n.Name, n.Exit, want)
		}
	}
}
