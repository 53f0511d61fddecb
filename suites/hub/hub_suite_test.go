package hub_test

import (
	"encoding/json"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

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

var _ = BeforeEach(support.CheckLeaks)
