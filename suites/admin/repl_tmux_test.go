package admin_test

import (
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

const tmuxBin = "/usr/bin/tmux"

// tmuxSession drives one program in a detached tmux session on a private server.
type tmuxSession struct{ sock string }

func (s tmuxSession) run(args ...string) (string, error) {
	out, err := osexec.Command(tmuxBin, append([]string{"-L", s.sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	return string(out), err
}

func (s tmuxSession) must(args ...string) string {
	out, err := s.run(args...)
	Expect(err).NotTo(HaveOccurred(), "tmux %v: %s", args, out)
	return out
}

// typeLine types text literally, then Enter.
func (s tmuxSession) typeLine(text string) {
	if text != "" {
		s.must("send-keys", "-t", "s", "-l", text)
	}
	s.must("send-keys", "-t", "s", "Enter")
}

func (s tmuxSession) screen() string { return s.must("capture-pane", "-p", "-t", "s") }

var _ = Describe("plh-admin REPL on a terminal", func() {
	It("edits lines, keeps history, continues blocks, prints errors in red and quits with 0", func() {
		if _, err := os.Stat(tmuxBin); err != nil {
			Skip("tmux not installed")
		}
		cfg := hubConfig()
		cfg["admin"] = map[string]any{"token": "tty"}
		h := startHub(cfg)

		dir := GinkgoT().TempDir()
		hist, status := filepath.Join(dir, "history"), filepath.Join(dir, "status")
		s := tmuxSession{sock: support.UniqueName("tmux")}
		// The shell records the exit status: tmux 3.3a sometimes fails to reap a
		// pane's process (seen here: a zombie with no pane_dead_status).
		cmd := fmt.Sprintf("env PLH_ADMIN_HISTORY=%s %s --endpoint %s --token tty; echo $? > %s", hist, bins["plh-admin"], h.admin, status)
		s.must("new-session", "-d", "-s", "s", "-x", "150", "-y", "40", cmd, ";", "set-option", "-t", "s", "remain-on-exit", "on")
		DeferCleanup(func() { _, _ = s.run("kill-server") })

		Eventually(s.screen).WithTimeout(20 * time.Second).Should(MatchRegexp(`(?m)^>>>\s*$`))
		s.typeLine("x = 6 * 7")
		s.typeLine("x")
		Eventually(s.screen).WithTimeout(20 * time.Second).Should(MatchRegexp(`(?m)^42\s*$`))

		s.typeLine("def inc(a):")
		Eventually(s.screen).WithTimeout(20 * time.Second).Should(MatchRegexp(`(?m)^\.\.\.\s*$`))
		s.typeLine("    return a + 1")
		s.typeLine("")
		s.typeLine("inc(x)")
		Eventually(s.screen).WithTimeout(20 * time.Second).Should(MatchRegexp(`(?m)^43\s*$`))

		// Up recalls "inc(x)"; editing it with Backspace and typing gives inc(1).
		s.must("send-keys", "-t", "s", "Up")
		Eventually(s.screen).WithTimeout(20 * time.Second).Should(MatchRegexp(`(?m)^>>> inc\(x\)\s*$`))
		s.must("send-keys", "-t", "s", "BSpace", "BSpace")
		s.typeLine("1)")
		Eventually(s.screen).WithTimeout(20 * time.Second).Should(MatchRegexp(`(?m)^2\s*$`))

		s.typeLine(`fail("boom")`)
		Eventually(func() string { return s.must("capture-pane", "-e", "-p", "-t", "s") }).
			WithTimeout(20 * time.Second).Should(ContainSubstring("\x1b[31m"))
		Expect(s.screen()).To(ContainSubstring("boom"))

		s.typeLine(":channels")
		Eventually(s.screen).WithTimeout(20 * time.Second).Should(ContainSubstring("(no channels)"))

		s.typeLine(":quit")
		Eventually(func() string { b, _ := os.ReadFile(status); return string(b) }).
			WithTimeout(20*time.Second).Should(Equal("0\n"), "exit status of plh-admin")

		b, err := os.ReadFile(hist)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(ContainSubstring("x = 6 * 7\n"))
		Expect(string(b)).To(ContainSubstring("def inc(a):\n"))
	})
})
