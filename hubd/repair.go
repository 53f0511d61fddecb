package hubd

import (
	"context"
	"fmt"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/shm"
)

// RepairSlot is the broker's Config.RepairSlot under checksum_repair_policy
// "Repair" (B-16): it opens the channel's segment as a diagnostic tool (no
// secret, no registration; the hub runs as the producer's user on its host),
// checks that the segment is the registered producer's (its creator or the
// process of its producer heartbeat is r.ProducerPID), and recomputes the
// reported slot's hash if it fails (shm.Block.RepairSlotChecksum: the slot is
// held as a reader meanwhile).
//
// DANGEROUS, hence opt-in: the recomputed hash vouches for the slot's current
// bytes, corrupted or not, so readers that would have refused the slot accept
// it. It suits streams where a damaged item is better delivered than retried
// for ever (e.g. an ordered reader re-offered a slot whose hash was damaged,
// not its data); never data whose integrity matters more than its flow.
//
// The check against the registered producer keeps a client from pointing the
// hub at another process's segment: shm_name is whatever the producer
// registered, and any client can send CHECKSUM_ERROR_REPORT.
func RepairSlot(_ context.Context, r broker.RepairRequest) (broker.RepairResult, error) {
	b, err := shm.OpenDiagnostic(r.ShmName, nil)
	if err != nil {
		return broker.RepairResult{}, fmt.Errorf("%w: %w", ErrRepair, err)
	}
	defer b.Close()
	if r.ProducerPID > 1<<22 || !b.OwnedBy(int(r.ProducerPID)) { // Linux pids are at most 2^22
		return broker.RepairResult{}, fmt.Errorf("%w: segment %s is not producer pid %d's", ErrRepair, r.ShmName, r.ProducerPID)
	}
	res, err := b.RepairSlotChecksum(int(r.SlotIndex))
	if err != nil {
		return broker.RepairResult{}, fmt.Errorf("%w: %w", ErrRepair, err)
	}
	return broker.RepairResult{Repaired: res == shm.SlotRepaired, Detail: res.String()}, nil
}
