package shm

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// groupChildEnv re-executes the test binary as a group member: "name secret group"
// → join, acquire one slot, print "held ID", wait for stdin to close (or a kill).
const groupChildEnv = "PLH_SHM_TEST_GROUP_MEMBER"

func groupChild(spec string) int {
	f := strings.Fields(spec)
	secret, _ := strconv.ParseUint(f[1], 10, 64)
	fail := func(err error) int {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		return 1
	}
	b, err := Attach(f[0], secret, nil)
	if err != nil {
		return fail(err)
	}
	g, err := b.JoinGroup(f[2], ReaderOptions{UID: "child"})
	if err != nil {
		return fail(err)
	}
	s, err := g.AcquireRead(context.Background(), 10*time.Second)
	if err != nil {
		return fail(err)
	}
	os.Stdout.WriteString("held " + strconv.FormatUint(binary.LittleEndian.Uint64(s.Bytes()), 10) + "\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// startGroupChild starts a member process and returns it once it holds a slot,
// with the sequence it holds.
func startGroupChild(t *testing.T, b *Block, secret uint64, group string) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), groupChildEnv+"="+b.Name()+" "+strconv.FormatUint(secret, 10)+" "+group)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		os.Remove(GroupSegmentPath(b.Name(), group)) // after a failure: its member died in it
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	seq, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(line), "held "), 10, 64)
	if !strings.HasPrefix(line, "held ") || err != nil {
		t.Fatalf("group member process: %q", line)
	}
	return cmd, seq
}

func mustJoin(t *testing.T, b *Block, group, name string) *GroupReader {
	t.Helper()
	g, err := b.JoinGroup(group, ReaderOptions{UID: "uid-" + name, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// groupRead reads one slot as a member and returns its sequence.
func groupRead(g *GroupReader, timeout time.Duration) (uint64, error) {
	s, err := g.AcquireRead(context.Background(), timeout)
	if err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(s.Bytes())
	return v, s.Release()
}

// tally counts how often each sequence was read by one group.
type tally struct {
	mu     sync.Mutex
	counts map[uint64]int
}

func (c *tally) add(v uint64) {
	c.mu.Lock()
	if c.counts == nil {
		c.counts = map[uint64]int{}
	}
	c.counts[v]++
	c.mu.Unlock()
}

func (c *tally) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.counts)
}

// exactlyOnce fails unless every sequence in [from, n) was read exactly once and
// no other.
func (c *tally) exactlyOnce(t *testing.T, label string, from, n uint64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for v := from; v < n; v++ {
		if c.counts[v] != 1 {
			t.Errorf("%s: sequence %d read %d times", label, v, c.counts[v])
		}
	}
	if len(c.counts) != int(n-from) {
		t.Errorf("%s: %d distinct sequences read, want %d", label, len(c.counts), n-from)
	}
}

// readMembers runs every member until the group has read n distinct sequences,
// and returns how many each member read.
func readMembers(t *testing.T, c *tally, n uint64, members ...*GroupReader) []int {
	t.Helper()
	per := make([]int, len(members))
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for i, g := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.len() < int(n) && time.Now().Before(deadline) {
				v, err := groupRead(g, 20*time.Millisecond)
				if errors.Is(err, ErrTimeout) {
					continue
				}
				if err != nil {
					t.Errorf("member %d: %v", i, err)
					return
				}
				c.add(v)
				per[i]++
			}
		}()
	}
	wg.Wait()
	return per
}

// readAll reads sequences 0..n-1 in order with a plain Reader.
func readAll(t *testing.T, r *Reader, n uint64) error {
	for i := range n {
		if v, err := readSeq(t, r, 10*time.Second); err != nil || v != i {
			return fmt.Errorf("plain reader: %d %v, want %d", v, err, i)
		}
	}
	return nil
}

// Members of a group split the stream, each sequence to exactly one of them;
// another group and a plain Reader each read everything.
func TestGroupSplitsStream(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncReader, SingleReader} {
		t.Run(pol.String(), func(t *testing.T) {
			b := createT(t, testConfig(8, pol))
			w := mustWriter(t, b)
			a := []*GroupReader{mustJoin(t, b, "a", "a1"), mustJoin(t, b, "a", "a2"), mustJoin(t, b, "a", "a3")}
			var others []*GroupReader
			var plain *Reader
			if pol == SyncReader {
				others = []*GroupReader{mustJoin(t, b, "b", "b1"), mustJoin(t, b, "b", "b2")}
				plain = mustReader(t, b, "plain")
			}
			const n = 2000
			go func() {
				for i := range uint64(n) {
					if err := writeSeq(t, w, i, 10*time.Second); err != nil {
						t.Errorf("write %d: %v", i, err)
						return
					}
				}
			}()
			var ca, cb tally
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); t.Logf("group a per member: %v", readMembers(t, &ca, n, a...)) }()
			go func() { defer wg.Done(); t.Logf("group b per member: %v", readMembers(t, &cb, n, others...)) }()
			if plain != nil {
				for i := range uint64(n) {
					if v, err := readSeq(t, plain, 10*time.Second); err != nil || v != i {
						t.Fatalf("plain reader: %d %v, want %d", v, err, i)
					}
				}
			}
			wg.Wait()
			ca.exactlyOnce(t, "group a", 0, n)
			if pol == SyncReader {
				cb.exactlyOnce(t, "group b", 0, n)
			}
		})
	}
}

// A member SIGKILLed while it holds a slot loses nothing: the writer cannot pass
// the slot, and another member takes the claim over and reads it; every sequence
// is read exactly once by the group and all of them by a plain Reader.
func TestGroupMemberKilledHoldingSlot(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncReader, SingleReader} {
		t.Run(pol.String(), func(t *testing.T) {
			cfg := testConfig(8, pol)
			b := createT(t, cfg)
			w := mustWriter(t, b)
			var plain *Reader
			if pol == SyncReader {
				plain = mustReader(t, b, "plain")
			}
			for i := range uint64(4) {
				writeSeq(t, w, i, time.Second)
			}
			child, held := startGroupChild(t, b, cfg.Secret, "g")
			if want := map[SyncPolicy]uint64{SyncReader: 3, SingleReader: 0}[pol]; held != want {
				// A Sync_reader consumer joins at the latest commit.
				t.Fatalf("the first member held %d, want %d", held, want)
			}
			plainDone := make(chan error, 1)
			if plain != nil {
				go func() { plainDone <- readAll(t, plain, 100) }()
			} else {
				plainDone <- nil
			}
			g := mustJoin(t, b, "g", "survivor")
			const n = 100
			wrote := make(chan error, 1)
			go func() {
				for i := uint64(4); i < n; i++ {
					if err := writeSeq(t, w, i, 20*time.Second); err != nil {
						wrote <- err
						return
					}
				}
				wrote <- nil
			}()
			var c tally
			for c.len() < 7 { // the rest of the ring: the writer is then held by the claim
				v, err := groupRead(g, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				c.add(v)
			}
			if _, err := groupRead(g, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
				t.Fatalf("read past a live member's claim in a full ring: %v", err)
			}
			child.Process.Kill()
			child.Wait()
			readMembers(t, &c, n-held, g)
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			c.exactlyOnce(t, "group g", held, n)
			if g.Reclaimed() != 1 || g.Lost() != 0 {
				t.Errorf("reclaimed %d lost %d, want 1 and 0", g.Reclaimed(), g.Lost())
			}
			if err := <-plainDone; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The companion segment exists while the group has members, is removed by the last
// one to close, and one left by dead members is swept.
func TestGroupSegmentLifetime(t *testing.T) {
	cfg := testConfig(4, SyncReader)
	b := createT(t, cfg)
	w := mustWriter(t, b)
	path := GroupSegmentPath(b.Name(), "life")
	g1, g2 := mustJoin(t, b, "life", "m1"), mustJoin(t, b, "life", "m2")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("group segment: %v %v", st, err)
	}
	g1.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("removed while a member is left: %v", err)
	}
	g2.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("left after the last member closed: %v", err)
	}
	writeSeq(t, w, 0, time.Second)
	child, _ := startGroupChild(t, b, cfg.Secret, "life")
	child.Process.Kill()
	child.Wait()
	removed, err := Sweep(SweepOptions{Prefix: b.Name()})
	if err != nil || len(removed) != 1 || removed[0] != b.Name()+path[len(SegmentPath(b.Name())):] {
		t.Fatalf("sweep removed %v (%v), want the group segment only", removed, err)
	}
}

// Refusals: Latest_only rings, heap blocks; a full group.
func TestGroupRefusals(t *testing.T) {
	b := createT(t, testConfig(4, LatestOnly))
	if _, err := b.JoinGroup("x", ReaderOptions{}); !errors.Is(err, ErrGroupUnsupported) {
		t.Fatalf("Latest_only: %v", err)
	}
	h, err := newHeapBlock(testConfig(4, SyncReader))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.JoinGroup("x", ReaderOptions{}); !errors.Is(err, ErrGroupUnsupported) {
		t.Fatalf("heap block: %v", err)
	}
}

// Drop keeps the claim (the member gets the same id again); a member that closes
// holding a slot leaves its claim to the others, and nothing is read twice.
func TestGroupDropAndDepartedMember(t *testing.T) {
	b := createT(t, testConfig(4, SingleReader))
	w := mustWriter(t, b)
	g1, g2 := mustJoin(t, b, "d", "m1"), mustJoin(t, b, "d", "m2")
	for i := range uint64(3) {
		writeSeq(t, w, i, time.Second)
	}
	s, err := g1.AcquireRead(context.Background(), time.Second)
	if err != nil || s.ID() != 0 {
		t.Fatalf("first read: %v", err)
	}
	if _, err := g1.AcquireRead(context.Background(), 0); !errors.Is(err, ErrSlotHeld) {
		t.Fatalf("second acquire while holding: %v", err)
	}
	s.Drop()
	if s, err = g1.AcquireRead(context.Background(), time.Second); err != nil || s.ID() != 0 {
		t.Fatalf("after Drop: id %d %v, want 0 again", s.ID(), err)
	}
	if v, err := groupRead(g2, time.Second); err != nil || v != 1 {
		t.Fatalf("other member: %d %v, want 1", v, err)
	}
	g1.Close() // holding 0
	got := map[uint64]bool{}
	for range 2 {
		v, err := groupRead(g2, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got[v] = true
	}
	if !got[0] || !got[2] || g2.Reclaimed() != 1 {
		t.Fatalf("after the holder left: read %v, reclaimed %d; want 0 and 2, 1", got, g2.Reclaimed())
	}
	if _, err := groupRead(g2, 20*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("read more than was written: %v", err)
	}
}
