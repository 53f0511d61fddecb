package noderole

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// statusFile is --status-file: four native-endian uint64 words in a shared
// mapping of a small file, updated on every message, so what a node did in its
// last aggregation interval is still known after a SIGKILL (the page cache
// outlives the process). Words: StatusMagic, total (written or read), the last
// sequence, the writer incarnation (pid) of that last message. The engine
// (sim) reads it after a death without an exit event; the layout is the
// contract documented in docs/events.md.
type statusFile struct {
	mem   []byte
	words *[statusWords]uint64
}

// StatusMagic marks a status file written by plh-node.
const StatusMagic = 0x706c682d73746174 // "plh-stat"

const statusWords = 4

// openStatus creates (truncates) path and maps it; "" returns nil (no file).
func openStatus(path string) (*statusFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("status file: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(statusWords * 8); err != nil {
		return nil, fmt.Errorf("status file: %w", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, statusWords*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("status file: mmap: %w", err)
	}
	s := &statusFile{mem: mem, words: (*[statusWords]uint64)(unsafe.Pointer(&mem[0]))}
	atomic.StoreUint64(&s.words[0], StatusMagic)
	return s, nil
}

// set records the running total and the last message. Safe on a nil file.
func (s *statusFile) set(total, seq, from uint64) {
	if s == nil {
		return
	}
	atomic.StoreUint64(&s.words[2], seq)
	atomic.StoreUint64(&s.words[3], from)
	atomic.StoreUint64(&s.words[1], total)
}

// close unmaps the file (it stays on disk). Safe on a nil file.
func (s *statusFile) close() {
	if s == nil || s.mem == nil {
		return
	}
	_ = unix.Munmap(s.mem)
	s.mem, s.words = nil, nil
}
