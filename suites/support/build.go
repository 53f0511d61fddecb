package support

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // Gomega DSL
)

// Build compiles the given main packages (import paths relative to the module,
// e.g. "cmd/plh-hub") into dir and returns name → binary path. With race set the
// binaries are built with -race.
func Build(dir string, race bool, pkgs ...string) (map[string]string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range pkgs {
		bin := filepath.Join(dir, filepath.Base(p))
		args := []string{"build", "-o", bin}
		if race {
			args = append(args, "-race")
		}
		args = append(args, "./"+strings.TrimPrefix(p, "./"))
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", p, err, b)
		}
		out[filepath.Base(p)] = bin
	}
	return out, nil
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

var nameSeq atomic.Int64

// UniqueName returns a channel/segment name unique to this process and call,
// starting with "plh_test_" so leftovers are easy to find and sweep.
func UniqueName(label string) string {
	return fmt.Sprintf("plh_test_%s_%d_%d", label, os.Getpid(), nameSeq.Add(1))
}

// BuildForSuite returns the two bodies of a suite's SynchronizedBeforeSuite:
// process 1 builds pkgs (with -race when race is set) into a temporary directory
// removed after the suite, and every process then sets *bins to name → path.
//
//	var _ = SynchronizedBeforeSuite(support.BuildForSuite(&bins, "plh-hub-suite-", false, "cmd/plh-node"))
func BuildForSuite(bins *map[string]string, dirPrefix string, race bool, pkgs ...string) (func() []byte, func([]byte)) {
	return func() []byte {
			dir, err := os.MkdirTemp("", dirPrefix)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(os.RemoveAll, dir)
			b, err := Build(dir, race, pkgs...)
			Expect(err).NotTo(HaveOccurred())
			out, err := json.Marshal(b)
			Expect(err).NotTo(HaveOccurred())
			return out
		}, func(data []byte) {
			Expect(json.Unmarshal(data, bins)).To(Succeed())
		}
}
