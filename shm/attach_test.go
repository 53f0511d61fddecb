package shm

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"
)

func createT(t *testing.T, cfg Config) *Block {
	t.Helper()
	b, err := Create(testName("a"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestCreateAttachShareData(t *testing.T) {
	cfg := testConfig(4, SingleReader)
	cfg.FlexSize = 100
	cfg.HubUID, cfg.ProducerName = "hub-1", "a producer name"
	b := createT(t, cfg)
	st, err := os.Stat(b.path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != int64(b.Size()) {
		t.Fatalf("segment file %v mode %v size %d", err, st.Mode(), st.Size())
	}
	if b.FlexSize() != 4096 {
		t.Fatalf("flex %d", b.FlexSize())
	}
	a, err := Attach(b.Name(), cfg.Secret, &AttachOptions{Expect: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if id := a.Identity(); id.HubUID != "hub-1" || id.ProducerName != "a producer name" {
		t.Fatalf("identity %+v", id)
	}
	w, r := mustWriter(t, b), mustReader(t, a, "c")
	if err := writeSeq(t, w, 7, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := readSeq(t, r, time.Second); err != nil || v != 7 {
		t.Fatalf("read %d %v", v, err)
	}
	if len(b.Consumers()) != 1 || b.Consumers()[0].UID != "uid-c" {
		t.Fatalf("consumers %+v", b.Consumers())
	}
	r.Close()
	if len(b.Consumers()) != 0 || b.Metrics().ActiveConsumers != 0 {
		t.Fatalf("consumer entry not freed: %+v", b.Consumers())
	}
}

func TestCreateReplacesStale(t *testing.T) {
	name := testName("stale")
	if err := os.WriteFile(SegmentPath(name), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := Create(name, testConfig(2, LatestOnly))
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := os.Stat(SegmentPath(name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("creator did not unlink on close")
	}
}

// §9.4 config validation: each unset field fails before anything is created.
func TestConfigValidation(t *testing.T) {
	good := testConfig(2, LatestOnly)
	for name, mut := range map[string]func(*Config){
		"unset policy":    func(c *Config) { c.Policy = PolicyUnset },
		"unset sync":      func(c *Config) { c.Sync = SyncUnset },
		"unset page":      func(c *Config) { c.PageSize = 0 },
		"odd page":        func(c *Config) { c.PageSize = 8192 },
		"capacity 0":      func(c *Config) { c.Capacity = 0 },
		"slot not mult":   func(c *Config) { c.SlotSize = 5000 },
		"slot < page":     func(c *Config) { c.SlotSize = 1024 },
		"checksum unset":  func(c *Config) { c.ChecksumType = ChecksumUnset },
		"absurd capacity": func(c *Config) { c.Capacity = 1 << 31; c.SlotSize = 1 << 24; c.PageSize = Page16M },
	} {
		c := good
		mut(&c)
		n := testName("bad")
		if _, err := Create(n, c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
		if _, err := os.Stat(SegmentPath(n)); err == nil {
			t.Errorf("%s: segment created", name)
			os.Remove(SegmentPath(n))
		}
	}
	for _, n := range []string{"", "a/b", "/", ".."} {
		if _, err := Create(n, good); !errors.Is(err, ErrInvalidName) {
			t.Errorf("name %q: %v", n, err)
		}
	}
	b, err := Create("/"+testName("slash"), good)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// corrupt writes into the segment file at off.
func corrupt(t *testing.T, b *Block, off int64, p []byte) {
	t.Helper()
	f, err := os.OpenFile(b.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func TestAttachBadInput(t *testing.T) {
	short := &AttachOptions{InitWait: 100 * time.Millisecond}
	cfg := testConfig(4, LatestOnly)
	cases := []struct {
		name string
		mess func(t *testing.T, b *Block)
		want error
	}{
		{"wrong secret", nil, ErrSecret},
		{"corrupted magic", func(t *testing.T, b *Block) { corrupt(t, b, 0, u32(0x12345678)) }, ErrBadMagic},
		{"zero magic", func(t *testing.T, b *Block) { corrupt(t, b, 0, u32(0)) }, ErrNotInitialized},
		{"version", func(t *testing.T, b *Block) { corrupt(t, b, 4, []byte{2, 0}) }, ErrVersion},
		{"layout hash", func(t *testing.T, b *Block) { corrupt(t, b, 2496, []byte{0xFF}) }, ErrLayoutHash},
		{"layout checksum", func(t *testing.T, b *Block) { corrupt(t, b, 2528, []byte{0xFF}) }, ErrLayoutChecksum},
		{"absurd capacity", func(t *testing.T, b *Block) { corrupt(t, b, 164, u32(1<<30)) }, ErrCorruptHeader},
		{"absurd page size", func(t *testing.T, b *Block) { corrupt(t, b, 156, u32(12345)) }, ErrCorruptHeader},
		{"absurd total size", func(t *testing.T, b *Block) { corrupt(t, b, 8, binary.LittleEndian.AppendUint64(nil, 1<<62)) }, ErrTruncated},
		{"truncated file", func(t *testing.T, b *Block) { os.Truncate(b.path, 8192) }, ErrTruncated},
		{"truncated below header", func(t *testing.T, b *Block) { os.Truncate(b.path, 100) }, ErrTruncated},
		{"empty file", func(t *testing.T, b *Block) { os.Truncate(b.path, 0) }, ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := createT(t, cfg)
			secret := cfg.Secret
			if c.mess != nil {
				c.mess(t, b)
			} else {
				secret++
			}
			a, err := Attach(b.Name(), secret, short)
			if !errors.Is(err, c.want) {
				a.Close()
				t.Fatalf("attach: %v, want %v", err, c.want)
			}
			if err != nil && !containsName(err, b.Name()) {
				t.Errorf("error %q does not name the segment", err)
			}
		})
	}
	if _, err := Attach(testName("missing"), 1, short); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func containsName(err error, name string) bool {
	return err != nil && len(err.Error()) > 0 && (len(name) == 0 || stringsContains(err.Error(), name))
}

func stringsContains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestAttachExpectations(t *testing.T) {
	fs := &Schema{Name: "flex", Major: 1, Fields: []Field{{"producer_pid", "u64", 0}}}
	ss := &Schema{Name: "slot", Major: 1, Fields: []Field{{"value", "u32", 0}}}
	cfg := testConfig(4, LatestOnly)
	cfg.FlexSize = 4096
	cfg.FlexSchema, cfg.SlotSchema = fs, ss
	b := createT(t, cfg)
	other := &Schema{Name: "x", Major: 1, Fields: []Field{{"value", "u64", 0}}}
	v2 := *ss
	v2.Major = 2
	wrongCap := cfg
	wrongCap.Capacity = 8
	for name, c := range map[string]struct {
		o    AttachOptions
		want error
	}{
		"match":       {AttachOptions{Expect: &cfg, FlexSchema: fs, SlotSchema: ss}, nil},
		"slot schema": {AttachOptions{SlotSchema: other}, ErrSchemaMismatch},
		"flex schema": {AttachOptions{FlexSchema: other}, ErrSchemaMismatch},
		"both":        {AttachOptions{FlexSchema: other, SlotSchema: other}, ErrSchemaMismatch},
		"major":       {AttachOptions{SlotSchema: &v2}, ErrSchemaMismatch},
		"capacity":    {AttachOptions{Expect: &wrongCap}, ErrConfigMismatch},
	} {
		before := b.Metrics().SchemaMismatch
		a, err := Attach(b.Name(), cfg.Secret, &c.o)
		if !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if errors.Is(err, ErrSchemaMismatch) && b.Metrics().SchemaMismatch != before+1 {
			t.Errorf("%s: schema_mismatch_count not incremented", name)
		}
		a.Close()
	}
}
