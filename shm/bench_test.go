package shm

import (
	"context"
	"testing"
)

func hotPair(tb testing.TB, size uint32, csum ChecksumPolicy, sp SyncPolicy) (*Block, *Writer, *Reader) {
	cfg := testConfig(8, sp)
	cfg.Checksum = csum
	b, err := Create(testName("hot"), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	w, _ := b.NewWriter(WaitOptions{})
	r, _ := b.NewReader(ReaderOptions{Name: "bench"})
	return b, w, r
}

func cycle(w *Writer, r *Reader, n int) {
	ctx := context.Background()
	s, err := w.AcquireWrite(ctx, 0)
	if err != nil {
		panic(err)
	}
	s.Bytes()[0] = 1
	s.Commit(n)
	s.Release()
	rs, err := r.AcquireRead(ctx, 0)
	if err != nil {
		panic(err)
	}
	_ = rs.Bytes()[0]
	rs.Release()
}

// The hot paths (acquire, commit, release on both sides) allocate nothing.
func TestHotPathAllocationFree(t *testing.T) {
	for _, csum := range []ChecksumPolicy{ChecksumNone, ChecksumEnforced} {
		for _, sp := range []SyncPolicy{LatestOnly, SingleReader, SyncReader} {
			b, w, r := hotPair(t, Page4K, csum, sp)
			cycle(w, r, 64)
			if a := testing.AllocsPerRun(200, func() { cycle(w, r, 64) }); a != 0 {
				t.Errorf("%v checksum %d: %.1f allocations per write+read", sp, csum, a)
			}
			b.Close()
		}
	}
}

func BenchmarkWriteReadCycle(b *testing.B) {
	for _, c := range []struct {
		name string
		csum ChecksumPolicy
	}{{"none", ChecksumNone}, {"blake2b", ChecksumEnforced}} {
		b.Run(c.name, func(b *testing.B) {
			blk, w, r := hotPair(b, Page4K, c.csum, SingleReader)
			defer blk.Close()
			b.ReportAllocs()
			b.SetBytes(4096)
			for b.Loop() {
				cycle(w, r, 4096)
			}
		})
	}
}

func BenchmarkAcquireCommit(b *testing.B) {
	blk, w, _ := hotPair(b, Page4K, ChecksumNone, LatestOnly)
	defer blk.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s, _ := w.AcquireWrite(ctx, 0)
		s.Commit(64)
		s.Release()
	}
}

func BenchmarkAcquireRead(b *testing.B) {
	blk, w, r := hotPair(b, Page4K, ChecksumNone, LatestOnly)
	defer blk.Close()
	ctx := context.Background()
	s, _ := w.AcquireWrite(ctx, 0)
	s.Commit(64)
	s.Release()
	b.ReportAllocs()
	for b.Loop() {
		rs, _ := r.AcquireRead(ctx, 0)
		rs.Drop() // not consumed: the same slot is offered again
	}
}
