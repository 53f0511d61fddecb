package chaos

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pylabhub/plh/shm"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(holderEnv); spec != "" {
		os.Exit(holdLockChild(spec)) // re-executed as a lock holder (reclaim_test.go)
	}
	goleak.VerifyTestMain(m)
}

// echoServer answers every line with the same line until the listener closes.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) (string, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	s, err := r.ReadString('\n')
	return strings.TrimSpace(s), err
}

func TestProxyForwardsDelaysAndResets(t *testing.T) {
	p, err := NewProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(t, c, r, "hello"); err != nil || got != "hello" {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	const d = 150 * time.Millisecond
	p.SetDelay(d)
	start := time.Now()
	if got, err := roundTrip(t, c, r, "slow"); err != nil || got != "slow" {
		t.Fatalf("delayed round trip = %q, %v", got, err)
	}
	// The delay applies in both directions: a lower bound, never an upper one.
	if el := time.Since(start); el < 2*d {
		t.Fatalf("round trip through a %v delay took only %v", d, el)
	}
	p.SetDelay(0)
	n, err := p.Reset(0)
	if err != nil || n != 1 {
		t.Fatalf("Reset = %d, %v; want 1 connection", n, err)
	}
	if _, err := roundTrip(t, c, r, "after"); err == nil {
		t.Fatal("connection survived a reset")
	}
	// New connections work again once the refusal window (0) is over.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(t, c2, bufio.NewReader(c2), "again"); err != nil || got != "again" {
		t.Fatalf("after reset = %q, %v", got, err)
	}
	if conns, resets := p.Stats(); conns != 2 || resets != 1 {
		t.Fatalf("stats = %d conns, %d resets", conns, resets)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	if _, err := p.Reset(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reset after Close = %v", err)
	}
}

func TestProxyRefusesDuringWindow(t *testing.T) {
	p, err := NewProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Reset(time.Hour); err != nil {
		t.Fatal(err)
	}
	if refused(t, p.Addr()) == nil {
		t.Fatal("connection accepted while refusing")
	}
}

func TestProxyUnreachableTarget(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	p, err := NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if refused(t, p.Addr()) == nil {
		t.Fatal("proxy to a closed port answered")
	}
}

// refused dials addr and exchanges one line; it returns the error that ended
// the attempt (the RST may arrive during the dial or on the first read).
func refused(t *testing.T, addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = roundTrip(t, c, bufio.NewReader(c), "x")
	return err
}

// fakeSegment writes a DataBlock-shaped file: header fields, slot entries and a
// ring whose slot i is filled with byte i+1.
func fakeSegment(t *testing.T, capacity, stride uint32, policy uint32, commit, read uint64, states []byte) (string, uint64) {
	t.Helper()
	d := (4096 + 97*uint64(capacity) + 4095) / 4096 * 4096
	total := d + uint64(capacity)*uint64(stride)
	b := make([]byte, total)
	le := binary.LittleEndian
	le.PutUint32(b[0:], 0x504C4842) // "PLHB"
	le.PutUint64(b[8:], total)
	le.PutUint32(b[152:], policy)
	le.PutUint32(b[156:], 4096)
	le.PutUint32(b[160:], stride)
	le.PutUint32(b[164:], capacity)
	le.PutUint64(b[192:], commit)
	le.PutUint64(b[200:], read)
	for i := uint64(0); i < uint64(capacity); i++ {
		b[4096+64*i+12] = states[i]
		for j := uint64(0); j < uint64(stride); j++ {
			b[d+i*uint64(stride)+j] = byte(i + 1)
		}
	}
	p := filepath.Join(t.TempDir(), "plh_seg")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, d
}

func TestCorruptSlotPicksTheNextUnreadSlot(t *testing.T) {
	path, ring := fakeSegment(t, 4, 64, 1, 6, 5, []byte{2, 2, 2, 2})
	detail, err := CorruptSlot(path, "next")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	// read_index 5 → slot index 1: bytes 8..15 flipped, the rest intact.
	for i := uint64(0); i < 4; i++ {
		for j := uint64(0); j < 64; j++ {
			got, want := b[ring+i*64+j], byte(i+1)
			if i == 1 && j >= 8 && j < 16 {
				want ^= 0xFF
			}
			if got != want {
				t.Fatalf("slot %d byte %d = %#x, want %#x (%s)", i, j, got, want, detail)
			}
		}
	}
	if !strings.Contains(detail, "[1]") {
		t.Fatalf("detail %q does not name slot 1", detail)
	}
}

func TestCorruptSlotLatestAndAll(t *testing.T) {
	path, ring := fakeSegment(t, 4, 64, 0, 6, 0, []byte{2, 1, 2, 0})
	if _, err := CorruptSlot(path, "next"); err != nil { // Latest_only → latest = 6 % 4 = 2
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if b[ring+2*64+8] != 3^0xFF {
		t.Fatal("latest slot not corrupted")
	}
	if _, err := CorruptSlot(path, "all"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if b[ring+0*64+8] != 1^0xFF || b[ring+1*64+8] != 2 || b[ring+3*64+8] != 4 || b[ring+2*64+8] != 3 {
		t.Fatal("all: only committed slots (0 and 2) must flip")
	}
}

func TestCorruptSlotRejects(t *testing.T) {
	path, _ := fakeSegment(t, 2, 64, 1, shm.NoCommit, 0, []byte{0, 0})
	if _, err := CorruptSlot(path, "next"); !errors.Is(err, ErrNoCommittedSlot) {
		t.Fatalf("nothing committed: %v", err)
	}
	path, _ = fakeSegment(t, 2, 64, 1, 1, 0, []byte{1, 1})
	if _, err := CorruptSlot(path, "all"); !errors.Is(err, ErrNoCommittedSlot) {
		t.Fatalf("no slot committed: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk")
	_ = os.WriteFile(junk, make([]byte, 8192), 0o600)
	if _, err := CorruptSlot(junk, "next"); !errors.Is(err, ErrNotDataBlock) {
		t.Fatalf("junk: %v", err)
	}
	// A header that claims more slots than the file holds.
	path, _ = fakeSegment(t, 2, 64, 1, 1, 0, []byte{2, 2})
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	var big [4]byte
	binary.LittleEndian.PutUint32(big[:], 1<<20)
	_, _ = f.WriteAt(big[:], 164)
	f.Close()
	if _, err := CorruptSlot(path, "next"); !errors.Is(err, ErrNotDataBlock) {
		t.Fatalf("oversized header: %v", err)
	}
	if _, err := CorruptSlot(filepath.Join(t.TempDir(), "missing"), "next"); err == nil {
		t.Fatal("missing segment accepted")
	}
}

func TestHeldLocks(t *testing.T) {
	path, _ := fakeSegment(t, 3, 64, 1, 1, 0, []byte{2, 1, 0})
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], uint64(cmd.Process.Pid))
	_, _ = f.WriteAt(w[:], 4096+64*1)
	binary.LittleEndian.PutUint64(w[:], uint64(os.Getpid()))
	_, _ = f.WriteAt(w[:], 4096+64*2)
	f.Close()
	locks, err := HeldLocks(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 2 || locks[0].Slot != 1 || locks[0].Alive || locks[1].Slot != 2 || !locks[1].Alive {
		t.Fatalf("locks = %+v", locks)
	}
}

func TestSignals(t *testing.T) {
	for _, s := range []string{"KILL", "sigterm", "9", "stop"} {
		if _, err := ParseSignal(s); err != nil {
			t.Errorf("ParseSignal(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"NOPE", "0", "99", ""} {
		if _, err := ParseSignal(s); !errors.Is(err, ErrBadSignal) {
			t.Errorf("ParseSignal(%q) = %v, want ErrBadSignal", s, err)
		}
	}
	if err := SignalGroup(1, syscall.SIGKILL); err == nil {
		t.Fatal("signalling group 1 allowed")
	}
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	state := func() byte {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		s := string(b)
		return s[strings.LastIndexByte(s, ')')+2]
	}
	waitState := func(want byte) {
		deadline := time.Now().Add(10 * time.Second)
		for state() != want {
			if time.Now().After(deadline) {
				t.Fatalf("state %c, want %c", state(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := Pause(pid); err != nil {
		t.Fatal(err)
	}
	waitState('T')
	if err := Resume(pid); err != nil {
		t.Fatal(err)
	}
	waitState('S')
	if err := SignalGroup(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("wait = %v", err)
	}
	if err := SignalGroup(pid, syscall.SIGKILL); err == nil {
		t.Fatal("signalling a gone group succeeded")
	}
}

func TestControlLines(t *testing.T) {
	if got := string(SetDelay(20 * time.Millisecond)); got != `{"cmd":"set","delay_per_read":"20ms"}`+"\n" {
		t.Fatalf("SetDelay = %q", got)
	}
	if got := string(HoldLock()); got != `{"cmd":"hold_lock"}`+"\n" {
		t.Fatalf("HoldLock = %q", got)
	}
}
