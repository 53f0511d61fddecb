package sim

import (
	"slices"
	"testing"

	"github.com/pylabhub/plh/sim/scenario"
)

// TestFaultTableCoversEveryKind: every fault kind a scenario may name has
// exactly one row in the engine's table, and the table has no other.
func TestFaultTableCoversEveryKind(t *testing.T) {
	var rows []string
	for _, fk := range faultTable {
		if fk.inject == nil {
			t.Errorf("%s: no inject", fk.kind)
		}
		rows = append(rows, string(fk.kind))
	}
	slices.Sort(rows)
	want := slices.Sorted(slices.Values(scenario.FaultKinds))
	if !slices.Equal(rows, want) {
		t.Fatalf("fault table rows %v, scenario kinds %v", rows, want)
	}
	for _, k := range []scenario.FaultKind{scenario.FaultPause, scenario.FaultLinkDelay, scenario.FaultLinkReset} {
		if fk, _ := faultKindOf(k); fk.undo == nil {
			t.Errorf("%s has a duration but no undo", k)
		}
	}
}
