package hubd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/pylabhub/plh/broker"
	"github.com/pylabhub/plh/shm"
)

// repairSegment creates a real segment with one committed slot (index 0) whose
// bytes are then damaged on disk, as a stray write would.
func repairSegment(t *testing.T) *shm.Block {
	t.Helper()
	name := fmt.Sprintf("plh_hubd_repair_%d_%d", os.Getpid(), time.Now().UnixNano())
	b, err := shm.Create(name, shm.Config{PageSize: shm.Page4K, Capacity: 4, Policy: shm.PolicyRingBuffer,
		Sync: shm.SingleReader, Checksum: shm.ChecksumEnforced, Secret: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	w, err := b.NewWriter(shm.WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, err := w.AcquireWrite(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	copy(s.Bytes(), "payload")
	if err := s.Commit(7); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
	in, err := shm.Inspect(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(shm.SegmentPath(name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xEE}, in.SlotOffset(0)+3); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRepairSlot(t *testing.T) {
	b := repairSegment(t)
	req := broker.RepairRequest{Channel: "c", ShmName: b.Name(), SlotIndex: 0, ProducerPID: uint64(os.Getpid())}

	// Not the registered producer's segment: refused, nothing written.
	for _, pid := range []uint64{uint64(os.Getpid()) + 1, 0, 1 << 40} {
		other := req
		other.ProducerPID = pid
		if _, err := RepairSlot(context.Background(), other); !errors.Is(err, ErrRepair) {
			t.Fatalf("producer pid %d: %v", pid, err)
		}
	}
	if rep, _ := shm.Check(b.Name(), false); len(rep.BadSlots) != 1 {
		t.Fatalf("a refused repair wrote: %+v", rep)
	}
	res, err := RepairSlot(context.Background(), req)
	if err != nil || !res.Repaired || res.Detail != "repaired" {
		t.Fatalf("repair: %+v %v", res, err)
	}
	if rep, _ := shm.Check(b.Name(), false); !rep.OK() {
		t.Fatalf("still damaged: %+v", rep)
	}
	if res, err := RepairSlot(context.Background(), req); err != nil || res.Repaired || res.Detail != "checksum_ok" {
		t.Fatalf("second repair: %+v %v", res, err)
	}
	for _, bad := range []broker.RepairRequest{
		{ShmName: b.Name(), SlotIndex: 4, ProducerPID: req.ProducerPID},
		{ShmName: b.Name(), SlotIndex: -1, ProducerPID: req.ProducerPID},
		{ShmName: "plh_hubd_repair_missing", ProducerPID: req.ProducerPID},
		{ShmName: "../etc/passwd", ProducerPID: req.ProducerPID},
	} {
		if _, err := RepairSlot(context.Background(), bad); !errors.Is(err, ErrRepair) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}

func TestChecksumPolicyNames(t *testing.T) {
	for name, want := range map[string]broker.ChecksumPolicy{"None": broker.ChecksumNone, "": broker.ChecksumNone,
		"NotifyOnly": broker.ChecksumNotifyOnly, "Repair": broker.ChecksumRepair} {
		got, hook := ChecksumPolicy(name)
		if got != want || (hook != nil) != (want == broker.ChecksumRepair) {
			t.Errorf("%q: %v (hook %t)", name, got, hook != nil)
		}
	}
	dir := t.TempDir()
	cfg, err := LoadConfig(Sources{ExplicitFile: writeFile(t, dir, "hub.json",
		`{"broker":{"checksum_repair_policy":"Repair"}}`), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if bc := cfg.BrokerConfig(nil); bc.Checksum != broker.ChecksumRepair || bc.RepairSlot == nil {
		t.Fatalf("%+v", bc)
	}
	if _, err := LoadConfig(Sources{ExplicitFile: writeFile(t, dir, "bad.json",
		`{"broker":{"checksum_repair_policy":"Fix"}}`), Getenv: noEnv}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad policy: %v", err)
	}
}
