package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestRoundTripEveryPolicy(t *testing.T) {
	for _, sp := range []SyncPolicy{LatestOnly, SingleReader, SyncReader} {
		t.Run(sp.String(), func(t *testing.T) {
			forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
				b := mk(t, testConfig(4, sp))
				w, r := mustWriter(t, b), mustReader(t, b, "c")
				if _, err := r.AcquireRead(context.Background(), 0); !errors.Is(err, ErrTimeout) {
					t.Fatalf("read on empty ring: %v, want ErrTimeout", err)
				}
				if err := writeSeq(t, w, 42, 0); err != nil {
					t.Fatal(err)
				}
				v, err := readSeq(t, r, time.Second)
				if err != nil || v != 42 {
					t.Fatalf("read %d, %v", v, err)
				}
				m := b.Metrics()
				if m.TotalSlotsWritten != 1 || m.TotalSlotsRead != 1 || m.ChecksumFailures != 0 {
					t.Fatalf("metrics %+v", m)
				}
			})
		})
	}
}

// §9.2: release without commit is invisible; Latest_only returns the newest of 3;
// Single_reader returns them in order; acquire_write(0) on a full ordered ring fails.
func TestSlotProtocol(t *testing.T) {
	forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
		b := mk(t, testConfig(4, LatestOnly))
		w, r := mustWriter(t, b), mustReader(t, b, "c")
		s, err := w.AcquireWrite(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Release(); err != nil { // no commit
			t.Fatal(err)
		}
		if _, err := r.AcquireRead(context.Background(), 0); !errors.Is(err, ErrTimeout) {
			t.Fatalf("uncommitted slot visible: %v", err)
		}
		if b.Metrics().TotalSlotsWritten != 0 {
			t.Fatal("abort counted as written")
		}
		for i := uint64(1); i <= 3; i++ {
			if err := writeSeq(t, w, i, 0); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := readSeq(t, r, 0); err != nil || v != 3 {
			t.Fatalf("Latest_only read %d, %v; want 3", v, err)
		}
		if _, err := r.AcquireRead(context.Background(), 0); !errors.Is(err, ErrTimeout) {
			t.Fatalf("same latest delivered twice: %v", err)
		}
		for i := uint64(4); i <= 5; i++ {
			writeSeq(t, w, i, 0)
		}
		if b.Metrics().TotalSlotsWritten != 5 {
			t.Fatalf("total_slots_written %d, want 5", b.Metrics().TotalSlotsWritten)
		}
	})
	forBackings(t, func(t *testing.T, mk func(*testing.T, Config) *Block) {
		b := mk(t, testConfig(4, SingleReader))
		w, r := mustWriter(t, b), mustReader(t, b, "c")
		for i := uint64(1); i <= 4; i++ {
			if err := writeSeq(t, w, i, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := writeSeq(t, w, 5, 0); !errors.Is(err, ErrTimeout) {
			t.Fatalf("write on full Single_reader ring: %v, want ErrTimeout", err)
		}
		for i := uint64(1); i <= 4; i++ {
			if v, err := readSeq(t, r, 0); err != nil || v != i {
				t.Fatalf("read %d, %v; want %d", v, err, i)
			}
		}
		if m := b.Metrics(); m.WriterTimeoutCount != 1 {
			t.Fatalf("writer_timeout_count %d", m.WriterTimeoutCount)
		}
	})
}

// Concurrent writer and readers on a heap buffer under -race, every policy.
func TestConcurrentHeap(t *testing.T) {
	const total = 2000
	for _, sp := range []SyncPolicy{LatestOnly, SingleReader, SyncReader} {
		t.Run(sp.String(), func(t *testing.T) {
			cfg := testConfig(8, sp)
			cfg.FlexSize = 0
			b, err := newHeapBlock(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			nr := 2
			if sp == SingleReader {
				nr = 1
			}
			readers := make([]*Reader, nr)
			for i := range readers {
				readers[i] = mustReader(t, b, "c")
			}
			w := mustWriter(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, nr+1)
			for _, r := range readers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last uint64
					first := true
					for {
						s, err := r.AcquireRead(ctx, -1)
						if err != nil {
							errs <- err
							return
						}
						v := binary.LittleEndian.Uint64(s.Bytes())
						for i := 8; i < 64; i++ {
							if s.Bytes()[i] != byte(v+uint64(i)) {
								errs <- errors.New("payload mismatch")
								return
							}
						}
						if err := s.Release(); err != nil {
							errs <- err
							return
						}
						if sp.ordered() && !first && v != last+1 || !first && v <= last {
							errs <- errors.New("order broken")
							return
						}
						first, last = false, v
						if v == total-1 {
							return
						}
					}
				}()
			}
			for i := uint64(0); i < total; i++ {
				s, err := w.AcquireWrite(ctx, -1)
				if err != nil {
					t.Fatal(err)
				}
				buf := s.Bytes()
				binary.LittleEndian.PutUint64(buf, i)
				for k := 8; k < 64; k++ {
					buf[k] = byte(i + uint64(k))
				}
				s.Commit(64)
				if err := s.Release(); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// The futex path alone (no spinning), several writers, under -race.
func TestConcurrentFutexOnly(t *testing.T) {
	for _, sp := range []SyncPolicy{LatestOnly, SingleReader} {
		b, _ := newHeapBlock(testConfig(4, sp))
		noSpin := WaitOptions{Spin: -1}
		r, _ := b.NewReader(ReaderOptions{Wait: noSpin})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		const perWriter = 300
		var wg sync.WaitGroup
		for k := range 2 {
			w, _ := b.NewWriter(noSpin)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					if _, err := w.Write(ctx, -1, []byte{byte(k), byte(i)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		got := 0
		if sp == SingleReader {
			for got < 2*perWriter {
				s, err := r.AcquireRead(ctx, -1)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Release(); err != nil {
					t.Fatal(err)
				}
				got++
			}
		}
		wg.Wait()
		cancel()
		if m := b.Metrics(); m.TotalSlotsWritten != 2*perWriter {
			t.Fatalf("%v: written %d", sp, m.TotalSlotsWritten)
		}
		b.Close()
	}
}

func TestContextCancelAndPoolFull(t *testing.T) {
	b, _ := newHeapBlock(testConfig(1, SyncReader))
	defer b.Close()
	w := mustWriter(t, b)
	var readers []*Reader
	for i := range maxConsumers + 1 {
		r, err := b.NewReader(ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if i == maxConsumers && r.Entry() != -1 {
			t.Fatal("ninth consumer got an entry")
		}
		readers = append(readers, r)
	}
	writeSeq(t, w, 1, 0)
	if _, err := readers[maxConsumers].AcquireRead(context.Background(), 0); !errors.Is(err, ErrNoConsumerEntry) {
		t.Fatalf("reader without entry: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := w.AcquireWrite(ctx, -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write on a full ring: %v", err)
	}
	if v, err := readSeq(t, readers[0], 0); err != nil || v != 1 {
		t.Fatalf("first read: %d %v", v, err)
	}
	if _, err := readers[0].AcquireRead(ctx, -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled read: %v", err)
	}
}
