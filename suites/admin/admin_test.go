package admin_test

import (
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/suites/support"
)

var _ = Describe("admin endpoint of a real plh-hub", func() {
	var h *hubProc

	Context("with a token", func() {
		BeforeEach(func() {
			cfg := hubConfig()
			cfg["admin"] = map[string]any{"token": "s3cret"}
			h = startHub(cfg)
		})

		It("runs code for the right token and refuses a wrong or missing one without running it", func() {
			good := h.client("s3cret")
			r := exec(good, "ran = 'good'\nprint(plh.hub_name())")
			Expect(r.Success).To(BeTrue(), r.Error)
			Expect(r.Output).To(Equal("plh.test.admin\n"))

			for _, tok := range []string{"wrong", ""} {
				r := exec(h.client(tok), "ran = 'bad'\nprint('ran')")
				Expect(r.Success).To(BeFalse())
				Expect(r.Error).To(Equal("unauthorized"))
				Expect(r.Output).To(BeEmpty())
			}
			r = exec(good, "print(ran)")
			Expect(r.Output).To(Equal("good\n"), "a refused request changed the namespace")
		})

		It("keeps globals between requests and clients", func() {
			exec(h.client("s3cret"), "def double(x):\n    return 2 * x\ncounter = 20\n")
			r := exec(h.client("s3cret"), "counter += 1\nprint(double(counter))")
			Expect(r.Success).To(BeTrue(), r.Error)
			Expect(r.Output).To(Equal("42\n"))
		})

		It("cancels a runaway script and keeps serving admin and broker requests", func() {
			c := h.client("s3cret")
			for _, code := range []string{"while True:\n    pass", "s = 'x' * (1 << 40)", "l = [1]\nfor i in range(99):\n    l += l"} {
				r := exec(c, code)
				Expect(r.Success).To(BeFalse())
				Expect(r.Error).To(HavePrefix("interpreter error: "))
				Expect(r.Error).To(ContainSubstring("limit exceeded"))
				r = exec(c, "print('still here')")
				Expect(r.Output).To(Equal("still here\n"))
			}
			ack := dialParty(h).request(&proto.PingReq{})
			Expect(ack).To(BeAssignableToTypeOf(&proto.PingAck{}))
		})

		It("is driven by a pyzmq REQ client", func() {
			out, err := osexec.Command(python, "testdata/req_client.py", h.admin, "s3cret",
				"a = 6", "print(a * 7)", ":channels").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s", out)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			Expect(lines).To(HaveLen(3))
			var r struct {
				Success bool   `json:"success"`
				Output  string `json:"output"`
				Error   string `json:"error"`
			}
			Expect(json.Unmarshal([]byte(lines[1]), &r)).To(Succeed())
			Expect(r.Output).To(Equal("42\n"))
			Expect(lines[2]).To(ContainSubstring(`"success": true`))

			out, err = osexec.Command(python, "testdata/req_client.py", h.admin, "nope", "print(1)").CombinedOutput()
			Expect(err).To(HaveOccurred())
			Expect(string(out)).To(ContainSubstring(`"error": "unauthorized"`))
		})

		It("runs plh-admin --exec and --file with their exit status", func() {
			run := func(args ...string) (string, string, int) {
				cmd := osexec.Command(bins["plh-admin"], append([]string{"--endpoint", h.admin, "--token", "s3cret"}, args...)...)
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*osexec.ExitError); ok {
					code = ee.ExitCode()
				} else {
					Expect(err).NotTo(HaveOccurred())
				}
				return stdout.String(), stderr.String(), code
			}
			out, _, code := run("--exec", "x = 3\nprint(x * 14)")
			Expect(code).To(Equal(0))
			Expect(out).To(Equal("42\n"))

			out, errOut, code := run("--exec", "print('partial')\nfail('boom')")
			Expect(code).To(Equal(1))
			Expect(out).To(Equal("partial\n"))
			Expect(errOut).To(ContainSubstring("boom"))

			file := filepath.Join(GinkgoT().TempDir(), "script.star")
			Expect(os.WriteFile(file, []byte("total = 0\nfor i in range(10):\n    total += i\nprint(total, x)\n"), 0o600)).To(Succeed())
			out, _, code = run("--file", file)
			Expect(code).To(Equal(0))
			Expect(out).To(Equal("45 3\n"))

			_, errOut, code = run("--file", filepath.Join(GinkgoT().TempDir(), "missing.star"))
			Expect(code).To(Equal(1))
			Expect(errOut).To(ContainSubstring("missing.star"))

			cmd := osexec.Command(bins["plh-admin"], "--endpoint", h.admin, "--token", "wrong", "--exec", "print(1)")
			b, err := cmd.CombinedOutput()
			Expect(err).To(HaveOccurred())
			Expect(string(b)).To(ContainSubstring("unauthorized"))
		})

		It("answers the shortcuts and shows the effective config with the token redacted", func() {
			c := h.client("s3cret")
			r := exec(c, ":config")
			Expect(r.Success).To(BeTrue(), r.Error)
			Expect(r.Output).To(ContainSubstring(`"name": "plh.test.admin"`))
			Expect(r.Output).To(ContainSubstring(`"token": "\u003credacted\u003e"`))
			Expect(r.Output).NotTo(ContainSubstring("s3cret"))
			Expect(exec(c, "plh.config()['admin']['token']").Output).To(Equal("\"<redacted>\"\n"))
			r = exec(c, ":metrics")
			Expect(r.Success).To(BeTrue(), r.Error)
			Expect(r.Output).To(ContainSubstring(`"channels_by_status"`))
			Expect(exec(c, ":channels").Output).To(Equal("(no channels)\n"))
			Expect(exec(c, ":help").Output).To(ContainSubstring("CPython code and imports are not supported"))
		})

		It("runs the plh-admin REPL through a pipe", func() {
			cmd := osexec.Command(bins["plh-admin"], "--endpoint", h.admin, "--token", "s3cret")
			cmd.Stdin = strings.NewReader("def sq(n):\n    return n * n\n\nprint(sq(7))\nitems = [\n  1,\n  2]\nlen(items)\n:help\n:quit\nprint('not reached')\n")
			out, err := cmd.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s", out)
			Expect(string(out)).To(HavePrefix("49\n2\nplh admin shell"))
			Expect(string(out)).NotTo(ContainSubstring("not reached"))
		})
	})

	Context("without a token on loopback", func() {
		BeforeEach(func() { h = startHub(hubConfig()) })

		It("closes a channel and notifies its producer and consumers", func() {
			name := support.UniqueName("adminclose")
			prod := dialParty(h)
			prod.registerProducer(name)
			cons1, cons2 := dialParty(h), dialParty(h)
			cons1.registerConsumer(name)
			cons2.registerConsumer(name)

			c := h.client(h.token)
			r := exec(c, "[(ch['name'], ch['consumer_count']) for ch in plh.channels() if ch['name'] == '"+name+"']")
			Expect(r.Output).To(Equal(`[("` + name + `", 2)]` + "\n"))
			r = exec(c, "d = plh.channel('"+name+"')\nprint(d['producer']['pid'] == "+strconv.Itoa(os.Getpid())+", [k['pid'] for k in d['consumers']] == ["+strconv.Itoa(os.Getpid())+"] * 2, d['status'])")
			Expect(r.Output).To(Equal("True True PendingReady\n"), r.Error)
			r = exec(c, "plh.close('"+name+"')")
			Expect(r.Success).To(BeTrue(), r.Error)

			for _, p := range []*party{cons1, cons2, prod} {
				m := p.next()
				n, ok := m.(*proto.ChannelClosingNotify)
				Expect(ok).To(BeTrue(), "got %T %+v", m, m)
				Expect(n.ChannelName).To(Equal(name))
				Expect(n.Reason).To(Equal("explicit_close"))
			}
			r = exec(c, "len([ch for ch in plh.channels() if ch['name'] == '"+name+"'])")
			Expect(r.Output).To(Equal("0\n"))
			r = exec(c, "plh.close('"+name+"')")
			Expect(r.Success).To(BeFalse())
		})

		It("shuts the hub down gracefully on plh.shutdown(), replying first", func() {
			r := exec(h.client(h.token), "plh.shutdown()\nprint('bye')")
			Expect(r.Success).To(BeTrue(), r.Error)
			Expect(r.Output).To(Equal("bye\n"))
			Expect(h.waitExit()).To(Equal(0))
			ev, ok := h.p.Find("exit", nil)
			Expect(ok).To(BeTrue())
			Expect(ev.Fields["code"]).To(BeEquivalentTo(0))
		})
	})
})
