package curve_test

import (
	"os/exec"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

// python is Debian's interpreter with python3-zmq (libzmq 4.3 with CURVE); the
// pyenv python3 on PATH has no zmq.
const python = "/usr/bin/python3"

func TestCurve(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Curve Suite")
}

var _ = BeforeSuite(func() {
	out, err := exec.Command(python, "-c", "import zmq; assert zmq.has('curve'); print(zmq.zmq_version())").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "python3-zmq with CURVE is required (scripts/deps.sh installs it): %s", out)
	GinkgoWriter.Printf("libzmq %s", out)
})

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(support.CheckLeaks)
