package proc

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// Watch reports the exit of watched processes through a callback. All watched
// processes share one goroutine blocked in epoll_wait(2) over their pidfds and an
// eventfd that wakes it for Close and for processes found dead at Add. Each
// watched process costs one pidfd, which Remove closes at once.
type Watch struct {
	onExit func(Identity)

	mu      sync.Mutex
	closed  bool
	watched map[Identity]watchEntry // pidfd (or -1: dead at Add, report pending)
	tokens  map[uint32]Identity     // epoll token → identity
	pending []Identity              // found dead at Add, reported by the loop
	next    uint32                  // last token handed out (0 is the wake-up eventfd)

	epfd, wakefd int
	done         chan struct{}
	closeOnce    sync.Once
}

type watchEntry struct {
	fd    int
	token uint32
}

// wakeToken marks the eventfd in epoll events; pidfds get tokens from 1 up (not
// reused before the counter wraps at 2^32), so an event for a removed pidfd whose
// number the kernel has handed out again is never taken for the new process.
const wakeToken = 0

// NewWatch returns a Watch that calls onExit (from its goroutine) once for each
// watched process that exits. onExit must not block for long and may call Add
// and Remove.
func NewWatch(onExit func(Identity)) (*Watch, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("proc: watch epoll: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("proc: watch eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeToken}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, fmt.Errorf("proc: watch epoll add: %w", err)
	}
	w := &Watch{onExit: onExit, watched: map[Identity]watchEntry{}, tokens: map[uint32]Identity{},
		epfd: epfd, wakefd: wakefd, done: make(chan struct{})}
	go w.loop()
	return w, nil
}

// Add starts watching id. If the process is already gone (or cannot be watched),
// onExit is called for it soon from the Watch's goroutine. Adding an identity
// twice is a no-op.
func (w *Watch) Add(id Identity) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if _, ok := w.watched[id]; ok {
		return nil
	}
	fd, err := unix.PidfdOpen(id.Pid, unix.PIDFD_NONBLOCK)
	if err == nil && !id.Alive() {
		unix.Close(fd)
		err = ErrNoProcess
	}
	if err == nil {
		w.nextToken()
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(w.next)}
		if err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		// Gone already (or not watchable): report it as exited.
		w.watched[id] = watchEntry{fd: -1}
		w.pending = append(w.pending, id)
		w.wake()
		return nil
	}
	w.watched[id] = watchEntry{fd: fd, token: w.next}
	w.tokens[w.next] = id
	return nil
}

// nextToken advances w.next to a token neither the eventfd's nor in use (after
// 2^32 Adds the counter wraps). Caller holds w.mu.
func (w *Watch) nextToken() {
	for {
		w.next++
		if _, used := w.tokens[w.next]; !used && w.next != wakeToken {
			return
		}
	}
}

// Remove stops watching id and closes its pidfd; onExit is not called for it.
func (w *Watch) Remove(id Identity) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.forgetLocked(id)
}

// Len returns the number of processes watched now.
func (w *Watch) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.watched)
}

// forgetLocked drops id and releases its pidfd. It reports whether id was watched.
func (w *Watch) forgetLocked(id Identity) bool {
	e, ok := w.watched[id]
	if !ok {
		return false
	}
	delete(w.watched, id)
	if e.fd >= 0 {
		delete(w.tokens, e.token)
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, e.fd, nil)
		unix.Close(e.fd)
	}
	return true
}

func (w *Watch) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(w.wakefd, one[:])
}

// loop is the Watch's one goroutine: it waits for pidfds to become readable
// (their process exited) or for the eventfd (pending reports, Close).
func (w *Watch) loop() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		var exited []Identity
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == wakeToken {
				var buf [8]byte
				_, _ = unix.Read(w.wakefd, buf[:])
				for _, id := range w.pending {
					if e, ok := w.watched[id]; ok && e.fd < 0 {
						w.forgetLocked(id)
						exited = append(exited, id)
					}
				}
				w.pending = nil
				continue
			}
			if id, ok := w.tokens[uint32(ev.Fd)]; ok && w.forgetLocked(id) {
				exited = append(exited, id)
			}
		}
		w.mu.Unlock()
		for _, id := range exited {
			w.onExit(id)
		}
	}
}

// Close stops the Watch's goroutine and closes its descriptors; no onExit call
// starts after Close returns. Idempotent.
func (w *Watch) Close() error {
	if w == nil {
		return nil
	}
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.wake()
		w.mu.Unlock()
		<-w.done
		w.mu.Lock()
		for id := range w.watched {
			w.forgetLocked(id)
		}
		w.mu.Unlock()
		unix.Close(w.wakefd)
		unix.Close(w.epfd)
	})
	return nil
}
