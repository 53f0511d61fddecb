package scenario

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const basic = `name = "basic"
duration = "3s"

[hub]
channel_timeout = "2s"

[[producers]]
name = "p"
channel = "cam"
policy = "Single_reader"
slots = 8
rate = 200

[[consumers]]
name = "c"
instances = 2
channel = "cam"
delay_per_read = "5ms"

[[faults]]
id = "kill-c1"
at = "1s"
kind = "kill"
target = "c1"

[[random_faults]]
kinds = ["pause"]
targets = ["c2"]
interval = ["200ms", "600ms"]
window = ["1s", "2.5s"]
duration = ["50ms", "150ms"]

[[expect]]
kind = "consumer_died"
node = "p"
after = "kill-c1"
within = "2s"

[[expect]]
type = "metric"
metric = "lost"
node = "c*"
max = 0

[[expect]]
name = "c read"
type = "metric"
metric = "read"
node = "c*"
min = 1
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func loadOne(t *testing.T, body string) (*Plan, error) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"s.toml": body})
	vs, err := Load(filepath.Join(dir, "s.toml"))
	if err != nil {
		return nil, err
	}
	if len(vs) != 1 {
		t.Fatalf("%d variants", len(vs))
	}
	return Resolve(vs[0], 7)
}

func TestLoadBasic(t *testing.T) {
	p, err := loadOne(t, basic)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "basic" || p.Duration.D() != 3*time.Second || p.Hub.ChannelTimeout.D() != 2*time.Second {
		t.Fatalf("plan %+v", p)
	}
	var names []string
	for _, n := range p.Nodes {
		names = append(names, n.Role+":"+n.Name)
	}
	if got := strings.Join(names, ","); got != "producer:p,consumer:c1,consumer:c2" {
		t.Fatalf("nodes %s", got)
	}
	c1, _ := p.Node("c1")
	c2, _ := p.Node("c2")
	if c1.Exit != ExitKilled || c2.Exit != ExitClean || c1.DelayPerRead.D() != 5*time.Millisecond {
		t.Fatalf("c1 %+v c2 %+v", c1, c2)
	}
	if len(p.Faults) < 2 || p.Faults[0].ID != "kill-c1" || p.Faults[0].Signal != "KILL" {
		t.Fatalf("faults %+v", p.Faults)
	}
	for _, f := range p.Faults[1:] {
		if f.Kind != FaultPause || f.Target != "c2" || f.At.D() < time.Second || f.At.D() > 2500*time.Millisecond ||
			f.Duration.D() < 50*time.Millisecond || f.Duration.D() > 150*time.Millisecond {
			t.Fatalf("random fault out of its ranges: %+v", f)
		}
	}
	if p.Expect[0].Type != ExpectEvent || p.Expect[0].Name == "" || *p.Expect[1].Max != 0 {
		t.Fatalf("expect %+v", p.Expect)
	}
}

// TestResolveDeterministic: the same seed gives byte-identical resolved.toml,
// another seed a different schedule; the encoded plan reads back identically.
func TestResolveDeterministic(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.toml": basic})
	enc := func(seed uint64) []byte {
		vs, err := Load(filepath.Join(dir, "s.toml"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Resolve(vs[0], seed)
		if err != nil {
			t.Fatal(err)
		}
		b, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := enc(42), enc(42)
	if !bytes.Equal(a, b) {
		t.Fatalf("same seed, different schedules:\n%s\n---\n%s", a, b)
	}
	differs := false
	for seed := uint64(1); seed < 6; seed++ {
		if !bytes.Equal(a, enc(seed)) {
			differs = true
		}
	}
	if !differs {
		t.Fatal("five other seeds all gave the schedule of seed 42")
	}
	f := filepath.Join(t.TempDir(), "resolved.toml")
	if err := os.WriteFile(f, a, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPlan(f)
	if err != nil {
		t.Fatalf("resolved.toml does not load back: %v\n%s", err, a)
	}
	again, _ := p.Encode()
	if !bytes.Equal(a, again) {
		t.Fatalf("plan changed through encode/decode:\n%s\n---\n%s", a, again)
	}
}

func TestDecodeErrorsNameFileLineKey(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"unknown key", "name = \"x\"\nduration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\nslotz = 3\n",
			[]string{"s.toml:6", "slotz"}},
		{"bad duration", "name = \"x\"\nduration = \"soon\"\n", []string{"s.toml:2", "duration", "soon"}},
		{"bad type", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\nslots = \"many\"\n",
			[]string{"s.toml:5", "slots"}},
		{"bad enum", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\npolicy = \"Fastest\"\n",
			[]string{"s.toml:5", "policy", "Fastest"}},
		{"bad fault kind", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[faults]]\nat = \"1s\"\nkind = \"explode\"\n",
			[]string{"s.toml:7", "kind", "explode"}},
		{"unknown target", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[faults]]\nat = \"1s\"\nkind = \"kill\"\ntarget = \"ghost\"\n",
			[]string{"s.toml:8", "target", "ghost"}},
		{"wrong role", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[faults]]\nat = \"1s\"\nkind = \"slow_consumer\"\ntarget = \"p\"\ndelay = \"1ms\"\n",
			[]string{"s.toml:8", "target", "consumer"}},
		{"no duration", "name = \"x\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n", []string{"s.toml", "duration"}},
		{"duplicate node", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"p\"\nchannel = \"c\"\n",
			[]string{"s.toml:6", "already used"}},
		{"bad after", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[expect]]\nkind = \"ready\"\nafter = \"nope\"\n",
			[]string{"s.toml:7", "after", "nope"}},
		{"metric without bound", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[expect]]\ntype = \"metric\"\nmetric = \"lost\"\n",
			[]string{"metric"}},
		{"syntax", "duration = \"1s\n", []string{"s.toml:1"}},
		{"negative", "duration = \"-1s\"\n", []string{"s.toml:1", "negative"}},
		// A bare integer is not a duration (go-toml would take it as nanoseconds).
		{"unquoted duration", "duration = 3\n", []string{"s.toml:1", `"duration"`, "unquoted"}},
		{"unquoted fault at", "duration = \"3s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[faults]]\nat = 1\nkind = \"kill\"\ntarget = \"p\"\n",
			[]string{"s.toml:6", `"faults.at"`, "unquoted"}},
		{"unquoted fault duration", "duration = \"3s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[faults]]\nat = \"1s\"\nkind = \"pause\"\ntarget = \"p\"\nduration = 3\n",
			[]string{"s.toml:9", `"faults.duration"`, "unquoted"}},
		{"unquoted in a list", "duration = \"3s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[random_faults]]\nkinds = [\"pause\"]\ntargets = [\"p\"]\ninterval = [\"1s\", 2]\n",
			[]string{"s.toml:8", `"random_faults.interval"`, "unquoted"}},
		// Kinds and match fields are checked against docs/events.md (EventKinds).
		{"misspelt kind", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[expect]]\ntype = \"never\"\nkind = \"consumer_dead\"\n",
			[]string{"s.toml:7", `"expect.kind"`, "consumer_dead"}},
		{"misspelt match field", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[expect]]\ntype = \"never\"\nkind = \"notification\"\nmatch = { typ = \"CHANNEL_CLOSING_NOTIFY\" }\n",
			[]string{"s.toml:8", `"expect.match.typ"`, "notification events have no field"}},
		{"match field of another kind", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[expect]]\nkind = \"consumer_died\"\nmatch = { type = \"CONSUMER_DIED_NOTIFY\" }\n",
			[]string{"s.toml:7", `"expect.match.type"`}},
		{"metric match field", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[expect]]\ntype = \"metric\"\nmetric = \"read\"\nmatch = { chanel = \"c\" }\nmin = 1\n",
			[]string{"s.toml:8", `"expect.match.chanel"`, "read events"}},
		{"unknown exit field", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[expect]]\ntype = \"metric\"\nmetric = \"exit.lots\"\nmax = 0\n",
			[]string{"s.toml:7", `"expect.metric"`, "lots"}},
		// A bound that holds when nothing is read needs a read minimum.
		{"bound without a read minimum", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\nchannel = \"c\"\n[[faults]]\nat = \"0s\"\nkind = \"kill\"\ntarget = \"c\"\n[[expect]]\ntype = \"metric\"\nmetric = \"reorders\"\nnode = \"c\"\nmax = 0\n",
			[]string{"s.toml:14", `"expect.metric"`, "reads nothing", "min = 1"}},
		{"fault without an end", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\nchannel = \"c\"\n[[faults]]\nat = \"0s\"\nkind = \"kill\"\ntarget = \"c\"\n[[expect]]\nkind = \"ready\"\nafter = \"kill-c:end\"\n",
			[]string{"s.toml:14", `"expect.after"`, "has no end"}},
		{"unknown node ready", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\nchannel = \"c\"\n[[faults]]\nat = \"0s\"\nkind = \"kill\"\ntarget = \"c\"\n[[expect]]\nkind = \"ready\"\nafter = \"ghost:ready\"\n",
			[]string{"s.toml:14", `"expect.after"`, "ghost"}},
		{"bad until", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\nchannel = \"c\"\n[[faults]]\nat = \"0s\"\nkind = \"kill\"\ntarget = \"c\"\n[[expect]]\nkind = \"ready\"\nuntil = \"later\"\n",
			[]string{"s.toml:14", `"expect.until"`, "later"}},
		{"until and within", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\nchannel = \"c\"\n[[faults]]\nat = \"0s\"\nkind = \"kill\"\ntarget = \"c\"\n[[expect]]\nkind = \"ready\"\nuntil = \"stop\"\nwithin = \"1s\"\n",
			[]string{"s.toml:14", `"expect.until"`}},
		{"each without node", "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\nchannel = \"c\"\n[[faults]]\nat = \"0s\"\nkind = \"kill\"\ntarget = \"c\"\n[[expect]]\nkind = \"ready\"\neach = true\n",
			[]string{`"expect.each"`, "needs node"}},
		{"unquoted in a matrix", "duration = \"3s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[matrix]\n\"producers.start\" = [1, 2]\n",
			[]string{"s.toml:6", "producers.start", "unquoted"}},
	}
	for _, c := range cases {
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
}

// TestReadMinimumAndAnchorsAccepted: a bound paired with a read minimum of
// the same consumers, and every kind of anchor, validate.
func TestReadMinimumAndAnchorsAccepted(t *testing.T) {
	body := "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n[[consumers]]\nname = \"c\"\ninstances = 2\nchannel = \"c\"\n" +
		"[[faults]]\nid = \"nap\"\nat = \"0s\"\nkind = \"pause\"\ntarget = \"c1\"\nduration = \"100ms\"\n" +
		"[[faults]]\nid = \"bounce\"\nat = \"0s\"\nkind = \"broker_restart\"\n" +
		"[[expect]]\ntype = \"metric\"\nmetric = \"lost\"\nnode = \"c*\"\nmax = 0\n" +
		"[[expect]]\ntype = \"metric\"\nmetric = \"read\"\nnode = \"c*\"\neach = true\nmin = 10\n" +
		"[[expect]]\nkind = \"read\"\nafter = \"nap:end\"\n" +
		"[[expect]]\nkind = \"broker_reconnected\"\nafter = \"bounce:end\"\nwithin = \"2s\"\n" +
		"[[expect]]\nkind = \"read\"\nafter = \"c2:ready\"\n" +
		"[[expect]]\ntype = \"never\"\nkind = \"consumer_died\"\nafter = \"stop\"\n" +
		"[[expect]]\nkind = \"consumer_left\"\nuntil = \"stop\"\n"
	p, err := loadOne(t, body)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Expect[1].Each || p.Expect[6].Until != UntilStop {
		t.Fatalf("expect %+v", p.Expect)
	}
}

func TestIncludeAndMatrix(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"fragments/hub.toml": "[hub]\nconsumer_timeout = \"1s\"\n\n[[producers]]\nname = \"p\"\nchannel = \"cam\"\npolicy = \"Latest_only\"\n",
		"main.toml": `name = "m"
duration = "2s"
include = ["fragments/hub.toml"]

[[consumers]]
name = "c"
channel = "cam"

[matrix]
"producers.policy" = ["Single_reader", "Latest_only"]
"consumers.c.delay_per_read" = ["1ms", "10ms"]
`,
		"cycle_a.toml": "duration = \"1s\"\ninclude = [\"cycle_b.toml\"]\n",
		"cycle_b.toml": "include = [\"cycle_a.toml\"]\n",
		"abs.toml":     "duration = \"1s\"\ninclude = [\"/etc/passwd\"]\n",
		"missing.toml": "duration = \"1s\"\ninclude = [\"nope.toml\"]\n",
		"badmatrix.toml": "duration = \"1s\"\n[[producers]]\nname = \"p\"\nchannel = \"c\"\n" +
			"[matrix]\n\"producers.policy\" = [\"Bogus\"]\n",
	})
	vs, err := Load(filepath.Join(dir, "main.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 4 {
		t.Fatalf("%d variants, want 4", len(vs))
	}
	seen := map[string]bool{}
	for _, v := range vs {
		p, err := Resolve(v, 1)
		if err != nil {
			t.Fatal(err)
		}
		prod, _ := p.Node("p")
		cons, _ := p.Node("c")
		seen[string(prod.Policy)+"/"+cons.DelayPerRead.D().String()] = true
		if p.Hub.ConsumerTimeout.D() != time.Second || !strings.HasPrefix(p.Name, "m[") || len(p.Vars) != 2 {
			t.Fatalf("variant %s: %+v", p.Name, p)
		}
	}
	for _, want := range []string{"Single_reader/1ms", "Single_reader/10ms", "Latest_only/1ms", "Latest_only/10ms"} {
		if !seen[want] {
			t.Errorf("combination %s missing (have %v)", want, seen)
		}
	}
	for file, want := range map[string]string{"cycle_a.toml": "cycle", "abs.toml": "relative",
		"missing.toml": "nope.toml", "badmatrix.toml": "Bogus"} {
		if _, err := Load(filepath.Join(dir, file)); !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v (want ErrScenario mentioning %q)", file, err, want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(basic))
	f.Add([]byte("duration = \"1s\"\n[[producers]]\nname=\"p\"\nchannel=\"c\"\n[matrix]\n\"duration\" = [\"1s\",\"2s\"]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f.toml")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		vs, err := Load(p)
		if err != nil {
			if !errors.Is(err, ErrScenario) {
				t.Fatalf("error not ErrScenario: %v", err)
			}
			return
		}
		for _, v := range vs {
			if _, err := Resolve(v, 1); err != nil && !errors.Is(err, ErrScenario) {
				t.Fatalf("resolve: %v", err)
			}
		}
	})
}
