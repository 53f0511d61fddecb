package shm

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pylabhub/plh/internal/proc"
)

// Block is one mapped DataBlock segment. Create makes one (and owns its name);
// Attach maps an existing one. Writers and Readers are made from a Block.
//
// IMPORTANT: Close the Block only after its Writers and Readers are done; Close
// closes any still open, then unmaps.
type Block struct {
	name  string
	path  string // "" for heap blocks
	file  *os.File
	mem   []byte
	heap  bool
	owner bool // creator: unlinks the name on Close
	diag  bool // opened by OpenDiagnostic: no slot access

	h     *header
	slots []slotEntry
	lay   layout
	sync  SyncPolicy
	csum  ChecksumPolicy
	self  uint64 // packed identity of this process
	log   *slog.Logger

	mu       sync.Mutex // guards children and closed
	closed   atomic.Bool
	children map[io.Closer]struct{}
	closeErr error
}

var discard = slog.New(slog.DiscardHandler)

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return discard
	}
	return l
}

// SegmentPath returns the file that backs the segment name.
func SegmentPath(name string) string {
	n, _ := validName(name)
	return filepath.Join(shmDir, n)
}

// Create creates the segment name for cfg. Everything is validated before shared
// memory is touched; the file is created unnamed with mode 0600, preallocated,
// size-checked and formatted (magic number last), then linked under the name. A
// segment of that name is replaced only when it is stale (its owners are dead);
// ErrSegmentInUse, naming the live owner, otherwise (claim.go).
func Create(name string, cfg Config) (*Block, error) {
	n, err := validName(name)
	if err != nil {
		return nil, err
	}
	lay, err := cfg.validate()
	if err == nil {
		err = validateSchemas(&cfg)
	}
	log := logger(cfg.Logger)
	if err != nil {
		log.Error("datablock create rejected", "name", n, "err", err)
		return nil, fmt.Errorf("create %s: %w", n, err)
	}
	if cfg.Policy == PolicySingle && cfg.Capacity != 1 || cfg.Policy == PolicyDoubleBuffer && cfg.Capacity != 2 {
		log.Warn("buffer policy disagrees with capacity (informational only)", "name", n, "policy", cfg.Policy, "capacity", cfg.Capacity)
	}
	path := filepath.Join(shmDir, n)
	f, err := createUnnamed(shmDir)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", n, err)
	}
	fail := func(err error) (*Block, error) {
		f.Close() // never linked under the name: nothing to unlink
		return nil, fmt.Errorf("create %s: %w", n, err)
	}
	if err := preallocate(f, int64(lay.totalSize)); err != nil {
		return fail(fmt.Errorf("preallocate %d bytes: %w", lay.totalSize, err))
	}
	if st, err := f.Stat(); err != nil || uint64(st.Size()) != lay.totalSize {
		return fail(fmt.Errorf("size after preallocation is not %d bytes (%v)", lay.totalSize, err))
	}
	mem, err := mapFile(f, int(lay.totalSize))
	if err != nil {
		return fail(fmt.Errorf("mmap: %w", err))
	}
	if err := format(mem, &cfg, lay); err != nil {
		unmap(mem)
		return fail(err)
	}
	if err := publish(f, path, n, log); err != nil {
		unmap(mem)
		return fail(err)
	}
	b := newBlock(n, mem, headerAt(mem), lay, log)
	b.path, b.file, b.owner = path, f, true
	log.Debug("datablock created", "name", n, "size", lay.totalSize, "capacity", cfg.Capacity, "sync", cfg.Sync)
	return b, nil
}

// newHeapBlock formats a block in a heap buffer: the same ring logic, visible to the
// race detector. Used by tests.
func newHeapBlock(cfg Config) (*Block, error) {
	lay, err := cfg.validate()
	if err == nil {
		err = validateSchemas(&cfg)
	}
	if err != nil {
		return nil, err
	}
	mem := heapBuffer(int(lay.totalSize))
	if err := format(mem, &cfg, lay); err != nil {
		return nil, err
	}
	b := newBlock("heap", mem, headerAt(mem), lay, logger(cfg.Logger))
	b.heap = true
	return b, nil
}

func validateSchemas(cfg *Config) error {
	for _, s := range []*Schema{cfg.FlexSchema, cfg.SlotSchema} {
		if s != nil {
			if err := s.validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// format writes a fresh header and control zone into zeroed memory, magic last.
func format(mem []byte, cfg *Config, lay layout) (err error) {
	defer guard(&err)
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	h := headerAt(mem)
	h.verMajor, h.verMinor = versionMajor, versionMinor
	h.totalSize = lay.totalSize
	if _, err := rand.Read(h.secret[:]); err != nil {
		return fmt.Errorf("random secret: %w", err)
	}
	if cfg.Secret != 0 {
		binary.LittleEndian.PutUint64(h.secret[:8], cfg.Secret)
	}
	if cfg.FlexSchema != nil {
		h.flexSchemaHash = cfg.FlexSchema.Hash()
	}
	if cfg.SlotSchema != nil {
		h.slotSchemaHash = cfg.SlotSchema.Hash()
		h.schemaVersion = cfg.SlotSchema.PackedVersion()
	}
	h.policy = uint32(cfg.Policy - 1)
	h.syncPolicy = uint32(cfg.Sync - 1)
	h.pageSize = cfg.PageSize
	h.unitSize = cfg.stride()
	h.capacity = cfg.Capacity
	h.flexSize = uint32(lay.flexSize)
	h.checksumType = uint8(cfg.ChecksumType)
	h.checksumPolicy = uint32(cfg.checksumPolicy() - 1)
	h.writeIndex, h.readIndex = 0, 0
	atomic.StoreUint64(&h.commitIndex, invalidID)
	h.creationTimestampNs = uint64(monoNow())
	putCString(h.hubUID[:], cfg.HubUID)
	putCString(h.hubName[:], cfg.HubName)
	putCString(h.producerUID[:], cfg.ProducerUID)
	putCString(h.producerName[:], cfg.ProducerName)
	h.layoutHash = headerLayoutHash
	h.layoutChecksum = h.layoutChecksumNow()
	self := proc.Self().Pack()
	h.creatorID = self
	h.producerID = self
	h.producerHB = uint64(monoNow())
	atomic.StoreUint32(&h.magic, magicValue) // release: everything above is visible first
	return nil
}

// newBlock wraps the mapping mem. Its geometry and policies come from valid, the
// header as validated (for Attach, the private copy: the live header may have
// changed since), never from the live header.
func newBlock(name string, mem []byte, valid *header, lay layout, log *slog.Logger) *Block {
	return &Block{
		name: name, mem: mem, h: headerAt(mem), lay: lay, log: log,
		slots:    slotEntriesAt(mem, int(lay.capacity)),
		sync:     SyncPolicy(valid.syncPolicy + 1),
		csum:     ChecksumPolicy(valid.checksumPolicy + 1),
		self:     proc.Self().Pack(),
		children: map[io.Closer]struct{}{},
	}
}

// Attach maps the existing segment name after checking, in order: magic (waiting up
// to opts.InitWait for the creator), version, size against the file, header sanity,
// layout hash, layout checksum, shared secret (constant time), then the expected
// config and schemas of opts. Each failure is its own sentinel, wrapped with the name.
func Attach(name string, secret uint64, opts *AttachOptions) (*Block, error) {
	n, err := validName(name)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &AttachOptions{}
	}
	b, err := attachPath(filepath.Join(shmDir, n), n, secret, true, opts)
	if err != nil {
		logger(opts.Logger).Error("datablock attach failed", "name", n, "err", err)
	}
	return b, err
}

// OpenDiagnostic maps the segment name without the secret for recovery and checks
// (magic, version, size, layout hash and checksum are still verified). Slot
// acquisition is refused on such a Block.
func OpenDiagnostic(name string, opts *AttachOptions) (*Block, error) {
	n, err := validName(name)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &AttachOptions{}
	}
	b, err := attachPath(filepath.Join(shmDir, n), n, 0, false, opts)
	if b != nil {
		b.diag = true
	}
	return b, err
}

func attachPath(path, name string, secret uint64, checkSecret bool, opts *AttachOptions) (*Block, error) {
	wrap := func(err error) error { return fmt.Errorf("attach %s: %w", name, err) }
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, wrap(ErrNotFound)
		}
		return nil, wrap(err)
	}
	hdr, size, err := readHeader(f, opts.InitWait)
	if err == nil {
		err = validateHeader(hdr, size, secret, checkSecret, opts)
	}
	if errors.Is(err, ErrSchemaMismatch) {
		countSchemaMismatch(f, hdr)
	}
	if err != nil {
		f.Close()
		return nil, wrap(err)
	}
	h := headerAt(hdr)
	lay := headerLayout(h)
	mem, err := mapFile(f, int(lay.totalSize))
	if err != nil {
		f.Close()
		return nil, wrap(fmt.Errorf("mmap: %w", err))
	}
	b := newBlock(name, mem, h, lay, logger(opts.Logger))
	b.path, b.file = path, f
	return b, nil
}

// countSchemaMismatch increments schema_mismatch_count in a segment that passed
// every check but the schema ones (so its layout is ours and the counter is where
// we think): map it briefly, add atomically.
func countSchemaMismatch(f *os.File, hdr []byte) {
	lay := headerLayout(headerAt(hdr))
	mem, err := mapFile(f, int(lay.totalSize))
	if err != nil {
		return
	}
	defer unmap(mem)
	func() {
		var err error
		defer guard(&err)
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		atomic.AddUint64(&headerAt(mem).schemaMismatchCount, 1)
	}()
}

// readHeader waits for the magic number and returns a private copy of the header
// (read with pread, so a hostile file cannot fault us) and the file size.
func readHeader(f *os.File, wait time.Duration) ([]byte, int64, error) {
	if wait <= 0 {
		wait = 5 * time.Second
	}
	deadline := time.Now().Add(wait)
	buf := heapBuffer(headerSize)
	for {
		st, err := f.Stat()
		if err != nil {
			return nil, 0, err
		}
		size := st.Size()
		if size >= headerSize {
			if _, err := f.ReadAt(buf, 0); err != nil {
				return nil, 0, fmt.Errorf("read header: %w", err)
			}
			switch m := binary.LittleEndian.Uint32(buf); m {
			case magicValue:
				return buf, size, nil
			case 0:
			default:
				return nil, 0, fmt.Errorf("%w: %#08x", ErrBadMagic, m)
			}
		}
		if time.Now().After(deadline) {
			if size < headerSize {
				return nil, 0, fmt.Errorf("%w: file has %d bytes, less than a header", ErrTruncated, size)
			}
			return nil, 0, fmt.Errorf("%w after %v", ErrNotInitialized, wait)
		}
		time.Sleep(min(10*time.Millisecond, time.Until(deadline)+time.Millisecond))
	}
}

// headerLayout computes the layout from validated header fields.
func headerLayout(h *header) layout {
	unit, capacity := h.unitSize, h.capacity
	if unit == 0 {
		unit = h.pageSize
	}
	if capacity == 0 {
		capacity = 1
	}
	return computeLayout(uint64(capacity), uint64(unit), uint64(h.flexSize))
}

// validateHeader runs the attach checks on a private header copy.
func validateHeader(hdr []byte, size int64, secret uint64, checkSecret bool, opts *AttachOptions) error {
	h := headerAt(hdr)
	if h.magic != magicValue {
		return fmt.Errorf("%w: %#08x", ErrBadMagic, h.magic)
	}
	if h.verMajor != versionMajor || h.verMinor > versionMinor {
		return fmt.Errorf("%w: %d.%d (this build reads %d.%d)", ErrVersion, h.verMajor, h.verMinor, versionMajor, versionMinor)
	}
	if uint64(size) < h.totalSize {
		return fmt.Errorf("%w: file has %d bytes, header says %d", ErrTruncated, size, h.totalSize)
	}
	if uint64(size) != h.totalSize {
		return fmt.Errorf("%w: file has %d bytes, header says %d", ErrCorruptHeader, size, h.totalSize)
	}
	switch h.pageSize {
	case Page4K, Page4M, Page16M:
	default:
		return fmt.Errorf("%w: page size %d", ErrCorruptHeader, h.pageSize)
	}
	unit := h.unitSize
	if unit == 0 {
		unit = h.pageSize
	}
	if unit < h.pageSize || unit%h.pageSize != 0 || h.flexSize%4096 != 0 {
		return fmt.Errorf("%w: slot size %d / flex size %d", ErrCorruptHeader, h.unitSize, h.flexSize)
	}
	if uint64(h.capacity) > maxTotalSize/uint64(unit) {
		return fmt.Errorf("%w: %d slots of %d bytes", ErrCorruptHeader, h.capacity, unit) // the size would wrap
	}
	if h.policy > 2 || h.syncPolicy > 2 || h.checksumPolicy > 2 || h.checksumType != 0 {
		return fmt.Errorf("%w: policy %d, sync %d, checksum %d/%d", ErrCorruptHeader, h.policy, h.syncPolicy, h.checksumType, h.checksumPolicy)
	}
	if lay := headerLayout(h); lay.totalSize != h.totalSize {
		return fmt.Errorf("%w: %d slots of %d plus flex %d need %d bytes, header says %d", ErrCorruptHeader, h.capacity, unit, h.flexSize, lay.totalSize, h.totalSize)
	}
	if h.layoutHash != headerLayoutHash {
		return fmt.Errorf("%w: stored %x", ErrLayoutHash, h.layoutHash[:8])
	}
	if h.layoutChecksum != h.layoutChecksumNow() {
		return ErrLayoutChecksum
	}
	if checkSecret {
		var want [8]byte
		binary.LittleEndian.PutUint64(want[:], secret)
		if subtle.ConstantTimeCompare(want[:], h.secret[:8]) != 1 {
			return ErrSecret
		}
	}
	if want := opts.RequireChecksum; want != ChecksumDefault && h.checksumPolicy != uint32(want-1) {
		return fmt.Errorf("%w: checksum policy %v required, segment has %v", ErrConfigMismatch, want, ChecksumPolicy(h.checksumPolicy+1))
	}
	if e := opts.Expect; e != nil {
		if uint64(h.flexSize) != roundUp(uint64(e.FlexSize), 4096) || h.capacity != e.Capacity ||
			h.pageSize != e.PageSize || unit != e.stride() || h.checksumType != uint8(e.ChecksumType) {
			return fmt.Errorf("%w: segment has capacity %d, page %d, slot %d, flex %d", ErrConfigMismatch, h.capacity, h.pageSize, unit, h.flexSize)
		}
	}
	var zero [32]byte
	if s := opts.FlexSchema; s != nil {
		if want := s.Hash(); h.flexSchemaHash == zero || h.flexSchemaHash != want {
			return fmt.Errorf("%w: flex-zone schema %q", ErrSchemaMismatch, s.Name)
		}
	}
	if s := opts.SlotSchema; s != nil {
		if want := s.Hash(); h.slotSchemaHash == zero || h.slotSchemaHash != want || h.schemaVersion>>22 != uint32(s.Major&0x3FF) {
			return fmt.Errorf("%w: slot schema %q", ErrSchemaMismatch, s.Name)
		}
	}
	return nil
}

// Name returns the segment name.
func (b *Block) Name() string { return b.name }

// Size returns the segment size in bytes.
func (b *Block) Size() int { return int(b.lay.totalSize) }

// Capacity returns the slot count N.
func (b *Block) Capacity() int { return int(b.lay.capacity) }

// SlotSize returns the slot stride S in bytes (the span of every slot).
func (b *Block) SlotSize() int { return int(b.lay.stride) }

// FlexSize returns the flex-zone size (a multiple of 4096, 0 = none).
func (b *Block) FlexSize() int { return int(b.lay.flexSize) }

// Sync returns the consumer sync policy.
func (b *Block) Sync() SyncPolicy { return b.sync }

// ChecksumPolicy returns the checksum policy.
func (b *Block) ChecksumPolicy() ChecksumPolicy { return b.csum }

// Flex returns the flex zone (nil if none). IMPORTANT: the bytes are shared with
// other processes; see the package doc on faults.
func (b *Block) Flex() []byte {
	if b.lay.flexSize == 0 {
		return nil
	}
	return b.mem[b.lay.flexOff:b.lay.ringOff:b.lay.ringOff]
}

func (b *Block) slotBuf(idx uint64) []byte {
	off := b.lay.ringOff + idx*b.lay.stride
	return b.mem[off : off+b.lay.stride : off+b.lay.stride]
}

func (b *Block) csumEntry(idx uint64) []byte {
	off := b.lay.csumOff + idx*checksumSize
	return b.mem[off : off+checksumSize : off+checksumSize]
}

// adopt registers a child closed by Close.
func (b *Block) adopt(c io.Closer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	b.children[c] = struct{}{}
	return nil
}

func (b *Block) disown(c io.Closer) {
	b.mu.Lock()
	delete(b.children, c)
	b.mu.Unlock()
}

// Close closes the Block's open Writers and Readers, unmaps the segment and, for the
// creator, unlinks the name. Nil-safe and idempotent.
func (b *Block) Close() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return b.closeErr
	}
	kids := make([]io.Closer, 0, len(b.children))
	for c := range b.children {
		kids = append(kids, c)
	}
	b.mu.Unlock()
	for _, c := range kids {
		c.Close()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Swap(true) {
		return b.closeErr
	}
	var errs []error
	// Unlink only our own file: the name may have been removed and taken since.
	unlink := b.owner && b.file != nil && sameFile(b.file, b.path)
	if !b.heap {
		errs = append(errs, unmap(b.mem))
	}
	b.mem, b.h, b.slots = nil, nil, nil
	if b.file != nil {
		errs = append(errs, b.file.Close())
	}
	if unlink {
		if err := os.Remove(b.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	b.closeErr = errors.Join(errs...)
	return b.closeErr
}

// Remove unlinks the segment name (used after a creator died). Mappings stay valid.
func Remove(name string) error {
	n, err := validName(name)
	if err != nil {
		return err
	}
	err = os.Remove(filepath.Join(shmDir, n))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", n, ErrNotFound)
	}
	return err
}

// CheckSize compares the file's size with the mapping (fstat); ErrTruncated if the
// file was shrunk under us.
func (b *Block) CheckSize() error {
	if b.file == nil {
		return nil
	}
	st, err := b.file.Stat()
	if err != nil {
		return err
	}
	if uint64(st.Size()) < b.lay.totalSize {
		return fmt.Errorf("%s: %w: file has %d bytes, mapping %d", b.name, ErrTruncated, st.Size(), b.lay.totalSize)
	}
	return nil
}

// guard turns a memory fault (SIGBUS/SIGSEGV on the mapping, with SetPanicOnFault
// on) into ErrFault. Any other panic is re-raised.
func guard(err *error) {
	if r := recover(); r != nil {
		if _, ok := r.(interface{ Addr() uintptr }); ok {
			*err = ErrFault
			return
		}
		panic(r)
	}
}

// alive reports whether the packed identity names a live process. Our own identity
// is alive without a /proc read.
func (b *Block) alive(id uint64) bool {
	if id == 0 {
		return false
	}
	if id == b.self {
		return true
	}
	return proc.Unpack(id).Alive()
}

// ctxErr returns ctx's error without allocating.
func ctxErr(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	return ctx.Err()
}
