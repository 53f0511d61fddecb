package support

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // Gomega DSL
	"go.uber.org/goleak"

	"github.com/pylabhub/plh/internal/wire/wiretest"
)

// ginkgoOutputCopier is Ginkgo's own output interceptor goroutine in parallel runs:
// it is restarted asynchronously and may appear after IgnoreCurrent. It is the
// framework's, not ours.
var ginkgoOutputCopier = goleak.IgnoreAnyFunction(
	"github.com/onsi/ginkgo/v2/internal.(*genericOutputInterceptor).ResumeIntercepting.func1.1")

// CheckLeaks is the first statement of every suite's top-level BeforeEach. It
// records the goroutines alive before the spec and, after all of the spec's own
// cleanups have run (DeferCleanup runs newest first, so this runs last), fails the
// spec if any new goroutine is still alive.
//
// Known leaks of zmq4 come from wiretest.GoleakIgnores, the one named list. zmq4 also
// ends some goroutines of a closed socket asynchronously (accept loop, reaper,
// readers); goleak alone retries for under half a second, too short with -race on
// a loaded 2-core machine, so the check polls for up to 10 s: a real leak still
// fails, it just fails later.
func CheckLeaks() {
	ignore := append(wiretest.GoleakIgnores(), goleak.IgnoreCurrent(), ginkgoOutputCopier)
	DeferCleanup(func() {
		Eventually(func() error { return goleak.Find(ignore...) }).
			WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).
			Should(Succeed(), "goroutines leaked by the spec")
	})
}

// OwnSegments lists the /dev/shm segments named by this test process through
// UniqueName.
func OwnSegments() []string {
	m, _ := filepath.Glob(fmt.Sprintf("/dev/shm/plh_test_*_%d_*", os.Getpid()))
	return m
}

// CheckSegments fails the spec, at its end, if a segment named by this process
// (UniqueName) is left in /dev/shm.
func CheckSegments() {
	DeferCleanup(func() {
		Eventually(OwnSegments).WithTimeout(10*time.Second).WithPolling(50*time.Millisecond).
			Should(BeEmpty(), "segments left in /dev/shm")
	})
}
