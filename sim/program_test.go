package sim

import (
	"slices"
	"testing"
)

func TestProgramEnvFromNodeFlags(t *testing.T) {
	got := programEnv([]string{"--name", "cam", "--broker", "tcp://127.0.0.1:5", "--shm=false", "--slot-size", "64", "--count", "9"})
	want := []string{"PLH_NAME=cam", "PLH_BROKER=tcp://127.0.0.1:5", "PLH_SHM=false", "PLH_SLOT_SIZE=64", "PLH_COUNT=9"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
