package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
)

// Brokerless discovery (backlog B-5): "DataHub works without a broker".
//
// A Messenger whose MessengerConfig.DiscoveryDir is set keeps one discovery
// record per channel it produces in that directory: a JSON file
// <channel, URL-path-escaped>.json holding DISC_ACK's fields plus the
// producer's pid, start time and host name (discoveryRecord). The file is
// written 0600 through a temporary file and an atomic rename (a reader sees
// the old record or the new one, never half of one) and removed by
// Producer.Close when it is still ours. The directory is created 0700; one
// that is a symlink or belongs to another user is refused (ErrDiscoveryDir),
// one of ours that others can enter is tightened to 0700.
//
// The rules:
//   - Producer: with a DiscoveryDir, every producer writes its record, with or
//     without a broker. NewProducer on a Messenger that is idle (never
//     connected, or disconnected) runs standalone: no broker registration, the
//     record is the channel's only announcement, claimed by hard-linking
//     its temporary file to the record's name (of two producers starting at
//     once, one wins); it is refused with ErrChannelInUse when a live
//     producer's record names the channel. It stays brokerless: a later
//     Connect of the Messenger does not register it. Without
//     a DiscoveryDir an idle Messenger still gives ErrNotConnected, and so
//     does one whose broker is lost or still connecting (it meant to use a
//     broker; the broker decides who owns a name).
//   - Discover: the broker is asked first; the record is read only when the
//     broker cannot answer (ErrNotConnected: not configured, not connected,
//     lost; ErrTimeout) or answered CHANNEL_NOT_FOUND (a standalone producer
//     beside a broker). When both fail the error wraps both.
//   - Liveness: a record whose pid and start time no longer name a live
//     process is ignored and removed; NewProducer sweeps the directory of
//     dead records and of temporary files left by writers that died.
//   - Untrusted: a record that is not a regular file of ours, is larger than
//     maxRecordSize, or does not parse is reported as ErrBadRecord naming the
//     file; it is never followed through a symlink.

// DefaultDiscoveryDir returns the conventional discovery directory:
// $XDG_RUNTIME_DIR/plh/channels, else ~/.local/share/plh/runtime/channels.
func DefaultDiscoveryDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "plh", "channels"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: neither XDG_RUNTIME_DIR nor a home directory: %v", ErrDiscoveryDir, err)
	}
	return filepath.Join(home, ".local", "share", "plh", "runtime", "channels"), nil
}

const (
	recordFormat  = 1
	recordExt     = ".json"
	tmpExt        = ".tmp"
	maxRecordSize = 64 << 10
	maxRecordName = 200 // bytes of a record file name before its extension
)

// discoveryRecord is one channel's record file: DISC_ACK's fields (same JSON
// names, docs/protocol.md §5.4) plus who wrote it.
type discoveryRecord struct {
	Format            int    `json:"format"`
	ChannelName       string `json:"channel_name"`
	ShmName           string `json:"shm_name"`
	SchemaHash        string `json:"schema_hash"`
	SchemaVersion     uint32 `json:"schema_version"`
	HasSharedMemory   bool   `json:"has_shared_memory"`
	ChannelPattern    string `json:"channel_pattern"`
	ZmqCtrlEndpoint   string `json:"zmq_ctrl_endpoint"`
	ZmqDataEndpoint   string `json:"zmq_data_endpoint"`
	ZmqPubkey         string `json:"zmq_pubkey"`
	ProducerPID       uint64 `json:"producer_pid"`
	ProducerStartTime uint64 `json:"producer_start_time"`
	ProducerHostname  string `json:"producer_hostname,omitempty"`
	WrittenAt         string `json:"written_at,omitempty"`
}

func newRecord(channel string, info ProducerInfo, id procID) discoveryRecord {
	return discoveryRecord{
		Format: recordFormat, ChannelName: channel, ShmName: info.ShmName,
		SchemaHash: hex.EncodeToString(info.SchemaHash), SchemaVersion: info.SchemaVersion,
		HasSharedMemory: info.HasSharedMemory, ChannelPattern: string(patternOf(string(info.Pattern))),
		ZmqCtrlEndpoint: info.CtrlEndpoint, ZmqDataEndpoint: info.DataEndpoint, ZmqPubkey: info.PubKey,
		ProducerPID: id.pid, ProducerStartTime: id.start, ProducerHostname: id.host,
		WrittenAt: time.Now().UTC().Format(time.RFC3339Nano),
	}
}

func (r discoveryRecord) identity() proc.Identity {
	return proc.Identity{Pid: int(r.ProducerPID), StartTime: r.ProducerStartTime}
}

// alive reports whether the record's producer still runs.
func (r discoveryRecord) alive() bool { return r.identity().Alive() }

// info converts the record as a DISC_ACK would be.
func (r discoveryRecord) info() ChannelInfo {
	return channelInfo(r.ChannelName, &proto.DiscAck{
		ShmName: r.ShmName, SchemaHash: r.SchemaHash, SchemaVersion: r.SchemaVersion,
		HasSharedMemory: r.HasSharedMemory, ChannelPattern: r.ChannelPattern,
		ZmqCtrlEndpoint: r.ZmqCtrlEndpoint, ZmqDataEndpoint: r.ZmqDataEndpoint,
		ZmqPubkey: r.ZmqPubkey, ProducerPID: r.ProducerPID,
	})
}

// validate checks a record read from path for channel.
func (r discoveryRecord) validate(channel string) error {
	switch {
	case r.Format != recordFormat:
		return fmt.Errorf("format %d, want %d", r.Format, recordFormat)
	case r.ChannelName == "" || channel != "" && r.ChannelName != channel:
		return fmt.Errorf("names channel %q, want %q", r.ChannelName, channel)
	case r.ProducerPID == 0 || r.ProducerPID > 1<<22:
		return fmt.Errorf("producer_pid %d out of range", r.ProducerPID)
	case r.ZmqCtrlEndpoint == "":
		return errors.New("no zmq_ctrl_endpoint")
	case r.SchemaHash != "" && decodeHash(r.SchemaHash) == nil:
		return fmt.Errorf("schema_hash %q is not hex", r.SchemaHash)
	case r.HasSharedMemory && r.ShmName == "":
		return errors.New("has_shared_memory without shm_name")
	}
	switch Pattern(r.ChannelPattern) {
	case PatternPubSub, PatternPipeline, PatternBidir:
	default:
		return fmt.Errorf("channel_pattern %q unknown", r.ChannelPattern)
	}
	return nil
}

// recordName returns the record file name of channel: the name URL-path
// escaped, or when that is longer than maxRecordName its first part, "~" and
// the start of its SHA-256 (the record's channel_name tells the channel).
func recordName(channel string) (string, error) {
	if channel == "" {
		return "", fmt.Errorf("%w: empty channel name", ErrInvalidArgument)
	}
	n := url.PathEscape(channel)
	if len(n) > maxRecordName {
		sum := sha256.Sum256([]byte(channel))
		n = strings.TrimRight(n[:maxRecordName-33], "%0123456789ABCDEF") + "~" + hex.EncodeToString(sum[:16])
	}
	return n + recordExt, nil
}

// prepareDir creates dir (0700) when create is set and checks it is ours and
// private: ErrDiscoveryDir when it is a symlink, not a directory or another
// user's; a group/other-accessible one of ours is tightened.
func prepareDir(dir string, create bool) error {
	if dir == "" {
		return fmt.Errorf("%w: no directory configured", ErrDiscoveryDir)
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrDiscoveryDir, dir, err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDiscoveryDir, dir, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symlink", ErrDiscoveryDir, dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrDiscoveryDir, dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Getuid() {
		return fmt.Errorf("%w: %s belongs to another user", ErrDiscoveryDir, dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%w: %s: mode %v: %v", ErrDiscoveryDir, dir, fi.Mode().Perm(), err)
		}
	}
	return nil
}

// writeRecord publishes rec in dir: a 0600 temporary file renamed over the
// record. It returns the record's path.
func writeRecord(dir string, rec discoveryRecord) (string, error) {
	return putRecord(dir, rec, false)
}

// claimRecord publishes rec in dir only if no live producer's record names
// the channel: the temporary file is hard-linked to the record's name, which
// fails when a record exists (so of two producers starting at once exactly
// one wins); a dead producer's record or an unreadable one is removed and the
// claim tried again. ErrChannelInUse names the live holder.
func claimRecord(dir string, rec discoveryRecord) (string, error) {
	return putRecord(dir, rec, true)
}

func putRecord(dir string, rec discoveryRecord, exclusive bool) (string, error) {
	name, err := recordName(rec.ChannelName)
	if err != nil {
		return "", err
	}
	if err := prepareDir(dir, true); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDiscoveryDir, err)
	}
	// .<pid>.<start>.<random>.tmp: sweepable once its writer is dead.
	f, err := os.CreateTemp(dir, fmt.Sprintf(".%d.%d.*%s", rec.ProducerPID, rec.ProducerStartTime, tmpExt))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrDiscoveryDir, dir, err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(data, '\n'))
	cerr := f.Close()
	path := filepath.Join(dir, name)
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("%w: write %s: %v", ErrDiscoveryDir, path, err)
	}
	if !exclusive {
		if err := os.Rename(tmp, path); err != nil {
			_ = os.Remove(tmp)
			return "", fmt.Errorf("%w: rename to %s: %v", ErrDiscoveryDir, path, err)
		}
		return path, nil
	}
	defer os.Remove(tmp) // the record is a second link to it
	for range 3 {
		err := os.Link(tmp, path)
		if err == nil {
			return path, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("%w: link to %s: %v", ErrDiscoveryDir, path, err)
		}
		held, rerr := readRecord(path, rec.ChannelName)
		switch {
		case rerr == nil && held.alive():
			return "", fmt.Errorf("%w: live producer %s (%s) holds it in %s", ErrChannelInUse, held.identity(), held.ZmqCtrlEndpoint, path)
		case rerr == nil:
			removeIfSame(path, rec.ChannelName, held.identity())
		case errors.Is(rerr, ErrChannelNotFound): // gone meanwhile: try again
		default: // unreadable: ours to replace (the directory is ours)
			_ = os.Remove(path)
		}
	}
	return "", fmt.Errorf("%w: %s keeps being replaced", ErrChannelInUse, path)
}

// readRecord reads and validates the record file path of channel ("": any
// channel; the record names it).
// ErrChannelNotFound when there is none; ErrBadRecord (naming the file) when
// it is not a regular file of ours, too large or malformed.
func readRecord(path, channel string) (discoveryRecord, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return discoveryRecord{}, fmt.Errorf("%w: no discovery record %s", ErrChannelNotFound, path)
	}
	if err != nil {
		return discoveryRecord{}, fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return discoveryRecord{}, fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return discoveryRecord{}, fmt.Errorf("%w: %s is not a regular file", ErrBadRecord, path)
	case !ok || int(st.Uid) != os.Getuid():
		return discoveryRecord{}, fmt.Errorf("%w: %s belongs to another user", ErrBadRecord, path)
	case fi.Size() > maxRecordSize:
		return discoveryRecord{}, fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrBadRecord, path, fi.Size(), maxRecordSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return discoveryRecord{}, fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
	}
	var rec discoveryRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return discoveryRecord{}, fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
	}
	if err := rec.validate(channel); err != nil {
		return discoveryRecord{}, fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
	}
	return rec, nil
}

// lookupRecord returns the live record of channel in dir. A record of a dead
// producer is removed and reported as ErrChannelNotFound.
func lookupRecord(dir, channel string) (discoveryRecord, error) {
	name, err := recordName(channel)
	if err != nil {
		return discoveryRecord{}, err
	}
	if err := prepareDir(dir, false); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return discoveryRecord{}, fmt.Errorf("%w: no discovery directory %s", ErrChannelNotFound, dir)
		}
		return discoveryRecord{}, err
	}
	path := filepath.Join(dir, name)
	rec, err := readRecord(path, channel)
	if err != nil {
		return rec, err
	}
	if !rec.alive() {
		removeIfSame(path, channel, rec.identity())
		return discoveryRecord{}, fmt.Errorf("%w: discovery record %s names producer %s, which is dead", ErrChannelNotFound, path, rec.identity())
	}
	return rec, nil
}

// removeIfSame removes the record at path when it still names producer id (a
// successor may have renamed its own over it since it was read).
func removeIfSame(path, channel string, id proc.Identity) bool {
	rec, err := readRecord(path, channel)
	if err != nil || rec.identity() != id {
		return false
	}
	return os.Remove(path) == nil
}

// sweepRecords removes, in dir, the records of dead producers and the
// temporary files of dead writers. Malformed records are left alone (a
// lookup reports them). It returns the names removed.
func sweepRecords(dir string) ([]string, error) {
	if err := prepareDir(dir, false); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDiscoveryDir, dir, err)
	}
	var removed []string
	for _, e := range ents {
		n := e.Name()
		path := filepath.Join(dir, n)
		switch {
		case strings.HasPrefix(n, ".") && strings.HasSuffix(n, tmpExt):
			if id, ok := tmpWriter(n); ok && !id.Alive() && os.Remove(path) == nil {
				removed = append(removed, n)
			}
		case strings.HasSuffix(n, recordExt):
			rec, err := readRecord(path, "")
			if err == nil && !rec.alive() && removeIfSame(path, rec.ChannelName, rec.identity()) {
				removed = append(removed, n)
			}
		}
	}
	return removed, nil
}

// tmpWriter parses the writer out of a temporary file name .<pid>.<start>.<random>.tmp.
func tmpWriter(name string) (proc.Identity, bool) {
	parts := strings.Split(strings.TrimPrefix(name, "."), ".")
	if len(parts) < 3 {
		return proc.Identity{}, false
	}
	pid, err1 := strconv.Atoi(parts[0])
	start, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return proc.Identity{}, false
	}
	return proc.Identity{Pid: pid, StartTime: start}, true
}

// Discover returns the connection details of channel. It asks the broker
// (DISC_REQ, discoverBroker); with a MessengerConfig.DiscoveryDir it falls back
// to the channel's discovery record when the broker cannot answer (not
// connected, lost, timed out) or does not know the channel (see "Brokerless
// discovery" above). When both fail the error wraps both.
func (m *Messenger) Discover(ctx context.Context, channel string) (ChannelInfo, error) {
	info, err := m.discoverBroker(ctx, channel)
	if err == nil || m.cfg.DiscoveryDir == "" || !fallbackOn(err) {
		return info, err
	}
	rec, ferr := lookupRecord(m.cfg.DiscoveryDir, channel)
	if ferr != nil {
		return ChannelInfo{}, fmt.Errorf("discover %q: %w (broker: %w)", channel, ferr, err)
	}
	m.log.Debug("messenger: discovered from the discovery directory", "channel", channel, "pid", rec.ProducerPID, "broker_err", err)
	return rec.info(), nil
}

// fallbackOn reports whether a broker discovery error lets the record answer.
func fallbackOn(err error) bool {
	return !errors.Is(err, ErrClosed) && !errors.Is(err, ErrInvalidArgument) &&
		(errors.Is(err, ErrNotConnected) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrChannelNotFound))
}

// idle reports whether the Messenger has no broker session at all (never
// connected, or disconnected): a producer then runs standalone.
func (m *Messenger) idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == stateIdle && !m.closed
}

// DiscoveryDir returns the directory of discovery records ("" = none).
func (m *Messenger) DiscoveryDir() string { return m.cfg.DiscoveryDir }

// standalone reports whether a producer on m runs without a broker: m is idle
// and has a discovery directory. ErrNotConnected when m can neither register
// with a broker nor run standalone.
func (m *Messenger) standalone() (bool, error) {
	if m.Connected() {
		return false, nil
	}
	if m.cfg.DiscoveryDir != "" && m.idle() {
		return true, nil
	}
	return false, ErrNotConnected
}

// recordFile is a producer's published record.
type recordFile struct {
	path    string
	channel string
	id      proc.Identity
}

// publishRecord writes the producer's record in m's discovery directory
// (nil, nil without one). Standalone, a live record (of any producer, this
// process's included) refuses the channel (ErrChannelInUse); the directory is swept first.
func publishRecord(m *Messenger, channel string, info ProducerInfo, standalone bool) (*recordFile, error) {
	dir := m.cfg.DiscoveryDir
	if dir == "" {
		return nil, nil
	}
	if err := prepareDir(dir, true); err != nil {
		return nil, err
	}
	if removed, err := sweepRecords(dir); err != nil {
		m.log.Warn("hub: discovery directory sweep failed", "dir", dir, "err", err)
	} else if len(removed) > 0 {
		m.log.Info("hub: swept dead discovery records", "dir", dir, "removed", removed)
	}
	id := m.id()
	put := writeRecord // with a broker: the broker decided who owns the name
	if standalone {
		put = claimRecord
	}
	path, err := put(dir, newRecord(channel, info, id))
	if err != nil {
		return nil, err
	}
	return &recordFile{path: path, channel: channel, id: proc.Identity{Pid: int(id.pid), StartTime: id.start}}, nil
}

// remove deletes the record if it is still ours. Nil-safe.
func (r *recordFile) remove() {
	if r != nil {
		removeIfSame(r.path, r.channel, r.id)
	}
}

// registerWithBroker registers the consumer with the broker, unless its
// Messenger has none (idle: the channel was found by its discovery record).
func (c *consumer) registerWithBroker(ctx context.Context) error {
	if c.m.idle() {
		return nil
	}
	return c.m.RegisterConsumer(ctx, c.name)
}
