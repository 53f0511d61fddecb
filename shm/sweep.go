package shm

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SweepOptions selects leftover segments.
type SweepOptions struct {
	Prefix string        // name prefix; "" = "plh"
	Grace  time.Duration // unreadable or uninitialised files younger than this are kept; 0 = 30 s
	Logger *slog.Logger
}

// Sweep removes leftover segments in /dev/shm whose name starts with the prefix and
// whose owners are all gone: the creator, the last producer (heartbeat identity) and
// every registered consumer are dead. Files that are not valid segments are removed
// once older than Grace. It returns the removed names.
func Sweep(opts SweepOptions) ([]string, error) {
	return sweepDir(shmDir, opts)
}

func sweepDir(dir string, opts SweepOptions) ([]string, error) {
	if opts.Prefix == "" {
		opts.Prefix = "plh"
	}
	if opts.Grace <= 0 {
		opts.Grace = 30 * time.Second
	}
	log := logger(opts.Logger)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, de := range ents {
		if !de.Type().IsRegular() || !strings.HasPrefix(de.Name(), opts.Prefix) {
			continue
		}
		path := filepath.Join(dir, de.Name())
		dead, why := segmentOwnersDead(path, opts.Grace)
		if !dead {
			continue
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("sweep: remove failed", "path", path, "err", err)
			continue
		}
		log.Info("sweep: removed leftover segment", "name", de.Name(), "why", why)
		removed = append(removed, de.Name())
	}
	return removed, nil
}

// segmentOwnersDead reads the header with pread (no mapping, so no fault) and
// decides whether everybody who used the segment is gone.
func segmentOwnersDead(path string, grace time.Duration) (bool, string) {
	f, err := os.Open(path)
	if err != nil {
		return false, ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, ""
	}
	old := time.Since(st.ModTime()) > grace
	if dead, ok := groupFileDead(f, old); ok { // a consumer group's companion (group_segment.go)
		if dead {
			return true, "consumer group segment whose members are dead"
		}
		return false, ""
	}
	buf := heapBuffer(headerSize)
	if st.Size() < headerSize {
		return old, "not a segment (short file)"
	}
	if _, err := f.ReadAt(buf, 0); err != nil {
		return old, "unreadable header"
	}
	h := headerAt(buf)
	if h.magic != magicValue || h.layoutHash != headerLayoutHash {
		return old, "not an initialised segment"
	}
	b := &Block{self: 0}
	for _, id := range []uint64{h.creatorID, h.producerID} {
		if id != 0 && b.alive(id) {
			return false, ""
		}
	}
	for i := range h.consumers {
		if id := h.consumers[i].id; id != 0 && id != reclaiming && b.alive(id) {
			return false, ""
		}
	}
	return true, "creator, producer and consumers are dead"
}
