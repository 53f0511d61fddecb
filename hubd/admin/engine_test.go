package admin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func newTestEngine(t *testing.T, lim Limits) *Engine {
	t.Helper()
	return NewEngine(EngineConfig{HubName: "test.hub", Limits: lim})
}

func mustExec(t *testing.T, e *Engine, code string) string {
	t.Helper()
	out, err := e.Exec(context.Background(), "<test>", code)
	if err != nil {
		t.Fatalf("exec %q: %v", code, err)
	}
	return out
}

func TestEngineGlobalsPersist(t *testing.T) {
	e := newTestEngine(t, Limits{})
	mustExec(t, e, "x = 40\ndef add(a, b):\n    return a + b\n")
	if out := mustExec(t, e, "print(add(x, 2))"); out != "42\n" {
		t.Fatalf("output %q, want 42", out)
	}
	mustExec(t, e, "x += 1\nl = [1]\nm = l\nl += [2]")
	if out := mustExec(t, e, "print(x, m)"); out != "41 [1, 2]\n" {
		t.Fatalf("output %q: += must keep list aliasing", out)
	}
}

func TestEngineEchoAndModule(t *testing.T) {
	e := newTestEngine(t, Limits{})
	if out := mustExec(t, e, "plh.hub_name()"); out != "\"test.hub\"\n" {
		t.Fatalf("echo %q", out)
	}
	if out := mustExec(t, e, "pylabhub.__version__ == plh.version"); out != "True\n" {
		t.Fatalf("alias %q", out)
	}
	if out := mustExec(t, e, "None"); out != "" {
		t.Fatalf("None must not echo: %q", out)
	}
	if out := mustExec(t, e, "plh.channels()"); out != "[]\n" {
		t.Fatalf("channels without backend: %q", out)
	}
	_, err := e.Exec(context.Background(), "<test>", "plh.close('x')")
	if err == nil || !strings.Contains(err.Error(), ErrNotAvailable.Error()) {
		t.Fatalf("close without backend: %v", err)
	}
}

func TestEngineErrorKeepsOutput(t *testing.T) {
	e := newTestEngine(t, Limits{})
	out, err := e.Exec(context.Background(), "<test>", "print('before')\nfail('boom')")
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err %v", err)
	}
	if out != "before\n" {
		t.Fatalf("output %q", out)
	}
	if _, err := e.Exec(context.Background(), "<test>", "x = ("); err == nil {
		t.Fatal("syntax error accepted")
	}
	if _, err := e.Exec(context.Background(), "<test>", "undefined_name"); err == nil {
		t.Fatal("undefined name accepted")
	}
	if _, err := e.Exec(context.Background(), "<test>", "def f():\n    f()\nf()"); err == nil {
		t.Fatal("recursion accepted")
	}
}

func TestEngineRunawayCancelled(t *testing.T) {
	cases := map[string]string{
		"endless loop":      "while True:\n    pass",
		"steps":             "for i in range(1 << 40):\n    pass",
		"string repeat":     "s = 'x' * (1 << 40)",
		"list repeat":       "l = [0] * (1 << 29)",
		"doubling":          "s = 'ab'\nfor i in range(64):\n    s = s + s",
		"aug doubling":      "l = [1]\nfor i in range(64):\n    l += l",
		"index doubling":    "d = {'k': 'ab'}\nfor i in range(64):\n    d['k'] += d['k']",
		"format doubling":   "s = 'ab'\nfor i in range(64):\n    s = '%s%s' % (s, s)",
		"join":              "s = 'x' * 1000\nt = ''.join([s] * 100000)",
		"replace":           "s = 'x' * 100000\nt = s.replace('x', s)",
		"extend":            "l = [1]\nfor i in range(64):\n    l.extend(l)",
		"list(range)":       "l = list(range(1 << 40))",
		"all(range)":        "all(range(1, 1 << 60))",
		"int squaring":      "x = 3\nfor i in range(64):\n    x = x * x",
		"str of big list":   "s = 'x' * 1000000\nl = [s] * 1000\nt = str(l)",
		"format of big arg": "s = 'x' * 1000000\nt = '{}{}{}{}{}'.format(s, s, s, s, s)",
		"comprehension":     "l = [i for i in range(1 << 40)]",
	}
	e := newTestEngine(t, Limits{MaxSteps: 2_000_000, Timeout: 20 * time.Second, MaxValueLen: 1 << 20})
	for name, code := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.Exec(context.Background(), "<test>", code)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("want ErrLimit, got %v", err)
			}
			if out := mustExec(t, e, "print(1 + 1)"); out != "2\n" {
				t.Fatalf("engine unusable after runaway: %q", out)
			}
		})
	}
}

func TestEngineTimeout(t *testing.T) {
	e := newTestEngine(t, Limits{MaxSteps: 1 << 62, Timeout: 200 * time.Millisecond})
	_, err := e.Exec(context.Background(), "<test>", "while True:\n    pass")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("want time limit, got %v", err)
	}
}

func TestEngineContextCancel(t *testing.T) {
	e := newTestEngine(t, Limits{MaxSteps: 1 << 62, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Exec(ctx, "<test>", "while True:\n    pass")
		done <- err
	}()
	cancel()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("want cancellation, got %v", err)
	}
}

func TestEngineOutputCap(t *testing.T) {
	e := newTestEngine(t, Limits{MaxOutput: 100})
	out := mustExec(t, e, "for i in range(1000):\n    print('line', i)")
	if len(out) > 130 || !strings.HasSuffix(out, "[output truncated]\n") {
		t.Fatalf("output not capped: %d bytes %q", len(out), out)
	}
}

func TestEngineReset(t *testing.T) {
	e := newTestEngine(t, Limits{})
	mustExec(t, e, "x = 1")
	mustExec(t, e, "plh.reset()")
	if _, err := e.Exec(context.Background(), "<test>", "x"); err == nil {
		t.Fatal("x survived reset")
	}
	if out := mustExec(t, e, "plh.hub_name()"); out == "" {
		t.Fatal("plh lost by reset")
	}
}

func TestEngineGuardedOpsStillWork(t *testing.T) {
	e := newTestEngine(t, Limits{})
	code := `
a = "ab" * 3 + "c"
b = [1, 2] * 2 + [3]
c = 3 * [0]
d = "%s-%d" % ("x", 7)
e = ", ".join(["p", "q"])
f = "aXa".replace("X", "yy")
g = "{}+{k}".format(1, k=2)
h = [1]
h.extend((2, 3))
i = {"k": [1]}
i["k"] += [2]
j = [10, 20]
j[-1] += 1
k = 6 * 7
s = "x"
s *= 3
print(a, b, c, d, e, f, g, h, i, j, k, s, sorted([3, 1, 2]), list("ab".elems()), str(5), repr("q"))
`
	want := `abababc [1, 2, 1, 2, 3] [0, 0, 0] x-7 p, q ayya 1+2 [1, 2, 3] {"k": [1, 2]} [10, 21] 42 xxx [1, 2, 3] ["a", "b"] 5 "q"` + "\n"
	if out := mustExec(t, e, code); out != want {
		t.Fatalf("got  %q\nwant %q", out, want)
	}
	for _, bad := range []string{"x = 1\nx[0] += 1", "[1] + 1", "None.join([])", "t = (1,)\nt[0] += 1"} {
		if _, err := e.Exec(context.Background(), "<test>", bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestEngineConcurrentRequestsSerialised(t *testing.T) {
	e := newTestEngine(t, Limits{})
	mustExec(t, e, "n = 0")
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 25 {
				if _, err := e.Exec(context.Background(), "<test>", "n += 1"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	if out := mustExec(t, e, "n"); out != "100\n" {
		t.Fatalf("n = %q, want 100", out)
	}
}

func TestEngineHeapGrowthCancelled(t *testing.T) {
	e := newTestEngine(t, Limits{MaxSteps: 1 << 62, Timeout: time.Minute, MaxHeapGrowth: 32 << 20})
	_, err := e.Exec(context.Background(), "<test>", "l = []\nfor i in range(1 << 40):\n    l.append('x' * 1000)")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "heap grew") {
		t.Fatalf("want heap limit, got %v", err)
	}
	if out := mustExec(t, e, "print(len(l) > 0)"); out != "True\n" {
		t.Fatalf("partial globals lost: %q", out)
	}
	mustExec(t, e, "l = None")
}
