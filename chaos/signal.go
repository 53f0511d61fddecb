package chaos

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ParseSignal accepts "KILL", "SIGKILL", "kill" or "9".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("%w: %q", ErrBadSignal, s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("%w: %q", ErrBadSignal, s)
	}
	return sig, nil
}

// SignalGroup sends sig to every process of the process group pgid.
func SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("chaos: refusing to signal process group %d", pgid)
	}
	if err := syscall.Kill(-pgid, sig); err != nil {
		return fmt.Errorf("chaos: signal %v to group %d: %w", sig, pgid, err)
	}
	return nil
}

// Pause stops every process of the group (SIGSTOP).
func Pause(pgid int) error { return SignalGroup(pgid, syscall.SIGSTOP) }

// Resume continues every process of the group (SIGCONT).
func Resume(pgid int) error { return SignalGroup(pgid, syscall.SIGCONT) }
