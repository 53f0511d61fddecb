package shm

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks for leaked goroutines and for segments left in /dev/shm.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(consumerChild(spec)) // re-executed as a consumer (control_test.go)
	}
	if spec := os.Getenv(groupChildEnv); spec != "" {
		os.Exit(groupChild(spec)) // re-executed as a group member (group_test.go)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	for _, pat := range []string{"plh_unit_*_%d_*", "plh_example_*_%d", "plh_unit_*_%d_*.g*"} {
		left, _ := filepath.Glob(filepath.Join(shmDir, fmt.Sprintf(pat, os.Getpid())))
		for _, f := range left {
			fmt.Fprintln(os.Stderr, "segment left behind:", f)
			os.Remove(f)
			code = 1
		}
	}
	os.Exit(code)
}
