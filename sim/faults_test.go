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
	// A fault with a duration ends (fault_end, the anchor "ID:end") exactly
	// when its row has an undo, or it records its own end (broker_restart).
	for _, fk := range faultTable {
		ends := fk.undo != nil || fk.kind == scenario.FaultBrokerRestart
		if got := (scenario.FaultSpec{Kind: fk.kind, Duration: 1}).Ends(); got != ends {
			t.Errorf("%s: scenario says Ends() = %t, the engine's row %t", fk.kind, got, ends)
		}
	}
}
