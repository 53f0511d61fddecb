package scenarios_test

import (
	"os"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/sim/simtest"
	"github.com/pylabhub/plh/suites/support"
)

func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Scenarios Suite")
}

// simBin is plh-sim built with -race; it runs the hub and node roles itself.
// goConsumerBin is examples/goconsumer, a user's own program built on hub.
var simBin, goConsumerBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	dir, err := os.MkdirTemp("", "plh-scenarios-suite")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	bins, err := support.Build(dir, true, "cmd/plh-sim", "examples/goconsumer")
	Expect(err).NotTo(HaveOccurred())
	return []byte(bins["plh-sim"] + "\n" + bins["goconsumer"])
}, func(b []byte) { simBin, goConsumerBin, _ = strings.Cut(string(b), "\n") })

// engine runs scenarios in this process (sim/simtest), with simBin's roles and
// run folders under the spec's temporary folder.
func engine() simtest.Engine {
	return simtest.Engine{Bin: simBin, OutDir: GinkgoT().TempDir()}
}

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(func() { support.CheckLeaks() })
