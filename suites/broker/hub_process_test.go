package broker_test

import (
	"context"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/suites/support"
)

func startHub(args ...string) (*support.Proc, string) {
	p, err := support.Start("hub", GinkgoWriter, []string{"PYLABHUB_CONFIG_FILE="}, hubBin,
		append([]string{"--endpoint", "tcp://127.0.0.1:0"}, args...)...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if done, _ := p.Exited(); !done {
			p.Kill()
		}
	})
	var ready event.Event
	Eventually(func() bool {
		var ok bool
		ready, ok = p.Find("ready", nil)
		return ok
	}, 60*time.Second, 20*time.Millisecond).Should(BeTrue(), "no ready event; stderr:\n%s", p.Stderr())
	n, _ := ready.Num("pid")
	Expect(int(n)).To(Equal(p.Cmd.Process.Pid))
	Expect(ready.Fields).To(HaveKeyWithValue("pubkey", ""))
	return p, ready.Str("endpoint")
}

var _ = Describe("the plh-hub process", func() {
	It("prints a ready event, serves, and exits 0 on SIGTERM", func(ctx SpecContext) {
		p, ep := startHub("--channel-timeout", "30s")
		c := dialRaw(ep)
		Expect(c.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		Expect(p.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(ctx, p.Done()).Should(BeClosed())
		_, code := p.Exited()
		Expect(code).To(Equal(0))
		exit, ok := p.Find("exit", nil)
		Expect(ok).To(BeTrue())
		Expect(exit.Str("reason")).To(Equal("signal"))
	}, SpecTimeout(90*time.Second))

	It("refuses a config file with a wrong type", func(ctx SpecContext) {
		f := GinkgoT().TempDir() + "/bad.json"
		Expect(writeString(f, `{"broker":{"channel_timeout_s":"ten"}}`)).To(Succeed())
		p, err := support.Start("badhub", GinkgoWriter, nil, hubBin, "--config", f, "--endpoint", "tcp://127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, p.Done()).Should(BeClosed())
		_, code := p.Exited()
		Expect(code).To(Equal(1))
		Expect(p.Stderr()).To(ContainSubstring("channel_timeout_s"))
	}, SpecTimeout(60*time.Second))
})

var _ = context.Background
