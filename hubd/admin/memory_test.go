package admin

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Each request allocates far more than MaxHeapGrowth in a handful of
// interpreter steps (docs/operations.md promises the heap-growth limit per
// request): each must fail with ErrLimit, and the live heap must not keep it.
func TestEngineRequestAllocationBounded(t *testing.T) {
	const limit = 32 << 20
	cases := map[string]string{
		"repeat in comprehension":   "x = [[0] * 1000000 for i in range(12)]",
		"slice in comprehension":    "x = [b[:] for i in range(12)]",
		"list() in comprehension":   "x = [list(b) for i in range(12)]",
		"concat in comprehension":   "x = [b + [1] for i in range(12)]",
		"items() in comprehension":  "x = [d.items() for i in range(12)]",
		"split() in comprehension":  "x = [s.split(',') for i in range(12)]",
		"string repeat, dict value": "x = {i: 'y' * 4000000 for i in range(12)}",
		"tuple() in loop":           "x = []\nfor i in range(12):\n    x.append(tuple(b))",
		"% in comprehension":        "x = ['%s' % s for i in range(100)]",
		"replace in comprehension":  "x = [s.replace(',', ';') for i in range(100)]",
		"upper() in comprehension":  "x = [t.upper() for i in range(100)]",
		"join in comprehension":     "x = [''.join([s]) for i in range(100)]",
		"dict() in comprehension":   "x = [dict(d) for i in range(100)]",
	}
	e := newTestEngine(t, Limits{MaxSteps: 1 << 40, Timeout: time.Minute, MaxHeapGrowth: limit, MaxGlobals: 64 << 20})
	mustExec(t, e, "b = [0] * 1000000\nd = {i: i for i in range(100000)}\ns = ',' * 1000000\nt = 'a' * 1000000")
	base := liveHeap()
	for name, code := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := e.Exec(context.Background(), "<test>", code)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("want ErrLimit, got %v", err)
			}
			if grown := int64(liveHeap()) - int64(base); grown > limit {
				t.Fatalf("live heap grew by %d MiB after a refused request", grown>>20)
			}
			if out := mustExec(t, e, "print(len(b))"); out != "1000000\n" {
				t.Fatalf("engine unusable after refusal: %q", out)
			}
		})
	}
}

// The persistent globals are capped (MaxGlobals): a request that would leave
// them over the cap fails and its assignments are undone; a value kept from
// before and grown in place past the cap clears the user globals.
func TestEngineGlobalsCapped(t *testing.T) {
	e := newTestEngine(t, Limits{MaxHeapGrowth: 64 << 20, MaxGlobals: 16 << 20})
	mustExec(t, e, "x = 1\nkeep = 'k'")
	_, err := e.Exec(context.Background(), "<test>", "x = [0] * 2000000\ny = 2")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "globals") {
		t.Fatalf("want globals limit, got %v", err)
	}
	if out := mustExec(t, e, "print(x, keep)"); out != "1 k\n" {
		t.Fatalf("assignment not undone: %q", out)
	}
	if _, err := e.Exec(context.Background(), "<test>", "y"); err == nil {
		t.Fatal("y of the refused request kept")
	}
	// Shared values count once: 12 references to one list.
	mustExec(t, e, "z = [[0] * 500000] * 12\nz = None")

	mustExec(t, e, "l = []")
	base := liveHeap()
	var last error
	for range 6 {
		if _, last = e.Exec(context.Background(), "<test>", "l.extend([0] * 600000)"); last != nil {
			break
		}
	}
	if !errors.Is(last, ErrLimit) || !strings.Contains(last.Error(), "globals") {
		t.Fatalf("growing a global in place: want globals limit, got %v", last)
	}
	if grown := int64(liveHeap()) - int64(base); grown > 16<<20 {
		t.Fatalf("globals still hold %d MiB", grown>>20)
	}
	if out := mustExec(t, e, "print(plh.hub_name())"); out != "test.hub\n" {
		t.Fatalf("engine unusable: %q", out)
	}
}
