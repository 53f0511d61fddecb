package proc

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed is returned by Watch.Add after Close.
var ErrClosed = errors.New("proc: watch closed")

// Watch reports the exit of watched processes through a callback. Each watched
// process costs one pidfd and one goroutine blocked in poll(2) on it (plus a shared
// wake-up pipe so Close can stop them at once).
type Watch struct {
	onExit func(Identity)

	mu      sync.Mutex
	closed  bool
	watched map[Identity]int // pidfd per identity
	wakeR   int
	wakeW   int
	wg      sync.WaitGroup
}

// NewWatch returns a Watch that calls onExit (from its own goroutine) once for
// each watched process that exits. onExit must not block for long.
func NewWatch(onExit func(Identity)) (*Watch, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, fmt.Errorf("proc: watch pipe: %w", err)
	}
	return &Watch{onExit: onExit, watched: map[Identity]int{}, wakeR: p[0], wakeW: p[1]}, nil
}

// Add starts watching id. If the process is already gone, onExit is called at once
// (from a new goroutine). Adding an identity twice is a no-op.
func (w *Watch) Add(id Identity) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if _, ok := w.watched[id]; ok {
		return nil
	}
	fd, err := unix.PidfdOpen(id.Pid, 0)
	if err != nil || !id.Alive() {
		// Gone already (or pidfd refused): report it as exited.
		if err == nil {
			unix.Close(fd)
		}
		w.watched[id] = -1
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.fire(id)
		}()
		return nil
	}
	w.watched[id] = fd
	w.wg.Add(1)
	go w.wait(id, fd)
	return nil
}

// Remove stops watching id (its goroutine ends when the process exits or at Close;
// onExit is not called for it).
func (w *Watch) Remove(id Identity) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.watched, id)
}

func (w *Watch) wait(id Identity, fd int) {
	defer w.wg.Done()
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(w.wakeR), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if fds[1].Revents != 0 {
			return // Close
		}
		if fds[0].Revents != 0 {
			w.fire(id)
			return
		}
	}
}

func (w *Watch) fire(id Identity) {
	w.mu.Lock()
	_, still := w.watched[id]
	delete(w.watched, id)
	closed := w.closed
	w.mu.Unlock()
	if still && !closed {
		w.onExit(id)
	}
}

// Close stops every goroutine of the Watch and closes its descriptors. Idempotent.
func (w *Watch) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	_, _ = unix.Write(w.wakeW, []byte{1})
	w.wg.Wait()
	unix.Close(w.wakeR)
	unix.Close(w.wakeW)
	return nil
}
