package shm_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pylabhub/plh/shm"
)

// The byte-slice API: zero-copy spans of shared memory.
func Example() {
	name := fmt.Sprintf("plh_example_bytes_%d", os.Getpid())
	cfg := shm.Config{Secret: 42, PageSize: shm.Page4K, Capacity: 8,
		Policy: shm.PolicyRingBuffer, Sync: shm.SingleReader}
	blk, err := shm.Create(name, cfg)
	if err != nil {
		panic(err)
	}
	defer blk.Close() // the creator unlinks the segment

	w, _ := blk.NewWriter(shm.WaitOptions{})
	slot, _ := w.AcquireWrite(context.Background(), 100*time.Millisecond)
	n := copy(slot.Bytes(), "hello, ring")
	slot.Commit(n)
	slot.Release()

	// Usually another process: attach with the shared secret.
	peer, _ := shm.Attach(name, 42, nil)
	defer peer.Close()
	r, _ := peer.NewReader(shm.ReaderOptions{UID: "c1", Name: "example"})
	rs, _ := r.AcquireRead(context.Background(), time.Second)
	fmt.Printf("slot %d: %s\n", rs.ID(), rs.Bytes()[:n])
	fmt.Println("release:", rs.Release())
	// Output:
	// slot 0: hello, ring
	// release: <nil>
}

// Frame is a plain fixed-size struct stored in each slot.
type Frame struct {
	Sequence uint64     `blds:"sequence"`
	Value    float64    `blds:"value"`
	Label    [16]byte   `blds:"label,c"`
	Samples  [32]uint16 `blds:"samples"`
}

// Meta is the flex-zone struct shared by all slots.
type Meta struct {
	ProducerPid uint64 `blds:"producer_pid"`
}

// The typed API: generics over plain structs, schemas checked at attach.
func Example_typed() {
	name := fmt.Sprintf("plh_example_typed_%d", os.Getpid())
	cfg := shm.Config{PageSize: shm.Page4K, Capacity: 4, FlexSize: 64, Secret: 7,
		Policy: shm.PolicyRingBuffer, Sync: shm.LatestOnly}
	blk, err := shm.CreateTyped[Meta, Frame](name, cfg)
	if err != nil {
		panic(err)
	}
	defer blk.Close()
	tw, _ := shm.NewTypedWriter[Meta, Frame](blk, shm.WaitOptions{})
	tw.Write(context.Background(), 0, func(m *Meta, f *Frame) error {
		m.ProducerPid = 1234
		f.Sequence, f.Value = 1, 2.5
		copy(f.Label[:], "adc0")
		return nil
	})

	peer, err := shm.AttachTyped[Meta, Frame](name, 7, nil)
	if err != nil {
		panic(err)
	}
	defer peer.Close()
	tr, _ := shm.NewTypedReader[Meta, Frame](peer, shm.ReaderOptions{Name: "typed"})
	tr.Read(context.Background(), time.Second, func(m *Meta, f *Frame) error {
		fmt.Println(m.ProducerPid, f.Sequence, f.Value, string(f.Label[:4]))
		return nil
	})
	s, _ := shm.SchemaOf[Frame]()
	fmt.Println(s.BLDS())
	// Output:
	// 1234 1 2.5 adc0
	// sequence:u64;value:f64;label:c[16];samples:u16[32]
}
