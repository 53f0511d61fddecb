package admin_test

import (
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// plhAdmin runs the plh-admin binary with the hub's XDG_RUNTIME_DIR and no
// $PLH_ADMIN_TOKEN, and returns its exit status, stdout and stderr.
func (h *hubProc) plhAdmin(args ...string) (int, string, string) {
	cmd := osexec.Command(bins["plh-admin"], append([]string{"--endpoint", h.admin}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+h.runtime, "PLH_ADMIN_TOKEN=")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		_, isExit := err.(*osexec.ExitError)
		Expect(isExit).To(BeTrue(), "plh-admin: %v", err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

var _ = Describe("admin token by default (docs/operations.md)", func() {
	It("generates a token in a 0600 file named in the ready event, refuses requests without it, lets plh-admin find it, and removes it on shutdown", func() {
		h := startHub(hubConfig())
		path := filepath.Join(h.runtime, "plh", "admin-"+strings.NewReplacer("://", "-", ":", "-").Replace(h.admin)+".token")
		st, err := os.Stat(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		Expect(h.token).To(HaveLen(64))
		Expect(h.p.Stderr()).To(ContainSubstring(path), "the log names the file")
		Expect(h.p.Stderr()).NotTo(ContainSubstring(h.token), "the log never shows the token")

		r := exec(h.client(""), "plh.shutdown()")
		Expect(r.Success).To(BeFalse())
		Expect(r.Error).To(Equal("unauthorized"))

		code, out, errOut := h.plhAdmin("--exec", "print(plh.hub_name())")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(Equal("plh.test.admin\n"))
		code, _, errOut = h.plhAdmin("--token", "wrong", "--exec", "print(1)")
		Expect(code).To(Equal(1))
		Expect(errOut).To(Equal("unauthorized\n"), "an explicit --token wins over the file")

		h.interrupt()
		Expect(h.waitExit()).To(Equal(0))
		_, err = os.Stat(path)
		Expect(os.IsNotExist(err)).To(BeTrue(), "token file left after a clean shutdown: %v", err)
	})

	It("serves without authentication only with admin.allow_no_token, and warns", func() {
		cfg := hubConfig()
		cfg["admin"] = map[string]any{"allow_no_token": true}
		h := startHub(cfg)
		Expect(h.token).To(BeEmpty())
		Expect(exec(h.client(""), "print(1)").Output).To(Equal("1\n"))
		Expect(h.p.Stderr()).To(ContainSubstring("WITHOUT authentication"))
		ents, _ := os.ReadDir(filepath.Join(h.runtime, "plh"))
		Expect(ents).To(BeEmpty())
	})
})
