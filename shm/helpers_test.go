package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

var nameSeq atomic.Int64

// testName returns a unique segment name starting with "plh".
func testName(label string) string {
	return fmt.Sprintf("plh_unit_%s_%d_%d", label, os.Getpid(), nameSeq.Add(1))
}

// testConfig returns a small valid config.
func testConfig(n uint32, sync SyncPolicy) Config {
	return Config{Secret: 0xDEADBEEFCAFEBABE, PageSize: Page4K, Capacity: n, Policy: PolicyRingBuffer, Sync: sync}
}

// backing is where a test's block lives: a heap buffer (seen by -race) or a real
// /dev/shm segment.
type backing struct {
	name string
	mk   func(t *testing.T, cfg Config) *Block
}

var backings = []backing{
	{"heap", func(t *testing.T, cfg Config) *Block {
		b, err := newHeapBlock(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}},
	{"mmap", func(t *testing.T, cfg Config) *Block {
		b, err := Create(testName("t"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			b.Close()
			if _, err := os.Stat(b.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("segment %s left behind", b.path)
			}
		})
		return b
	}},
}

// forBackings runs f over every backing.
func forBackings(t *testing.T, f func(t *testing.T, mk func(*testing.T, Config) *Block)) {
	for _, bk := range backings {
		t.Run(bk.name, func(t *testing.T) { f(t, bk.mk) })
	}
}

func mustWriter(t *testing.T, b *Block) *Writer {
	t.Helper()
	w, err := b.NewWriter(WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func mustReader(t *testing.T, b *Block, name string) *Reader {
	t.Helper()
	r, err := b.NewReader(ReaderOptions{UID: "uid-" + name, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// writeSeq publishes one slot whose first 8 bytes are seq.
func writeSeq(t *testing.T, w *Writer, seq uint64, timeout time.Duration) error {
	t.Helper()
	s, err := w.AcquireWrite(context.Background(), timeout)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(s.Bytes(), seq)
	if err := s.Commit(8); err != nil {
		t.Fatal(err)
	}
	return s.Release()
}

// readSeq reads one slot and returns its sequence.
func readSeq(t *testing.T, r *Reader, timeout time.Duration) (uint64, error) {
	t.Helper()
	s, err := r.AcquireRead(context.Background(), timeout)
	if err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(s.Bytes())
	return v, s.Release()
}

func atomic64Store(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
