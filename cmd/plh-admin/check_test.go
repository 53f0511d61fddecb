package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/shm"
)

// checkSegment creates a real segment with two committed slots.
func checkSegment(t *testing.T) *shm.Block {
	t.Helper()
	b, err := shm.Create(fmt.Sprintf("plh_admin_check_%d_%d", os.Getpid(), time.Now().UnixNano()),
		shm.Config{Secret: 9, PageSize: shm.Page4K, Capacity: 4, Policy: shm.PolicyRingBuffer, Sync: shm.SingleReader})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	w, err := b.NewWriter(shm.WaitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 2 {
		if _, err := w.Write(context.Background(), time.Second, []byte{byte(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func runCheckArgs(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(append([]string{"check"}, args...), nil, &out, &errOut)
	return code, out.String(), errOut.String()
}

// pwrite writes p at off in the segment's file, as another process would.
func pwrite(t *testing.T, name string, off int64, p []byte) {
	t.Helper()
	f, err := os.OpenFile(shm.SegmentPath(name), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

func TestCheckClean(t *testing.T) {
	b := checkSegment(t)
	code, out, errOut := runCheckArgs(b.Name())
	if code != checkClean || !strings.Contains(out, "result: ok (2 committed slot checksums verified)") ||
		!strings.Contains(out, "indices: write 2, commit 1, read 0") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestCheckFindsDamage(t *testing.T) {
	b := checkSegment(t)
	in, err := shm.Inspect(b.Name())
	if err != nil {
		t.Fatal(err)
	}
	pwrite(t, b.Name(), in.SlotOffset(1)+100, []byte{0xAA})
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	var lock [8]byte // slot entry 3's write_lock (spec/datablock.md §3, §5): a dead writer
	binary.LittleEndian.PutUint64(lock[:], uint64(dead.Process.Pid))
	pwrite(t, b.Name(), 4096+3*64, lock[:])
	var since [8]byte // its lock_since (+32, shm doc "Go extensions"): taken 2.5 s ago
	binary.LittleEndian.PutUint64(since[:], uint64(proc.Now()-2_500_000_000))
	pwrite(t, b.Name(), 4096+3*64+32, since[:])

	code, out, errOut := runCheckArgs(b.Name())
	if code != checkProblems || !strings.Contains(out, "result: 2 problem(s)") ||
		!strings.Contains(out, "  - slot 1: checksum mismatch") ||
		!strings.Contains(out, fmt.Sprintf("  - slot 3: write lock held by dead writer %d", dead.Process.Pid)) ||
		!regexp.MustCompile(`\(alive false, stuck_duration_ms 2[5-9]\d\d\)`).MatchString(out) ||
		!regexp.MustCompile(`dead writer \d+/\d+, stuck_duration_ms 2[5-9]\d\d`).MatchString(out) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestCheckErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"a", "b"}, {"plh_admin_check_missing_" + fmt.Sprint(os.Getpid())}, {"bad/name"}} {
		if code, out, errOut := runCheckArgs(args...); code != checkError || errOut == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
