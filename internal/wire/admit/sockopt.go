package admit

import (
	"errors"
	"math"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errNoFD: the connection or listener has no descriptor to ask.
var errNoFD = errors.New("admit: no file descriptor")

// deferAccept sets TCP_DEFER_ACCEPT on a TCP listener: the kernel hands over a
// connection only once the peer has sent something, or after d (whole seconds,
// at least 1). A silent connection then waits in the kernel (no descriptor, no
// goroutine) instead of in the Listener's bound. Other listeners: no-op.
func deferAccept(ln net.Listener, d time.Duration) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	secs := int(max(1, math.Ceil(d.Seconds())))
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
	}); err != nil {
		return err
	}
	return serr
}

// pending returns the bytes that have arrived on c and are not read yet
// (SIOCINQ), without blocking or consuming them.
func pending(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errNoFD
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		return 0, err
	}
	return n, ierr
}
