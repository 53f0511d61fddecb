package hub_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

func TestHub(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Hub Suite")
}

// bins maps binary name → path (plh-node).
var bins map[string]string

var _ = SynchronizedBeforeSuite(support.BuildForSuite(&bins, "plh-hub-suite-", false, "cmd/plh-node"))

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(support.CheckLeaks)
