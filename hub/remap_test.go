package hub

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pylabhub/plh/shm"
)

func TestRemapSegmentName(t *testing.T) {
	if got := remapSegmentName("cam", 0); got != "cam" {
		t.Fatalf("generation 0: %q", got)
	}
	if got := remapSegmentName("cam", 12); got != "cam.remap-12" {
		t.Fatalf("generation 12: %q", got)
	}
}

// TestRemapStandaloneRefused: without a broker nobody can tell the consumers,
// so a standalone producer refuses to remap and keeps its layout.
func TestRemapStandaloneRefused(t *testing.T) {
	m, err := NewMessenger(MessengerConfig{DiscoveryDir: recordDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cfg := shm.Config{PageSize: shm.Page4K, Capacity: 2, Policy: shm.PolicyRingBuffer, Sync: shm.SingleReader, Secret: 5}
	name := chanName("remap_alone")
	p, err := NewProducer(context.Background(), m, ProducerOptions{Channel: name, SHM: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg.Capacity = 4
	if err := p.Remap(context.Background(), RemapOptions{SHM: cfg}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("standalone remap: %v, want ErrNotConnected", err)
	}
	if p.LayoutGeneration() != 0 || p.SHM().Capacity() != 2 {
		t.Fatalf("layout changed: generation %d, capacity %d", p.LayoutGeneration(), p.SHM().Capacity())
	}
	if m, _ := filepath.Glob(shm.SegmentPath(name) + ".remap-*"); len(m) != 0 {
		t.Fatalf("segments left: %v", m)
	}
	if _, err := os.Stat(shm.SegmentPath(name)); err != nil {
		t.Fatalf("the channel's segment: %v", err)
	}
}
