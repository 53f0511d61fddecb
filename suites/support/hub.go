package support

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo DSL
	. "github.com/onsi/gomega"    //nolint:revive // Gomega DSL

	"github.com/pylabhub/plh/internal/event"
)

// WaitEvent waits up to timeout for p's first event of kind and returns it. It
// fails the spec at once, with p's stderr, when p exits before the event.
func WaitEvent(p *Proc, kind string, timeout time.Duration) event.Event {
	GinkgoHelper()
	var ev event.Event
	Eventually(func() bool {
		var ok bool
		ev, ok = p.Find(kind, nil)
		if done, code := p.Exited(); done && !ok {
			Fail(fmt.Sprintf("%s exited with %d before %s:\n%s", p.Name, code, kind, p.Stderr()))
		}
		return ok
	}).WithTimeout(timeout).WithPolling(20*time.Millisecond).Should(BeTrue(), "no %s event from %s; stderr:\n%s", kind, p.Name, p.Stderr())
	return ev
}

// StartHub starts the plh-hub binary bin with extraEnv and args (stderr to
// GinkgoWriter), kills it at the end of the spec if it is still running, waits
// up to 60 s for its ready event, records the broker's key (RememberKey) and
// returns the process and the ready event (endpoint, pubkey, admin_endpoint…).
// The hub's XDG_RUNTIME_DIR is a temporary directory of the spec (unless
// extraEnv sets one), so the admin token file it generates (ready field
// admin_token_file) never outlives the spec, even when the hub is killed.
func StartHub(bin string, extraEnv []string, args ...string) (*Proc, event.Event) {
	GinkgoHelper()
	env := append([]string{"XDG_RUNTIME_DIR=" + GinkgoT().TempDir()}, extraEnv...)
	p, err := Start("hub", GinkgoWriter, env, bin, args...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if done, _ := p.Exited(); !done {
			p.Kill()
		}
	})
	ready := WaitEvent(p, "ready", 60*time.Second)
	RememberKey(ready.Str("endpoint"), ready.Str("pubkey"))
	return p, ready
}
