package trace

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrTrace wraps every error of this package (a trace file that cannot be
// opened or rotated).
var ErrTrace = errors.New("trace")

// Defaults of Config.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxRate  = 10_000
	maxOpen         = 4096
)

// Directions.
const (
	In  = "in"
	Out = "out"
)

// Config says where a trace goes. Zero fields take the defaults.
type Config struct {
	// Path is the JSONL file (created 0600, appended to); "" writes each
	// record to Logger at Info level instead.
	Path string
	// MaxBytes rotates the file when it would grow past it (default 64 MiB;
	// the previous file is kept as Path+".1").
	MaxBytes int64
	// MaxRate bounds the records written per second (default 10,000).
	MaxRate int
	// Logger receives the records when Path is "" (nil → discard).
	Logger *slog.Logger
}

// Settings is what a party's TraceConfig says (broker.TraceConfig and
// hub.TraceConfig are this type): whether the trace is on, and where and how
// much it writes.
type Settings struct {
	// On switches the trace on.
	On bool
	// Path is the JSONL file (0600, appended); "" = the party's Logger.
	Path string
	// MaxBytes rotates the file at this size, keeping one previous file
	// (Path.1) (default 64 MiB).
	MaxBytes int64
	// MaxRate bounds the records per second; the rest are counted and
	// reported in the next record (default 10,000).
	MaxRate int
}

// Apply switches the trace as s says, writing to log when s.Path is "".
func (t *Tracer) Apply(s Settings, log *slog.Logger) error {
	return t.Set(s.On, Config{Path: s.Path, MaxBytes: s.MaxBytes, MaxRate: s.MaxRate, Logger: log})
}

// Status is a Tracer's state.
type Status struct {
	On      bool   `json:"on"`
	Path    string `json:"path"` // "" = the log
	Written uint64 `json:"written"`
	Dropped uint64 `json:"dropped"`
	Rotated uint64 `json:"rotated"`
}

// Record is one traced message.
type Record struct {
	Time          time.Time `json:"ts"`
	Side          string    `json:"side"`
	Dir           string    `json:"dir"`
	Type          string    `json:"type"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Channel       string    `json:"channel,omitempty"`
	ErrorCode     string    `json:"error_code,omitempty"`
	Peer          string    `json:"peer,omitempty"`
	Size          int       `json:"size"`
	ElapsedUS     *int64    `json:"elapsed_us,omitempty"`
	DroppedBefore uint64    `json:"dropped_before,omitempty"`
}

// Tracer writes the records of one side. The zero value is not usable: New.
type Tracer struct {
	side string
	on   atomic.Bool

	mu      sync.Mutex
	cfg     Config
	f       *os.File
	size    int64
	open    map[string]time.Time // peer+"\x00"+correlation id → first seen
	second  int64                // unix second of the rate window
	inSec   int
	pending uint64 // dropped since the last record written
	st      Status
}

// New returns a Tracer, off, for side ("broker", "messenger").
func New(side string) *Tracer { return &Tracer{side: side} }

// On reports whether records are written.
func (t *Tracer) On() bool { return t != nil && t.on.Load() }

// Set switches the trace on with cfg (closing the previous file, opening the
// new one) or off (closing the file). A file that cannot be opened is an
// error and leaves the trace off.
func (t *Tracer) Set(on bool, cfg Config) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on.Store(false)
	t.closeLocked()
	if !on {
		return nil
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxRate <= 0 {
		cfg.MaxRate = DefaultMaxRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Path != "" {
		if err := t.openLocked(cfg.Path); err != nil {
			return err
		}
	}
	t.cfg, t.open, t.second, t.inSec = cfg, map[string]time.Time{}, 0, 0
	t.st.On, t.st.Path = true, cfg.Path
	t.on.Store(true)
	return nil
}

// Status returns the Tracer's state and counters.
func (t *Tracer) Status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// Close switches the trace off and closes its file. Idempotent.
func (t *Tracer) Close() error { return t.Set(false, Config{}) }

func (t *Tracer) closeLocked() {
	if t.f != nil {
		_ = t.f.Close()
		t.f = nil
	}
	t.st.On, t.open = false, nil
}

func (t *Tracer) openLocked(path string) error {
	// No symlink is followed and only a regular file is appended to, so a
	// trace path never writes through to another file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrTrace, path, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: %s: %w", ErrTrace, path, err)
	}
	t.f, t.size = f, fi.Size()
	return nil
}

// Message traces the control message frames (['C'][type][body]) going dir
// ("in", "out") to or from peer (a ROUTER identity or an endpoint). A no-op
// while the trace is off.
func (t *Tracer) Message(dir string, peer []byte, frames [][]byte) {
	if !t.On() {
		return
	}
	now := time.Now()
	r := Record{Time: now, Side: t.side, Dir: dir, Peer: peerText(peer)}
	if len(frames) >= 3 && len(frames[0]) == 1 && frames[0][0] == 'C' {
		r.Type, r.Size = truncate(string(frames[1]), 64), len(frames[2])
		var top struct {
			CorrelationID string `json:"correlation_id"`
			ChannelName   string `json:"channel_name"`
			ErrorCode     string `json:"error_code"`
		}
		_ = json.Unmarshal(frames[2], &top) // best effort: a bad body is traced without them
		r.CorrelationID, r.Channel, r.ErrorCode = truncate(top.CorrelationID, 128), truncate(top.ChannelName, 256), truncate(top.ErrorCode, 64)
	} else {
		r.Type = "(not control)"
		for _, f := range frames {
			r.Size += len(f)
		}
	}
	t.write(r)
}

func (t *Tracer) write(r Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.on.Load() {
		return
	}
	t.pair(&r)
	if sec := r.Time.Unix(); sec != t.second {
		t.second, t.inSec = sec, 0
	}
	if t.inSec >= t.cfg.MaxRate {
		t.st.Dropped++
		t.pending++
		return
	}
	t.inSec++
	r.DroppedBefore, t.pending = t.pending, 0
	if t.f == nil {
		t.cfg.Logger.Info("protocol trace", "side", r.Side, "dir", r.Dir, "type", r.Type, "correlation_id", r.CorrelationID,
			"channel", r.Channel, "error_code", r.ErrorCode, "peer", r.Peer, "size", r.Size, "elapsed_us", r.ElapsedUS)
		t.st.Written++
		return
	}
	line, _ := json.Marshal(r)
	line = append(line, '\n')
	if t.size+int64(len(line)) > t.cfg.MaxBytes && t.size > 0 {
		t.rotateLocked()
		if t.f == nil {
			return
		}
	}
	n, err := t.f.Write(line)
	t.size += int64(n)
	if err != nil {
		t.st.Dropped++
		return
	}
	t.st.Written++
}

// pair sets ElapsedUS on the second message of a correlation id and starts
// the clock on the first.
func (t *Tracer) pair(r *Record) {
	if r.CorrelationID == "" {
		return
	}
	key := r.Peer + "\x00" + r.CorrelationID
	if first, ok := t.open[key]; ok {
		delete(t.open, key)
		us := r.Time.Sub(first).Microseconds()
		r.ElapsedUS = &us
		return
	}
	if len(t.open) < maxOpen {
		t.open[key] = r.Time
	}
}

// rotateLocked renames the file to path.1 and starts a new one; on failure
// the trace stops writing to the file (counted as dropped).
func (t *Tracer) rotateLocked() {
	path := t.cfg.Path
	_ = t.f.Close()
	t.f = nil
	if err := os.Rename(path, path+".1"); err != nil {
		t.cfg.Logger.Warn("protocol trace: rotate failed, trace stopped", "path", path, "err", err)
		t.on.Store(false)
		t.st.On = false
		return
	}
	if err := t.openLocked(path); err != nil {
		t.cfg.Logger.Warn("protocol trace: reopen failed, trace stopped", "path", path, "err", err)
		t.on.Store(false)
		t.st.On = false
		return
	}
	t.st.Rotated++
}

func peerText(p []byte) string {
	for _, c := range p {
		if c < 0x20 || c > 0x7e {
			return hex.EncodeToString(p[:min(len(p), 32)])
		}
	}
	return truncate(string(p), 256)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
