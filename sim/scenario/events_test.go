package scenario

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// docValues are backquoted words of docs/events.md's fields column that are
// values of a field or other words, not fields.
var docValues = []string{"producer", "consumer", "done", "signal", "error", "write_lock", "skip_marker", "hold_lock", "kill_holding_lock", "t",
	"clean", "process_dead", "heartbeat_timeout", "peer_heartbeat_timeout", "pattern", "shm", "peer",
	"written", "baseline", "t0", "run_end", "quiesced", "notify_only", "repaired", "not_repaired", "repair_failed"}

// TestEventKindsMatchDocs keeps EventKinds and docs/events.md's "Kinds" table
// equal: the same kinds, and per kind every field of the table appears in the
// row and every backquoted word of the row is a field, a kind or a known value.
func TestEventKindsMatchDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "## Kinds")
	if !ok {
		t.Fatal("docs/events.md has no Kinds section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|[^|]*\\|(.*)\\|\\s*$")
	word := regexp.MustCompile("`([a-z][a-z0-9_]*)`")
	docKinds := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		kind, fields := m[1], m[2]
		docKinds[kind] = true
		want, ok := EventKinds[kind]
		if !ok {
			t.Errorf("docs/events.md documents kind %q, EventKinds lacks it", kind)
			continue
		}
		var seen []string
		for _, w := range word.FindAllStringSubmatch(fields, -1) {
			seen = append(seen, w[1])
			if _, isKind := EventKinds[w[1]]; !isKind && !slices.Contains(want, w[1]) && !slices.Contains(docValues, w[1]) {
				t.Errorf("%s: docs/events.md names `%s`, which is neither a field in EventKinds nor a known value", kind, w[1])
			}
		}
		for _, f := range want {
			if !slices.Contains(seen, f) {
				t.Errorf("%s: field %q of EventKinds is not in docs/events.md's row", kind, f)
			}
		}
	}
	var missing []string
	for k := range EventKinds {
		if !docKinds[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("EventKinds has kinds docs/events.md's Kinds table lacks: %v", missing)
	}
}

// TestMetricSourcesAreKinds: every metric reads a documented kind and field.
func TestMetricSourcesAreKinds(t *testing.T) {
	for _, m := range metrics {
		kind, field, _ := MetricSource(Metric(m))
		if _, ok := EventKinds[kind]; !ok {
			t.Errorf("metric %s reads unknown kind %q", m, kind)
		}
		if field != "" && !hasField(kind, field) {
			t.Errorf("metric %s reads %s.%s, not a field", m, kind, field)
		}
	}
}
