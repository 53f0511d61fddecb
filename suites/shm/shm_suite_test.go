package shm_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/suites/support"
)

// bins holds the worker binary built once for the suite.
var bins map[string]string

func TestShm(t *testing.T) {
	RegisterFailHandler(Fail)
	support.UseDefaultWaits()
	RunSpecs(t, "Shm Suite")
}

var _ = SynchronizedBeforeSuite(func() []byte {
	dir, err := os.MkdirTemp("", "plh-shm-suite-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	b, err := support.Build(dir, true, "suites/shm/worker")
	Expect(err).NotTo(HaveOccurred())
	// The fault spec needs a worker without -race: the race runtime performs atomics
	// in C, where a SIGBUS cannot be turned into a Go panic (see shm's doc.go).
	Expect(os.Mkdir(filepath.Join(dir, "norace"), 0o755)).To(Succeed())
	plain, err := support.Build(filepath.Join(dir, "norace"), false, "suites/shm/worker")
	Expect(err).NotTo(HaveOccurred())
	b["worker-norace"] = plain["worker"]
	raw, err := json.Marshal(b)
	Expect(err).NotTo(HaveOccurred())
	return raw
}, func(raw []byte) {
	Expect(json.Unmarshal(raw, &bins)).To(Succeed())
})

var _ = AfterSuite(func() {
	support.KillAll()
	Expect(support.OwnSegments()).To(BeEmpty(), "segments left in /dev/shm")
})

var _ = BeforeEach(func() {
	support.CheckLeaks()
	support.CheckSegments()
})

// startWorker starts the worker binary; the process is killed at the end of the spec
// if still running.
func startWorker(name string, args ...string) *support.Proc {
	return startBinary("worker", name, args...)
}

// startBinary starts one of the suite's binaries (see startWorker).
func startBinary(bin, name string, args ...string) *support.Proc {
	p, err := support.Start(name, GinkgoWriter, nil, bins[bin], args...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if done, _ := p.Exited(); !done {
			p.Kill()
		}
	})
	return p
}

// waitEvent waits for the first event of kind from p, failing early if p exits
// without it.
func waitEvent(p *support.Proc, kind string, within time.Duration) event.Event {
	var ev event.Event
	Eventually(func(g Gomega) {
		var ok bool
		ev, ok = p.Find(kind, nil)
		if !ok {
			done, code := p.Exited()
			g.Expect(done).To(BeFalse(), "%s exited (%d) before %q:\n%s", p.Name, code, kind, p.Stderr())
		}
		g.Expect(ok).To(BeTrue(), "no %q event from %s yet", kind, p.Name)
	}).WithTimeout(within).WithPolling(5 * time.Millisecond).Should(Succeed())
	return ev
}

// waitExit waits for p to exit and expects status 0.
func waitExit(p *support.Proc, within time.Duration) {
	Eventually(p.Done()).WithTimeout(within).Should(BeClosed(), "%s did not exit", p.Name)
	_, code := p.Exited()
	Expect(code).To(Equal(0), "%s exited %d:\n%s", p.Name, code, p.Stderr())
}

func num(ev event.Event, k string) float64 {
	v, ok := ev.Num(k)
	Expect(ok).To(BeTrue(), "event %s has no number %q: %v", ev.Kind, k, ev.Fields)
	return v
}
