package hub_test

import (
	"encoding/json"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/suites/support"
)

func TestHub(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Hub Suite")
}

// bins maps binary name → path (plh-node).
var bins map[string]string

var _ = SynchronizedBeforeSuite(func() []byte {
	dir, err := os.MkdirTemp("", "plh-hub-suite-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	b, err := support.Build(dir, false, "cmd/plh-node")
	Expect(err).NotTo(HaveOccurred())
	out, err := json.Marshal(b)
	Expect(err).NotTo(HaveOccurred())
	return out
}, func(data []byte) {
	Expect(json.Unmarshal(data, &bins)).To(Succeed())
})

var _ = AfterSuite(func() { support.KillAll() })

// ginkgoOutputCopier is Ginkgo's own output interceptor (parallel runs), which
// may start between IgnoreCurrent and the check; it is not ours.
var ginkgoOutputCopier = goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.(*genericOutputInterceptor).ResumeIntercepting.func1.1")

var _ = BeforeEach(func() {
	ignore := goleak.IgnoreCurrent()
	DeferCleanup(func() { goleak.VerifyNone(GinkgoT(), append(wire.GoleakIgnores(), ignore, ginkgoOutputCopier)...) })
})
