package shm

// Claiming a segment name (Create), giving it back (Close), and the sole-reader
// lock.
//
// Create formats the new segment in an unnamed file (O_TMPFILE) and only then
// links it under its name; the link fails when the name exists. So nobody ever
// sees a half-made segment under the name, and of two creators at the same
// instant exactly one wins. An existing name is replaced only when it is stale:
// its owners recorded in the header (the creator and the last producer, each a
// pid plus start time) are all dead, or it is not a valid segment. Otherwise
// Create fails with ErrSegmentInUse naming the live owner. The replacer holds an
// OFD lock on byte lockReplace of the stale file and checks, under it, that the
// name still names that file, so two creators replacing the same stale segment
// never remove each other's new one. Close unlinks the name only while it still
// names the creator's own file: a producer never removes a segment it did not
// create.
//
// OFD locks (F_OFD_SETLK) belong to an open file description: the kernel drops
// them when it is closed or its process dies, and two Blocks of one process do
// not share them.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pylabhub/plh/internal/proc"
)

// Bytes of the segment file that carry OFD locks (never data: locks are advisory).
const (
	lockReplace = 0 // held while a stale segment is judged and removed
	lockReader  = 1 // held by the sole reader (LockSoleReader)
)

// replaceLockWait bounds the wait for another replacer's lock.
const replaceLockWait = 2 * time.Second

// createUnnamed opens a new unnamed file in dir (O_TMPFILE, mode 0600).
func createUnnamed(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open unnamed file in %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir+"/(unnamed)"), nil
}

// publish links the formatted unnamed file f under path, replacing a stale
// segment of that name; ErrSegmentInUse when a live process owns it.
func publish(f *os.File, path, name string, log *slog.Logger) error {
	src := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	for range 8 {
		err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("link %s: %w", path, err)
		}
		if err := removeStale(path, name, log); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: the name is taken again each time it is freed", ErrSegmentInUse)
}

// removeStale removes the segment at path unless a live process owns it. It
// returns nil when the name is free to try again (removed by us or by someone
// else meanwhile).
func removeStale(path, name string, log *slog.Logger) error {
	g, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open existing segment: %w", err)
	}
	defer g.Close() // drops the lock
	if err := lockByte(g, lockReplace, replaceLockWait); err != nil {
		return err
	}
	if !sameFile(g, path) {
		return nil // replaced or removed meanwhile
	}
	owner, live, why := segmentOwner(g)
	if live {
		return fmt.Errorf("%w: %s is owned by live process %d (start time %d)", ErrSegmentInUse, name, owner.Pid, owner.StartTime)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale segment: %w", err)
	}
	log.Warn("replaced stale segment", "name", name, "why", why)
	return nil
}

// segmentOwner reads the header of f (pread, no mapping) and reports its first
// live owner (creator, then producer), or why the segment is stale.
func segmentOwner(f *os.File) (proc.Identity, bool, string) {
	buf := heapBuffer(headerSize)
	if n, err := f.ReadAt(buf, 0); n < headerSize {
		return proc.Identity{}, false, fmt.Sprintf("not a segment (header unreadable: %v)", err)
	}
	h := headerAt(buf)
	if h.magic != magicValue || h.layoutHash != headerLayoutHash {
		return proc.Identity{}, false, "not an initialised segment"
	}
	for _, id := range []uint64{h.creatorID, h.producerID} {
		if o := proc.Unpack(id); id != 0 && o.Alive() {
			return o, true, ""
		}
	}
	return proc.Identity{}, false, "its creator and producer are dead"
}

// lockByte takes an OFD write lock on byte off of f, retrying until wait ends.
func lockByte(f *os.File, off int64, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := tryLockByte(f, off)
		if err == nil || !errors.Is(err, ErrReaderLocked) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: another process holds the segment's replace lock", ErrSegmentInUse)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tryLockByte takes an OFD write lock on byte off of f at once; ErrReaderLocked
// (the generic "held by another open file") when someone else holds it.
func tryLockByte(f *os.File, off int64) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return ErrReaderLocked
	}
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// sameFile reports whether path names the file open as f.
func sameFile(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// LockSoleReader makes b the segment's only reader: it takes an OFD lock on the
// segment file that the kernel releases when b is closed or its process dies.
// ErrReaderLocked (wrapped with the name) when another attachment holds it.
// Readers that need it (a Single_reader ring, a Pipeline channel) take it right
// after Attach; readers that do not, never look at it.
func (b *Block) LockSoleReader() error {
	if b.heap {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() || b.file == nil {
		return ErrClosed
	}
	if err := tryLockByte(b.file, lockReader); err != nil {
		return fmt.Errorf("%s: %w", b.name, err)
	}
	return nil
}
