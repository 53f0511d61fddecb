package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Identity names one process for its whole life: pid plus start time.
type Identity struct {
	Pid       int    // process id
	StartTime uint64 // start time in clock ticks after boot; 0 = unknown
}

// String returns "pid/starttime".
func (id Identity) String() string {
	return strconv.Itoa(id.Pid) + "/" + strconv.FormatUint(id.StartTime, 10)
}

var (
	selfOnce sync.Once
	selfID   Identity
)

// Self returns the identity of the calling process.
func Self() Identity {
	selfOnce.Do(func() {
		pid := os.Getpid()
		st, err := StartTime(pid)
		if err != nil {
			st = 0
		}
		selfID = Identity{Pid: pid, StartTime: st}
	})
	return selfID
}

// Lookup returns the identity of the live process pid, or ErrNoProcess.
func Lookup(pid int) (Identity, error) {
	st, err := StartTime(pid)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Pid: pid, StartTime: st}, nil
}

// StartTime reads the start time (clock ticks after boot) of pid from
// /proc/PID/stat. A zombie or missing process gives ErrNoProcess.
func StartTime(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	// The command name (field 2) is in parentheses and may contain spaces or ')':
	// fields after it start after the last ')'.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("pid %d: unparsable /proc stat", pid)
	}
	fields := bytes.Fields(data[end+1:])
	// fields[0] is field 3 (state); start time is field 22 → fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("pid %d: short /proc stat", pid)
	}
	if fields[0][0] == 'Z' || fields[0][0] == 'X' {
		return 0, fmt.Errorf("pid %d is a zombie: %w", pid, ErrNoProcess)
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// Alive reports whether the process named by id is still running. A zero
// StartTime means "unknown" and falls back to AlivePid.
func (id Identity) Alive() bool {
	if id.Pid <= 0 {
		return false
	}
	st, err := StartTime(id.Pid)
	if err != nil {
		// /proc unreadable for another reason: ask the kernel.
		return !errors.Is(err, ErrNoProcess) && AlivePid(id.Pid)
	}
	return id.StartTime == 0 || st == id.StartTime
}

// AlivePid reports whether pid names a running, non-zombie process. It follows the
// original's rules (pid 0 → false; EPERM → alive) and additionally treats zombies
// as dead.
func AlivePid(pid int) bool {
	if pid <= 0 || pid > 1<<22 {
		return false
	}
	err := unix.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return false
	}
	if _, serr := StartTime(pid); errors.Is(serr, ErrNoProcess) {
		return false
	}
	return true
}

// Pack folds an identity into one word: the pid in the low 22 bits (Linux's
// PID_MAX_LIMIT is 2^22) and the start time in the high 42 bits. Zero stays zero.
func (id Identity) Pack() uint64 {
	return uint64(id.Pid)&pidMask | (id.StartTime&startMask)<<22
}

// Unpack reverses Pack.
func Unpack(w uint64) Identity {
	return Identity{Pid: int(w & pidMask), StartTime: w >> 22}
}

const (
	pidMask   = 1<<22 - 1
	startMask = 1<<42 - 1
)

// Now returns CLOCK_MONOTONIC in nanoseconds. It allocates nothing.
func Now() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}
