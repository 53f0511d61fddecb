package admin_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

// procStatusKiB returns a "VmRSS"/"VmHWM"-style field of /proc/pid/status in KiB.
func procStatusKiB(pid int, field string) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			Expect(err).NotTo(HaveOccurred())
			return n
		}
	}
	Fail("no " + field + " in /proc status")
	return 0
}

var _ = Describe("admin shell memory limits (docs/operations.md)", func() {
	// The per-request allowance (256 MiB of heap growth) plus the globals cap
	// (64 MiB) plus the hub's own use, with room for the GC's overhead.
	const boundMiB = 512

	It("refuses requests that allocate past the heap allowance or the globals cap, with the hub's RSS bounded", func() {
		// RSS is measured on a binary without -race (whose shadow memory
		// would multiply it).
		plain, err := support.Build(GinkgoT().TempDir(), false, "cmd/plh-hub")
		Expect(err).NotTo(HaveOccurred())
		h := startHubBin(plain["plh-hub"], hubConfig())
		pid := h.p.Cmd.Process.Pid
		c := h.client(h.token)
		attacks := []struct{ code, want string }{
			{"x = [[0]*4000000 for i in range(12)]", "heap grew by more than 256 MiB"},
			{"x = [[0]*4000000 for i in range(3)]", "globals would hold more than 64 MiB"},
			{"b = [0]*4000000", ""},
			{"x = [b[:] for i in range(12)]", "heap grew by more than 256 MiB"},
			{"x = {i: 'y' * 4000000 for i in range(100)}", "heap grew by more than 256 MiB"},
			{"b.append([0]*300000)", "globals hold more than 64 MiB; all user globals were cleared"},
		}
		for round := range 3 {
			for _, a := range attacks {
				r := exec(c, a.code)
				if a.want == "" {
					Expect(r.Success).To(BeTrue(), r.Error)
					continue
				}
				Expect(r.Success).To(BeFalse(), "%q succeeded", a.code)
				Expect(r.Error).To(HavePrefix("interpreter error: "))
				Expect(r.Error).To(ContainSubstring("admin script limit exceeded: " + a.want))
				rss, peak := procStatusKiB(pid, "VmRSS")>>10, procStatusKiB(pid, "VmHWM")>>10
				GinkgoWriter.Printf("round %d %q: RSS %d MiB, peak %d MiB\n", round, a.code, rss, peak)
				Expect(peak).To(BeNumerically("<", boundMiB), "hub RSS peaked at %d MiB after %q", peak, a.code)
			}
		}
		r := exec(c, "print('still here')")
		Expect(r.Success).To(BeTrue(), r.Error)
		Expect(exec(c, "print(len([0]*1000))").Output).To(Equal("1000\n"))
		party := dialParty(h)
		party.registerProducer("mem.after")
	})
})
