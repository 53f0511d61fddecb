package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pylabhub/plh/shm"
)

// reclaimStep bounds one write attempt of Reclaim, so the slot is re-inspected
// at least this often; reclaimGrace is how long Reclaim keeps trying to take
// the slot itself once the lock was seen reclaimed.
const (
	reclaimStep  = 100 * time.Millisecond
	reclaimGrace = 2 * time.Second
)

// Reclaim methods (Reclaimed.How).
const (
	// HowWriteLock: a writer reaching the slot took the dead holder's lock over
	// (shm AcquireWrite; write_lock_contention and recovery_actions rise).
	HowWriteLock = "write_lock"
	// HowSkipMarker: a blocked writer or a waiting ordered reader found the dead
	// writer's unfinished slot at read_index and turned it into a skip marker
	// (shm reap; recovery_actions rises).
	HowSkipMarker = "skip_marker"
)

// Reclaimers (Reclaimed.By).
const (
	ByEngine = "plh-sim"         // the LockWatch's own writer did it
	ByOther  = "another process" // e.g. a consumer's reader reaping while it waited
)

// LockWatch observes the reclaim of one slot write lock in a real segment: it
// attaches (with the segment's secret) while the holder is still alive and
// records the holder's identity and the recovery counters, then, once the
// holder is dead, Reclaim acts as the next writer and reports what happened.
// It starts no goroutine; Close detaches.
type LockWatch struct {
	b      *shm.Block
	slot   int
	holder string // identity "pid/start" of the lock holder at WatchLock
	pid    int
	base   shm.Metrics
	tap    *logTap
	held   time.Duration // the lock's age at WatchLock (shm SlotDiagnosis.LockHeld)
	at     time.Time     // when WatchLock read it
}

// Reclaimed describes an observed reclaim of a dead writer's lock.
type Reclaimed struct {
	Slot       int    // slot index
	HolderPid  int    // the dead writer
	Holder     string // its identity, "pid/start"
	By         string // ByEngine or ByOther
	How        string // HowWriteLock or HowSkipMarker
	Contention uint64 // rise of write_lock_contention since WatchLock
	Recovery   uint64 // rise of recovery_actions_count since WatchLock
	StuckSeen  bool   // Diagnose showed the slot stuck (dead holder) before the reclaim
	// StuckFor is how long the dead holder had held the lock (B-22, from the
	// acquisition time it stored in the slot entry): the stuck duration at the
	// last diagnosis before the reclaim, or, when another process reclaimed it
	// before the engine saw it stuck, the held time seen at WatchLock plus the
	// time until the reclaim was seen. 0 when the holder stored no time.
	StuckFor   time.Duration
	Reacquired bool // the engine's writer took the slot index itself afterwards
	Took       time.Duration
}

// WatchLock attaches to segment name with secret and records who holds slot's
// write lock now. The lock must be held (ErrLockNotHeld otherwise).
func WatchLock(name string, secret uint64, slot int) (*LockWatch, error) {
	tap := &logTap{}
	b, err := shm.Attach(name, secret, &shm.AttachOptions{Logger: slog.New(tap)})
	if err != nil {
		return nil, fmt.Errorf("chaos: watch lock: %w", err)
	}
	d, err := b.DiagnoseSlot(slot)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("chaos: watch lock %s: %w", name, err)
	}
	if d.Writer == "" {
		b.Close()
		return nil, fmt.Errorf("%w: %s slot %d", ErrLockNotHeld, name, slot)
	}
	return &LockWatch{b: b, slot: slot, holder: d.Writer, pid: d.WriterPid, base: b.Metrics(), tap: tap,
		held: d.LockHeld, at: time.Now()}, nil
}

// Holder returns the pid and identity ("pid/start") of the lock holder seen by
// WatchLock.
func (lw *LockWatch) Holder() (int, string) { return lw.pid, lw.holder }

// Reclaim is called once the holder is dead. It acquires write slots (aborting
// each, so nothing is published: ordered readers step over the skip markers)
// until the slot's lock no longer belongs to the dead holder and its own writer
// has taken the slot index, or, once the lock was reclaimed, reclaimGrace has
// passed (an ordered ring nobody reads stays full). It fails with
// ErrNotReclaimed when the lock is still the holder's after timeout, and with
// ErrHolderAlive when the holder is not dead.
func (lw *LockWatch) Reclaim(ctx context.Context, timeout time.Duration) (Reclaimed, error) {
	res := Reclaimed{Slot: lw.slot, HolderPid: lw.pid, Holder: lw.holder}
	start := time.Now()
	deadline := start.Add(timeout)
	w, err := lw.b.NewWriter(shm.WaitOptions{})
	if err != nil {
		return res, fmt.Errorf("chaos: reclaim %s: %w", lw.b.Name(), err)
	}
	defer w.Close()
	var reclaimedAt time.Time
	for {
		d, err := lw.b.DiagnoseSlot(lw.slot)
		if err != nil {
			return res, fmt.Errorf("chaos: reclaim %s: %w", lw.b.Name(), err)
		}
		switch {
		case reclaimedAt.IsZero() && d.Writer != lw.holder:
			reclaimedAt = time.Now()
			res.Took = reclaimedAt.Sub(start)
			if !res.StuckSeen && lw.held > 0 {
				res.StuckFor = lw.held + reclaimedAt.Sub(lw.at)
			}
		case reclaimedAt.IsZero() && d.IsStuck:
			res.StuckSeen, res.StuckFor = true, d.StuckDuration
		case reclaimedAt.IsZero():
			return res, fmt.Errorf("%w: %s slot %d holder %s", ErrHolderAlive, lw.b.Name(), lw.slot, lw.holder)
		}
		now := time.Now()
		if !reclaimedAt.IsZero() && (res.Reacquired || now.Sub(reclaimedAt) >= reclaimGrace) ||
			now.After(deadline) || ctx.Err() != nil {
			break
		}
		s, err := w.AcquireWrite(ctx, min(reclaimStep, deadline.Sub(now)))
		switch {
		case err == nil:
			// The holder's lock is gone once we hold the slot: taking it is
			// the reclaim itself (Latest_only) or follows it (ordered).
			if s.Index() == lw.slot {
				res.Reacquired = true
			}
			if err := s.Abort(); err != nil {
				return res, fmt.Errorf("chaos: reclaim %s: abort: %w", lw.b.Name(), err)
			}
		case errors.Is(err, shm.ErrTimeout) || ctx.Err() != nil:
		default:
			return res, fmt.Errorf("chaos: reclaim %s: %w", lw.b.Name(), err)
		}
	}
	if reclaimedAt.IsZero() {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("%w: %s slot %d still held by %s: %v", ErrNotReclaimed, lw.b.Name(), lw.slot, lw.holder, err)
		}
		return res, fmt.Errorf("%w: %s slot %d still held by %s after %v", ErrNotReclaimed, lw.b.Name(), lw.slot, lw.holder, timeout)
	}
	m := lw.b.Metrics()
	res.Contention = m.WriteLockContention - lw.base.WriteLockContention
	res.Recovery = m.RecoveryActions - lw.base.RecoveryActions
	if res.Recovery == 0 {
		return res, fmt.Errorf("%w: %s slot %d: the lock of %s is gone but recovery_actions did not rise",
			ErrNotReclaimed, lw.b.Name(), lw.slot, lw.holder)
	}
	res.How = HowSkipMarker
	if res.Contention > 0 {
		res.How = HowWriteLock
	}
	res.By = ByOther
	if lw.tap.reclaimed(lw.holder) {
		res.By = ByEngine
	}
	return res, nil
}

// Close detaches from the segment. Nil-safe and idempotent.
func (lw *LockWatch) Close() error {
	if lw == nil {
		return nil
	}
	return lw.b.Close()
}

// logTap is a slog.Handler keeping the holders named by the Block's warnings
// ("reclaimed write lock of dead writer", "dead writer left slot unfinished"):
// it tells whether the LockWatch's own Block performed the reclaim.
type logTap struct {
	mu      sync.Mutex
	holders []string
}

func (t *logTap) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (t *logTap) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "holder" {
			t.mu.Lock()
			t.holders = append(t.holders, a.Value.String())
			t.mu.Unlock()
		}
		return true
	})
	return nil
}

func (t *logTap) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t *logTap) WithGroup(string) slog.Handler      { return t }

func (t *logTap) reclaimed(holder string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range t.holders {
		if h == holder {
			return true
		}
	}
	return false
}
