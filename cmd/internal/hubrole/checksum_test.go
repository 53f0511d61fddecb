package hubrole

import (
	"errors"
	"testing"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/hubd"
)

// --checksum-repair-policy sets the broker's policy and, for Repair, its hook;
// an unknown value is a configuration error.
func TestChecksumFlag(t *testing.T) {
	var bc broker.Config
	if err := checksumFlag("Repair", &bc); err != nil || bc.Checksum != broker.ChecksumRepair || bc.RepairSlot == nil {
		t.Fatalf("Repair: %v %+v", err, bc)
	}
	if err := checksumFlag("None", &bc); err != nil || bc.Checksum != broker.ChecksumNone || bc.RepairSlot != nil {
		t.Fatalf("None: %v %+v", err, bc)
	}
	if err := checksumFlag("repair", &bc); !errors.Is(err, hubd.ErrConfig) {
		t.Fatalf("unknown value: %v", err)
	}
}
