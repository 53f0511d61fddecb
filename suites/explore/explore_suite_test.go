package explore_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

func TestExplore(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Explore Suite")
}

// bins: "real" is plh-sim as shipped, "seeded" the same built with the
// plh_seeded_bug tag (a broker with a planted CONSUMER_DEREG defect). Both
// with -race, like the scenarios suite.
var bins map[string]string

var _ = SynchronizedBeforeSuite(func() []byte {
	dir, err := os.MkdirTemp("", "plh-explore-suite")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	root, err := support.ModuleRoot()
	Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for name, tags := range map[string]string{"real": "", "seeded": "plh_seeded_bug"} {
		bin := filepath.Join(dir, "plh-sim-"+name)
		cmd := exec.Command("go", "build", "-race", "-tags", tags, "-o", bin, "./cmd/plh-sim")
		cmd.Dir = root
		b, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "build %s: %s", name, b)
		out[name] = bin
	}
	b, err := json.Marshal(out)
	Expect(err).NotTo(HaveOccurred())
	return b
}, func(b []byte) { Expect(json.Unmarshal(b, &bins)).To(Succeed()) })

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(func() { support.CheckLeaks() })
