package noderole

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pylabhub/plh/internal/event"
)

// syncBuf is a goroutine-safe event sink.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testNode(t *testing.T, out io.Writer) *node {
	t.Helper()
	n := &node{o: options{channel: "cam"}, log: slog.New(slog.DiscardHandler), ev: event.NewWriter(out, "c")}
	n.agg = newAggregator(n, false, false, nil)
	t.Cleanup(n.agg.stop)
	return n
}

// A successor producer (another pid) starting again at 0 is a new
// incarnation, not a reorder; a real step back within one is.
func TestSequencesPerProducerIncarnation(t *testing.T) {
	var out syncBuf
	n := testNode(t, &out)
	tr := &seqTracker{n: n}
	for _, s := range []uint64{5, 6, 7} {
		tr.see(s, 100)
	}
	for _, s := range []uint64{0, 1, 2} {
		tr.see(s, 200)
	}
	if tot := n.agg.totals(); tot["reorders"] != uint64(0) || tot["lost"] != uint64(0) {
		t.Fatalf("successor counted: %v\n%s", tot, out.String())
	}
	n = testNode(t, &out)
	tr = &seqTracker{n: n}
	tr.see(5, 100)
	tr.see(3, 100)
	tr.see(9, 100)
	tot := n.agg.totals()
	if tot["reorders"] != uint64(1) || tot["lost"] != uint64(3) {
		t.Fatalf("one incarnation: %v", tot)
	}
	if !strings.Contains(out.String(), `"from_pid":100`) {
		t.Errorf("gap/reorder events without from_pid:\n%s", out.String())
	}
}

// On a split stream (Pipeline, Bidir round robin) a jump is no loss.
func TestSplitStreamHasNoGaps(t *testing.T) {
	var out syncBuf
	n := testNode(t, &out)
	tr := &seqTracker{n: n, split: true}
	for _, s := range []uint64{0, 2, 4, 6} {
		tr.see(s, 100)
	}
	if tot := n.agg.totals(); tot["lost"] != uint64(0) || tot["gaps"] != uint64(0) {
		t.Fatalf("split stream: %v", tot)
	}
}

// A batch holds one incarnation: reads of another producer pid start a new
// read event, each with its from_pid.
func TestReadEventsPerIncarnation(t *testing.T) {
	var out syncBuf
	n := testNode(t, &out)
	n.agg.add(1, 32, 0, 100)
	n.agg.add(2, 32, 0, 100)
	n.agg.add(0, 32, 0, 200)
	n.agg.stop()
	s := out.String()
	if !strings.Contains(s, `"count":2,"first_seq":1,"from_pid":100`) && !strings.Contains(s, `"from_pid":100`) {
		t.Errorf("no read event of pid 100:\n%s", s)
	}
	if strings.Count(s, `"kind":"read"`) != 2 || !strings.Contains(s, `"from_pid":200`) {
		t.Errorf("want two read events (pids 100 and 200):\n%s", s)
	}
}

// The status file's layout is the engine's contract (sim reads it after a
// SIGKILL): magic, total, last sequence, writer pid.
func TestStatusFileLayout(t *testing.T) {
	p := filepath.Join(t.TempDir(), "st")
	st, err := openStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	st.set(9, 42, 77)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st.close()
	var got []uint64
	for i := 0; i < 4; i++ {
		got = append(got, binary.NativeEndian.Uint64(b[i*8:]))
	}
	if got[0] != StatusMagic || got[1] != 9 || got[2] != 42 || got[3] != 77 {
		t.Errorf("status words %x", got)
	}
	var none *statusFile
	none.set(1, 2, 3) // no file: a no-op
	none.close()
}
