package shm

import (
	"encoding/hex"
	"testing"
)

// specOffsets is the byte map of spec/datablock.md §4–§5.
var specOffsets = map[string][2]uintptr{
	"magic_number": {0, 4}, "version_major": {4, 2}, "version_minor": {6, 2},
	"total_block_size": {8, 8}, "shared_secret": {16, 64}, "flexzone_schema_hash": {80, 32},
	"datablock_schema_hash": {112, 32}, "schema_version": {144, 4}, "policy": {148, 4},
	"consumer_sync_policy": {152, 4}, "physical_page_size": {156, 4}, "logical_unit_size": {160, 4},
	"ring_buffer_capacity": {164, 4}, "flexible_zone_size": {168, 4}, "checksum_type": {172, 1},
	"checksum_policy": {176, 4}, "write_index": {184, 8}, "commit_index": {192, 8},
	"read_index": {200, 8}, "active_consumer_count": {208, 4},
	"writer_timeout_count": {216, 8}, "writer_lock_timeout_count": {224, 8},
	"writer_reader_timeout_count": {232, 8}, "writer_blocked_total_ns": {240, 8},
	"write_lock_contention": {248, 8}, "write_generation_wraps": {256, 8},
	"reader_not_ready_count": {264, 8}, "reader_race_detected": {272, 8},
	"reader_validation_failed": {280, 8}, "reader_peak_count": {288, 8},
	"reader_timeout_count": {296, 8}, "last_error_timestamp_ns": {304, 8},
	"last_error_code": {312, 4}, "error_sequence": {316, 4},
	"slot_acquire_errors": {320, 8}, "slot_commit_errors": {328, 8}, "checksum_failures": {336, 8},
	"zmq_send_failures": {344, 8}, "zmq_recv_failures": {352, 8}, "zmq_timeout_count": {360, 8},
	"recovery_actions_count": {368, 8}, "schema_mismatch_count": {376, 8},
	"reserved_errors": {384, 16}, "heartbeat_sent_count": {400, 8}, "heartbeat_failed_count": {408, 8},
	"last_heartbeat_ns": {416, 8}, "reserved_hb": {424, 8}, "total_slots_written": {432, 8},
	"total_slots_read": {440, 8}, "total_bytes_written": {448, 8}, "total_bytes_read": {456, 8},
	"uptime_seconds": {464, 8}, "creation_timestamp_ns": {472, 8}, "reserved_perf": {480, 16},
	"consumer_heartbeats": {496, 1024}, "hub_uid": {1520, 40}, "hub_name": {1560, 64},
	"producer_uid": {1624, 40}, "producer_name": {1664, 64}, "spinlock_states": {1728, 256},
	"flexible_zone_checksums": {1984, 512}, "reserved_header": {2496, 1600},
	"reserved.layout_hash": {2496, 32}, "reserved.layout_checksum": {2528, 32},
	"reserved.sync_positions": {2560, 64}, "reserved.producer_pid": {2624, 8},
	"reserved.producer_hb_ns": {2632, 8},
	"go.commit_waiters":       {2688, 4}, "go.release_waiters": {2692, 4}, "go.release_seq": {2752, 4},
	"go.creator_id": {2816, 8},
	"sizeof.header": {0, 4096}, "sizeof.consumer_entry": {0, 128}, "sizeof.spinlock": {0, 32},
	"sizeof.flex_checksum": {0, 64}, "sizeof.slot_entry": {0, 64},
	"consumer.id": {0, 8}, "consumer.last_hb": {8, 8}, "consumer.uid": {16, 40},
	"consumer.name": {56, 32}, "consumer.held": {88, 32},
	"slot.write_lock": {0, 8}, "slot.reader_count": {8, 4}, "slot.state": {12, 4},
	"slot.generation": {16, 8}, "slot.id": {24, 8}, "slot.lock_since": {32, 8},
}

func TestHeaderOffsetsMatchSpec(t *testing.T) {
	got := headerOffsets()
	if len(got) != len(specOffsets) {
		t.Errorf("%d offsets in the Go struct table, %d in the spec table", len(got), len(specOffsets))
	}
	for name, want := range specOffsets {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s: Go {off,size} = %v, spec %v", name, g, want)
		}
	}
}

func TestHeaderLayoutHash(t *testing.T) {
	s := headerLayoutBLDS()
	if len(s) != 1744 {
		t.Errorf("layout BLDS is %d bytes, want 1744", len(s))
	}
	const want = "95515799940ea54b4037bb83c8fe3a64493048cd15b7550861c65e000d0c058e"
	if got := hex.EncodeToString(headerLayoutHash[:]); got != want {
		t.Fatalf("header layout hash %s, want %s\n%s", got, want, s)
	}
}

func TestLayoutChecksumVector(t *testing.T) {
	sum := layoutChecksum(4, 4096, 4096, 0, 0, 2, 0)
	const want = "73a58ba42c191e405d54e37f76e53b7e904c94ca1161df175a9608a9f8d580fc"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("layout checksum %s, want %s", got, want)
	}
}

func TestBLDSSchemaHashVectors(t *testing.T) {
	cases := []struct {
		s    Schema
		want string
	}{
		{Schema{}, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"},
		{Schema{Fields: []Field{{"producer_pid", "u64", 0}}}, "9f3d8f265a54028f950ae0606c46b0cab39a884423ed0fbed67f1d6b599feff2"},
		{Schema{Fields: []Field{{"sequence", "u64", 0}, {"app_checksum", "u32", 0}, {"payload", "u8", 4084}}}, "d4d90d14b0d7aeba00fed553edb30be363d631ba8c081e7fae5ccea61eac9a58"},
		{Schema{Fields: []Field{{"value", "u32", 0}}}, "20d2208c3848869a7e97c259b059aab2724d5e13aef462db7f107e019a9810e2"},
	}
	for _, c := range cases {
		h := c.s.Hash()
		if got := hex.EncodeToString(h[:]); got != c.want {
			t.Errorf("%q: %s, want %s", c.s.BLDS(), got, c.want)
		}
	}
}

type stressSlot struct {
	Sequence    uint64     `blds:"sequence"`
	AppChecksum uint32     `blds:"app_checksum"`
	Payload     [4084]byte `blds:"payload"`
}

func TestSchemaOfReflection(t *testing.T) {
	s, err := SchemaOf[stressSlot]()
	if err != nil {
		t.Fatal(err)
	}
	if got := s.BLDS(); got != "sequence:u64;app_checksum:u32;payload:u8[4084]" {
		t.Fatalf("BLDS %q", got)
	}
	if s.PackedVersion() != 0x00400000 {
		t.Fatalf("version %#x", s.PackedVersion())
	}
	if _, err := SchemaOf[struct{ P *int }](); err == nil {
		t.Fatal("pointer field accepted")
	}
}

func TestComputeLayoutExamples(t *testing.T) {
	l := computeLayout(4, 4096, 0)
	if l.flexOff != 8192 || l.totalSize != 24576 {
		t.Errorf("N=4: D=%d total=%d", l.flexOff, l.totalSize)
	}
	l = computeLayout(32, 4096, 4096)
	if l.flexOff != 8192 || l.ringOff != 12288 || l.totalSize != 143360 {
		t.Errorf("N=32: D=%d ring=%d total=%d", l.flexOff, l.ringOff, l.totalSize)
	}
}
