package admin_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

// python is Debian's interpreter with python3-zmq; the pyenv python3 on PATH has no zmq.
const python = "/usr/bin/python3"

// bins holds the paths of the binaries built once for the suite.
var bins map[string]string

func TestAdmin(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Admin Suite")
}

var _ = SynchronizedBeforeSuite(support.BuildForSuite(&bins, "plh-admin-suite-", true, "cmd/plh-hub", "cmd/plh-admin"))

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(support.CheckLeaks)
