package messenger_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/pylabhub/plh/internal/wire/wiretest"
	"github.com/pylabhub/plh/suites/support"
)

func TestMessenger(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Messenger Suite")
}

// bins maps binary name → path: plh-msgconsumer (a process that registers as a
// consumer and waits to be killed) and plh-hub (the broker process).
var bins map[string]string

var _ = SynchronizedBeforeSuite(support.BuildForSuite(&bins, "plh-messenger-suite-", true, "suites/messenger/cmd/plh-msgconsumer", "cmd/plh-hub"))

var _ = AfterSuite(func() { support.KillAll() })

// ginkgoOutputCopier is Ginkgo's own goroutine that copies intercepted output in
// parallel runs; it comes and goes between specs, independent of our code.
var ginkgoOutputCopier = goleak.IgnoreAnyFunction("github.com/onsi/ginkgo/v2/internal.(*genericOutputInterceptor).ResumeIntercepting.func1.1")

var _ = BeforeEach(func() {
	ignore := goleak.IgnoreCurrent()
	DeferCleanup(func() {
		goleak.VerifyNone(GinkgoT(), append(wiretest.GoleakIgnores(), ignore, ginkgoOutputCopier)...)
	})
})
