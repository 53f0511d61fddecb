package hub

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pylabhub/plh/internal/proc"
)

// Unit tests of brokerless discovery (discovery_file.go): the record files and
// a producer/consumer pair without a broker. suites/hub runs real processes.

func testRecord(channel string) discoveryRecord {
	self := proc.Self()
	return newRecord(channel, ProducerInfo{Pattern: PatternPubSub, CtrlEndpoint: "tcp://127.0.0.1:5999",
		DataEndpoint: "tcp://127.0.0.1:5999", PubKey: strings.Repeat("A", 40), SchemaHash: make([]byte, 32)},
		procID{pid: uint64(self.Pid), start: self.StartTime, host: "h"})
}

func recordDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "plh", "channels")
}

func TestRecordWriteReadPermissions(t *testing.T) {
	dir := recordDir(t)
	path, err := writeRecord(dir, testRecord("cam/0 a"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "cam%2F0%20a.json" {
		t.Errorf("record file %q", filepath.Base(path))
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want the record only", len(ents))
	}
	if _, err := writeRecord(dir, testRecord("")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty channel name: %v", err)
	}
	rec, err := lookupRecord(dir, "cam/0 a")
	if err != nil {
		t.Fatal(err)
	}
	info := rec.info()
	if info.CtrlEndpoint != "tcp://127.0.0.1:5999" || info.Pattern != PatternPubSub || len(info.SchemaHash) != 32 ||
		info.ProducerPid != uint64(os.Getpid()) || info.Name != "cam/0 a" {
		t.Errorf("record read back as %+v", info)
	}
	long := strings.Repeat("ü", 128) // 256 bytes, the broker's limit: 1536 escaped
	lpath, err := writeRecord(dir, testRecord(long))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(filepath.Base(lpath)); n > maxRecordName+len(recordExt) {
		t.Errorf("record file name of %d bytes", n)
	}
	if rec, err := lookupRecord(dir, long); err != nil || rec.ChannelName != long {
		t.Errorf("long channel name: %v", err)
	}
	if _, err := lookupRecord(dir, long[:254]+"x"); !errors.Is(err, ErrChannelNotFound) {
		t.Errorf("another long name found: %v", err)
	}
	if _, err := lookupRecord(dir, "other"); !errors.Is(err, ErrChannelNotFound) {
		t.Errorf("missing record: %v, want ErrChannelNotFound", err)
	}
	if _, err := lookupRecord(filepath.Join(dir, "absent"), "cam"); !errors.Is(err, ErrChannelNotFound) {
		t.Errorf("missing directory: %v, want ErrChannelNotFound", err)
	}
}

func TestRecordDirectoryRefused(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := writeRecord(link, testRecord("cam")); !errors.Is(err, ErrDiscoveryDir) || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlinked directory: %v", err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := writeRecord(file, testRecord("cam")); !errors.Is(err, ErrDiscoveryDir) {
		t.Errorf("a file as directory: %v", err)
	}
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := writeRecord(open, testRecord("cam")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o700 {
		t.Errorf("our open directory left at %v, want it tightened to 0700", fi.Mode().Perm())
	}
	if os.Getuid() == 0 {
		theirs := filepath.Join(base, "theirs")
		if err := os.Mkdir(theirs, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := writeRecord(theirs, testRecord("cam")); !errors.Is(err, ErrDiscoveryDir) || !strings.Contains(err.Error(), "another user") {
			t.Errorf("another user's directory: %v", err)
		}
		rec := filepath.Join(open, "cam.json")
		if err := os.Chown(rec, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := lookupRecord(open, "cam"); !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), rec) {
			t.Errorf("another user's record: %v", err)
		}
	}
}

func TestRecordCorruptNamesTheFile(t *testing.T) {
	dir := recordDir(t)
	good, _ := json.Marshal(testRecord("cam"))
	cases := map[string][]byte{
		"empty":        nil,
		"partial":      good[:len(good)/2],
		"garbage":      []byte("\x00\xff not json"),
		"wrong type":   []byte(`{"format":1,"channel_name":"cam","producer_pid":"x"}`),
		"other format": []byte(strings.Replace(string(good), `"format":1`, `"format":9`, 1)),
		"no endpoint":  []byte(strings.Replace(string(good), `"zmq_ctrl_endpoint":"tcp://127.0.0.1:5999"`, `"zmq_ctrl_endpoint":""`, 1)),
		"bad hash":     []byte(strings.Replace(string(good), `"schema_hash":"00`, `"schema_hash":"zz`, 1)),
		"pid 0":        []byte(strings.Replace(string(good), `"producer_pid":`, `"producer_pid":0,"x":`, 1)),
		"bad pattern":  []byte(strings.Replace(string(good), `"PubSub"`, `"Carrier"`, 1)),
		"huge":         append([]byte(`{"format":1,"x":"`), make([]byte, maxRecordSize)...),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if err := prepareDir(dir, true); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "cam.json")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := lookupRecord(dir, "cam")
			if !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), path) {
				t.Errorf("lookup: %v, want ErrBadRecord naming %s", err, path)
			}
		})
	}
	// The record of another channel under this file name is not this channel's.
	if _, err := writeRecord(dir, testRecord("cam2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "cam2.json"), filepath.Join(dir, "cam.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := lookupRecord(dir, "cam"); !errors.Is(err, ErrBadRecord) {
		t.Errorf("record of another channel: %v", err)
	}
	// A symlink in place of a record is not followed.
	if err := os.Remove(filepath.Join(dir, "cam.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "cam.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := lookupRecord(dir, "cam"); !errors.Is(err, ErrBadRecord) {
		t.Errorf("symlinked record: %v", err)
	}
	// A FIFO is refused without blocking on its open.
	fifo := filepath.Join(dir, "fifo.json")
	if err := exec.Command("mkfifo", fifo).Run(); err == nil {
		if _, err := lookupRecord(dir, "fifo"); !errors.Is(err, ErrBadRecord) {
			t.Errorf("fifo record: %v", err)
		}
	}
}

func FuzzReadRecord(f *testing.F) {
	good, _ := json.Marshal(testRecord("cam"))
	f.Add(good)
	f.Add([]byte(`{"format":1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"format":1,"channel_name":"cam","producer_pid":1e30}`))
	dir := f.TempDir()
	path := filepath.Join(dir, "cam.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		rec, err := readRecord(path, "cam")
		if err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if err == nil && rec.ZmqCtrlEndpoint == "" {
			t.Fatal("accepted a record without an endpoint")
		}
	})
}

// A record is replaced by rename: a reader sees the old one or the new one,
// never a partial file.
func TestRecordAtomicReplace(t *testing.T) {
	dir := recordDir(t)
	if _, err := writeRecord(dir, testRecord("cam")); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			rec := testRecord("cam")
			rec.ZmqCtrlEndpoint = "tcp://127.0.0.1:" + strings.Repeat("1", 1+i%4)
			if _, err := writeRecord(dir, rec); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 2000 {
		if _, err := lookupRecord(dir, "cam"); err != nil {
			t.Errorf("read during replacement: %v", err)
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries after the writes, want 1", len(ents))
	}
}

func TestRecordDeadProducerSwept(t *testing.T) {
	dir := recordDir(t)
	self := proc.Self()
	dead := testRecord("dead")
	dead.ProducerStartTime = self.StartTime + 1 // our pid, another incarnation: dead
	if _, err := writeRecord(dir, dead); err != nil {
		t.Fatal(err)
	}
	if _, err := writeRecord(dir, testRecord("live")); err != nil {
		t.Fatal(err)
	}
	// A dead writer's temporary file and a live one's.
	deadTmp := filepath.Join(dir, ".1.1.123.tmp")
	liveTmp := filepath.Join(dir, "."+strconv.Itoa(self.Pid)+"."+strconv.FormatUint(self.StartTime, 10)+".456.tmp")
	for _, p := range []string{deadTmp, liveTmp} {
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lookupRecord(dir, "dead"); !errors.Is(err, ErrChannelNotFound) || !strings.Contains(err.Error(), "dead") {
		t.Errorf("dead record: %v, want ErrChannelNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dead.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dead record not removed by the lookup: %v", err)
	}
	if _, err := writeRecord(dir, dead); err != nil {
		t.Fatal(err)
	}
	removed, err := sweepRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, ",") != ".1.1.123.tmp,dead.json" {
		t.Errorf("swept %q", removed)
	}
	for _, p := range []string{liveTmp, filepath.Join(dir, "live.json")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("live entry swept: %v", err)
		}
	}
}

func TestProducerWithoutBroker(t *testing.T) {
	dir := recordDir(t)
	ctx := context.Background()
	newM := func(dir string) *Messenger {
		m, err := NewMessenger(MessengerConfig{DiscoveryDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	if _, err := NewProducer(ctx, newM(""), ProducerOptions{Channel: chanName("nodir")}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("no broker, no directory: %v, want ErrNotConnected", err)
	}
	name := chanName("standalone")
	p, err := NewProducer(ctx, newM(dir), ProducerOptions{Channel: name})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p2, err := NewProducer(ctx, newM(dir), ProducerOptions{Channel: name}); !errors.Is(err, ErrChannelInUse) {
		p2.Close()
		t.Fatalf("second standalone producer: %v, want ErrChannelInUse", err)
	}
	c, err := Connect(ctx, newM(dir), ConsumerOptions{Channel: name, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := p.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	b, err := c.Recv(rctx)
	cancel()
	if err != nil || string(b) != "hello" {
		t.Fatalf("recv %q, %v", b, err)
	}
	record := filepath.Join(dir, name+".json")
	if _, err := os.Stat(record); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record left after Close: %v", err)
	}
}

// With a broker that does not know the channel, Discover falls back to the
// record of a standalone producer; a producer registered with the broker
// writes its record too.
func TestDiscoverFallsBackBesideBroker(t *testing.T) {
	dir := recordDir(t)
	ctx := context.Background()
	s := startBroker(t)
	withBroker := func() *Messenger {
		m, err := NewMessenger(MessengerConfig{DiscoveryDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		if err := m.Connect(ctx, s.Endpoint(), s.PublicKey()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	alone, err := NewMessenger(MessengerConfig{DiscoveryDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	name := chanName("beside")
	p, err := NewProducer(ctx, alone, ProducerOptions{Channel: name})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	info, err := withBroker().Discover(ctx, name)
	if err != nil || info.ProducerPid != uint64(os.Getpid()) {
		t.Fatalf("discover beside a broker: %+v, %v", info, err)
	}
	reg := chanName("registered")
	p2, err := NewProducer(ctx, withBroker(), ProducerOptions{Channel: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, reg+".json")); err != nil {
		t.Errorf("a registered producer wrote no record: %v", err)
	}
	_ = p2.Close()
	if _, err := alone.Discover(ctx, reg); !errors.Is(err, ErrChannelNotFound) || !errors.Is(err, ErrNotConnected) {
		t.Errorf("closed channel: %v, want ErrChannelNotFound and the broker's ErrNotConnected", err)
	}
}

// A producer registered with a broker also writes its record: once the
// broker is gone, a consumer still finds the channel and connects.
func TestDiscoverFallsBackWhenBrokerLost(t *testing.T) {
	dir := recordDir(t)
	ctx := context.Background()
	s := startBroker(t)
	connected := func() *Messenger {
		m, err := NewMessenger(MessengerConfig{DiscoveryDir: dir, HeartbeatInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		if err := m.Connect(ctx, s.Endpoint(), s.PublicKey()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	mp, mc := connected(), connected()
	name := chanName("lost")
	p, err := NewProducer(ctx, mp, ProducerOptions{Channel: name})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	lost := make(chan struct{}, 1)
	mc.OnBrokerLost(func(error) {
		select {
		case lost <- struct{}{}:
		default:
		}
	})
	s.Close()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer's Messenger did not notice the broker's loss")
	}
	c, err := Connect(ctx, mc, ConsumerOptions{Channel: name, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("connect with the broker lost: %v", err)
	}
	defer c.Close()
	if err := p.Send(ctx, []byte("x")); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if b, err := c.Recv(rctx); err != nil || string(b) != "x" {
		t.Fatalf("recv %q, %v", b, err)
	}
}

// Of producers claiming a channel at once exactly one wins; a dead
// producer's record and an unreadable one are claimed over.
func TestRecordClaimIsExclusive(t *testing.T) {
	dir := recordDir(t)
	const n = 8
	var wins, inUse atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := claimRecord(dir, testRecord("cam"))
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, ErrChannelInUse):
				inUse.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || inUse.Load() != n-1 {
		t.Errorf("%d claims won, %d refused; want 1 and %d", wins.Load(), inUse.Load(), n-1)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want the record only", len(ents))
	}
	dead := testRecord("cam")
	dead.ProducerStartTime++
	if _, err := writeRecord(dir, dead); err != nil {
		t.Fatal(err)
	}
	if _, err := claimRecord(dir, testRecord("cam")); err != nil {
		t.Errorf("claim over a dead record: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cam.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := claimRecord(dir, testRecord("cam")); err != nil {
		t.Errorf("claim over an unreadable record: %v", err)
	}
	if _, err := lookupRecord(dir, "cam"); err != nil {
		t.Error(err)
	}
}
