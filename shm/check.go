package shm

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"
)

// CheckReport is the result of an integrity check.
type CheckReport struct {
	Name          string
	Problems      []string // empty = healthy
	SlotsVerified int      // committed slots whose checksum was verified
	BadSlots      []int    // slot indices whose checksum failed
	FlexChecked   bool
	FlexBad       bool
	Repaired      int // hashes recomputed in place (repair)
}

// OK reports whether no problem was found.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// String summarises the report: "NAME: ok (...)" or "NAME: N problem(s): ...".
func (r CheckReport) String() string {
	var sb strings.Builder
	if r.OK() {
		fmt.Fprintf(&sb, "%s: ok (%d committed slot checksums verified", r.Name, r.SlotsVerified)
		if r.FlexChecked {
			sb.WriteString(", flex zone verified")
		}
		if r.Repaired > 0 {
			fmt.Fprintf(&sb, ", %d hashes repaired", r.Repaired)
		}
		sb.WriteString(")")
		return sb.String()
	}
	fmt.Fprintf(&sb, "%s: %d problem(s): %s", r.Name, len(r.Problems), strings.Join(r.Problems, "; "))
	return sb.String()
}

func (r *CheckReport) addf(format string, a ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
}

// StuckText renders a held lock's age as the original's stuck_duration_ms:
// "stuck_duration_ms N", or "stuck_duration_ms unknown" for 0 (a lock whose
// holder never stored its acquisition time: another implementation, or the
// instant between taking the lock and storing it).
func StuckText(d time.Duration) string {
	if d <= 0 {
		return "stuck_duration_ms unknown"
	}
	return fmt.Sprintf("stuck_duration_ms %d", d.Milliseconds())
}

// Check opens the segment name for diagnostics and checks its integrity (see
// Block.Check). Tools, tests and the scenario engine share it.
func Check(name string, repair bool) (CheckReport, error) {
	b, err := OpenDiagnostic(name, nil)
	if err != nil {
		return CheckReport{Name: name}, err
	}
	defer b.Close()
	return b.Check(repair)
}

// Check validates the segment: magic, version, size against the file, layout hash and
// checksum, slot states, indices, write locks and consumers held by dead processes,
// then the checksums of every COMMITTED slot (holding it as a reader while hashing)
// and of the flex zone when the checksum policy is not None. With repair, failing
// hashes are recomputed in place (spec §9.5 Go choice; never re-creates the segment).
func (b *Block) Check(repair bool) (r CheckReport, err error) {
	r.Name = b.name
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	if b.closed.Load() {
		return r, ErrClosed
	}
	if err := b.CheckSize(); err != nil {
		r.addf("%v", err)
		return r, nil
	}
	h := b.h
	if m := atomic.LoadUint32(&h.magic); m != magicValue {
		r.addf("magic %#08x", m)
	}
	if h.verMajor != versionMajor || h.verMinor > versionMinor {
		r.addf("version %d.%d", h.verMajor, h.verMinor)
	}
	if h.layoutHash != headerLayoutHash {
		r.addf("header layout hash mismatch")
	}
	if h.layoutChecksum != h.layoutChecksumNow() {
		r.addf("layout checksum mismatch")
	}
	if lay := headerLayout(h); lay != b.lay {
		r.addf("geometry fields changed since attach")
		return r, nil
	}
	wi, ci, ri := atomic.LoadUint64(&h.writeIndex), atomic.LoadUint64(&h.commitIndex), atomic.LoadUint64(&h.readIndex)
	if ci != invalidID && ci >= wi {
		r.addf("commit_index %d ≥ write_index %d", ci, wi)
	}
	if ri > wi {
		r.addf("read_index %d > write_index %d", ri, wi)
	}
	for i := range h.consumers {
		c := &h.consumers[i]
		switch id := atomic.LoadUint64(&c.id); {
		case id == reclaiming:
			if since := atomic.LoadUint64(&c.lastHB); uint64(monoNow())-since >= stuckReclaim {
				r.addf("consumer entry %d stuck at the reclaiming sentinel", i)
			}
		case id != 0 && !b.alive(id):
			r.addf("consumer entry %d held by dead process %s", i, unpackString(id))
		case id != 0 && b.sync == SyncReader:
			if p := atomic.LoadUint64(&h.syncPositions[i]); p > wi {
				r.addf("consumer entry %d: position %d > write_index %d", i, p, wi)
			}
		}
	}
	for i := range b.slots {
		e := &b.slots[i]
		state, _, skipped := loadState(e)
		if state > stateDraining {
			r.addf("slot %d: invalid state %d", i, state)
			continue
		}
		if lock := atomic.LoadUint64(&e.writeLock); lock != 0 && !b.alive(lock) {
			r.addf("slot %d: write lock held by dead writer %s, %s", i, unpackString(lock), StuckText(heldFor(atomic.LoadUint64(&e.lockSince))))
		}
		if rc := atomic.LoadUint32(&e.readerCount); rc > maxPlausibleReaders {
			r.addf("slot %d: implausible reader count %d", i, rc)
		} else if rc, held, bad := b.unownedReaders(e, uint64(i)); bad {
			r.addf("slot %d: reader count %d, but registered consumers hold it %d times", i, rc, held)
		}
		if b.csum == ChecksumNone || state != stateCommitted || skipped == 1 {
			continue
		}
		verified, bad := b.verifyHeld(uint64(i), repair)
		switch {
		case verified && bad && repair:
			r.Repaired++
		case verified && bad:
			r.BadSlots = append(r.BadSlots, i)
			r.addf("slot %d: checksum mismatch", i)
		}
		if verified {
			r.SlotsVerified++
		}
	}
	if b.csum != ChecksumNone && b.lay.flexSize > 0 && h.flexChecksums[0].valid == 1 {
		r.FlexChecked = true
		if !b.verifyFlexChecksum() {
			if repair {
				b.storeFlexChecksum()
				r.Repaired++
			} else {
				r.FlexBad = true
				r.addf("flex zone: checksum mismatch")
			}
		}
	}
	if r.Repaired > 0 {
		b.recoveryAction()
	}
	return r, nil
}
