package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The libzmq reference of the socket path: PUSH → PULL one way over TCP loopback in
// two Python processes through pyzmq (Debian's python3-zmq, on libzmq), NULL or
// CURVE. The PULL side binds, says its port (and CURVE public key), receives n
// messages and reports "END k tk tn n" like the hub consumer.

const python3 = "/usr/bin/python3"

const pyzmqScript = `
import sys, time, zmq
role, size, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
curve = sys.argv[4] == "curve"
ctx = zmq.Context()
if role == "pull":
    s = ctx.socket(zmq.PULL)
    pub = "-"
    if curve:
        pub, sec = zmq.curve_keypair()
        s.curve_server = True
        s.curve_secretkey = sec
        pub = pub.decode()
    port = s.bind_to_random_port("tcp://127.0.0.1")
    print("READY", port, pub, flush=True)
    k = n // 10
    tk = 0
    for i in range(n):
        m = s.recv(copy=size < 65536)
        if len(m) != size:
            sys.exit("got %d bytes, want %d" % (len(m), size))
        if i == k - 1:
            tk = time.monotonic_ns()
    print("END", k, tk, time.monotonic_ns(), n, flush=True)
else:
    s = ctx.socket(zmq.PUSH)
    if curve:
        s.curve_serverkey = sys.argv[6].encode()
        s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
    s.connect("tcp://127.0.0.1:" + sys.argv[5])
    msg = b"x" * size
    for i in range(n):
        s.send(msg, copy=size < 65536)
    s.close(linger=-1)
ctx.term()
`

// pyzmqAvailable reports why the libzmq reference cannot be measured (nil: it can).
var pyzmqAvailable = sync.OnceValue(func() error {
	out, err := exec.Command(python3, "-c", "import zmq; assert zmq.has('curve'); print(zmq.zmq_version())").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pyzmq with CURVE missing (%s -c 'import zmq': %v: %s)", python3, err, strings.TrimSpace(lastLine(string(out))))
	}
	return nil
})

// pyzmqVersion names the libzmq version pyzmq runs on, or "(pyzmq missing)".
func pyzmqVersion() string {
	out, err := exec.Command(python3, "-c", "import zmq; print(zmq.zmq_version())").Output()
	if err != nil {
		return "(pyzmq missing)"
	}
	return strings.TrimSpace(string(out))
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// libzmqRate runs one PUSH → PULL measurement and returns the PULL side's rate.
func libzmqRate(c socketCase, curve bool) (float64, error) {
	sec := "null"
	if curve {
		sec = "curve"
	}
	py := func(args ...string) *exec.Cmd {
		cmd := exec.Command(python3, append([]string{"-c", pyzmqScript}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		cmd.Stderr = os.Stderr
		return cmd
	}
	pull := py("pull", strconv.Itoa(c.size), strconv.Itoa(c.n), sec)
	stdout, err := pull.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := pull.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = pull.Process.Kill(); _ = pull.Wait() }()
	out := bufio.NewReader(stdout)
	f, err := expectLine(out, "READY")
	if err != nil || len(f) != 3 {
		return 0, fmt.Errorf("pyzmq PULL: %q %v", f, err)
	}
	push := py("push", strconv.Itoa(c.size), strconv.Itoa(c.n), sec, f[1], f[2])
	if err := push.Start(); err != nil {
		return 0, err
	}
	pushDone := make(chan error, 1)
	go func() { pushDone <- push.Wait() }()
	defer func() {
		_ = push.Process.Kill()
		if pushDone != nil {
			<-pushDone
		}
	}()
	end := make(chan []string, 1)
	go func() {
		f, err := expectLine(out, "END")
		if err != nil {
			f = nil
		}
		end <- f
	}()
	select {
	case f := <-end:
		if f == nil {
			return 0, fmt.Errorf("pyzmq PULL ended without END")
		}
		return windowRate(f)
	case err := <-pushDone:
		pushDone = nil
		if err != nil {
			return 0, fmt.Errorf("pyzmq PUSH: %w", err)
		}
		select { // PUSH sent everything (linger: delivered); PULL reports
		case f := <-end:
			if f == nil {
				return 0, fmt.Errorf("pyzmq PULL ended without END")
			}
			return windowRate(f)
		case <-time.After(30 * time.Second):
			return 0, fmt.Errorf("pyzmq PULL did not finish within 30 s of the last message")
		}
	}
}
