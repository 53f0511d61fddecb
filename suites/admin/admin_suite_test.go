package admin_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/suites/support"
)

// python is Debian's interpreter with python3-zmq; the pyenv python3 on PATH has no zmq.
const python = "/usr/bin/python3"

// bins holds the paths of the binaries built once for the suite.
var bins map[string]string

func TestAdmin(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Admin Suite")
}

var _ = SynchronizedBeforeSuite(func() []byte {
	dir, err := os.MkdirTemp("", "plh-admin-suite-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	b, err := support.Build(dir, true, "cmd/plh-hub", "cmd/plh-admin")
	Expect(err).NotTo(HaveOccurred())
	raw, err := json.Marshal(b)
	Expect(err).NotTo(HaveOccurred())
	return raw
}, func(raw []byte) {
	Expect(json.Unmarshal(raw, &bins)).To(Succeed())
})

var _ = AfterSuite(func() { support.KillAll() })

var _ = BeforeEach(func() {
	ignore := append(wire.GoleakIgnores(), goleak.IgnoreCurrent(),
		// Ginkgo's own output interceptor restarts its copier goroutine now and
		// then (internal/output_interceptor.go); it is the framework, not us.
		goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.(*genericOutputInterceptor).ResumeIntercepting.func1.1"))
	DeferCleanup(func() {
		// zmq4 ends some goroutines of a closed socket asynchronously (reader,
		// reaper); goleak alone retries for under half a second, too short with
		// -race on a loaded machine. A real leak still fails after 10 s.
		Eventually(func() error { return goleak.Find(ignore...) }).
			WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
	})
})
