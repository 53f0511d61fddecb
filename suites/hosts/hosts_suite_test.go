package hosts_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

func TestHosts(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Hosts Suite")
}

// simBin is plh-sim built with -race; it runs the hub and node roles itself.
var simBin string

var _ = SynchronizedBeforeSuite(func() []byte {
	dir, err := os.MkdirTemp("", "plh-hosts-suite")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	bins, err := support.Build(dir, true, "cmd/plh-sim")
	Expect(err).NotTo(HaveOccurred())
	return []byte(bins["plh-sim"])
}, func(b []byte) { simBin = string(b) })

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(func() { support.CheckLeaks() })
