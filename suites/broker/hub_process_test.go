package broker_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/internal/wire/curve"
	"github.com/pylabhub/plh/suites/support"
)

// startHub runs plh-hub on an ephemeral broker port (admin shell on an
// ephemeral port too, no config files) and waits for its ready event.
func startHub(args ...string) (*support.Proc, event.Event) {
	p, ready := support.StartHub(hubBin, []string{"PYLABHUB_CONFIG_FILE=", "PYLABHUB_ADMIN_ENDPOINT=tcp://127.0.0.1:0"},
		append([]string{"--endpoint", "tcp://127.0.0.1:0"}, args...)...)
	n, _ := ready.Num("pid")
	Expect(int(n)).To(Equal(p.Cmd.Process.Pid))
	return p, ready
}

// stopHub sends SIGTERM and expects a graceful exit 0.
func stopHub(ctx SpecContext, p *support.Proc) {
	Expect(p.Signal(syscall.SIGTERM)).To(Succeed())
	Eventually(ctx, p.Done()).Should(BeClosed())
	_, code := p.Exited()
	Expect(code).To(Equal(0), "stderr:\n%s", p.Stderr())
}

var _ = Describe("the plh-hub process", func() {
	It("prints a ready event with its CURVE public key (on by default), serves, and exits 0 on SIGTERM", func(ctx SpecContext) {
		p, ready := startHub("--channel-timeout", "30s")
		Expect(ready.Str("pubkey")).To(HaveLen(40))
		Expect(dialRefused(ctx, wire.Config{HandshakeTimeout: 60 * time.Second}, ready.Str("endpoint"))).To(HaveOccurred(), "a NULL client on the default hub")
		c := dialRaw(ready.Str("endpoint")) // CURVE with the printed key
		Expect(c.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		stopHub(ctx, p)
		exit, ok := p.Find("exit", nil)
		Expect(ok).To(BeTrue())
		Expect(exit.Str("reason")).To(Equal("signal"))
	}, SpecTimeout(90*time.Second))

	It("with --no-curve serves raw NULL frames and prints no key", func(ctx SpecContext) {
		p, ready := startHub("--no-curve")
		Expect(ready.Fields).To(HaveKeyWithValue("pubkey", ""))
		c := dialRaw(ready.Str("endpoint"))
		Expect(c.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		stopHub(ctx, p)
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

	It("with --curve prints its key, serves CURVE clients, and keeps the key across restarts with --keys-dir", func(ctx SpecContext) {
		dir := filepath.Join(GinkgoT().TempDir(), "keys")
		p, ready := startHub("--curve", "--keys-dir", dir)
		key := ready.Str("pubkey")
		Expect(key).To(HaveLen(40))
		Expect(p.Stderr()).To(ContainSubstring("pubkey=" + key))
		c := dialWith(curveClient(key, curve.KeyPair{}), ready.Str("endpoint"))
		Expect(c.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		stopHub(ctx, p)

		By("a second process on the same keys dir has the same key")
		p2, ready2 := startHub("--curve", "--keys-dir", dir)
		Expect(ready2.Str("pubkey")).To(Equal(key))
		c2 := dialWith(curveClient(key, curve.KeyPair{}), ready2.Str("endpoint"))
		Expect(c2.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		stopHub(ctx, p2)

		By("without a keys dir every start has a fresh key")
		p3, ready3 := startHub("--curve")
		Expect(ready3.Str("pubkey")).To(HaveLen(40))
		Expect(ready3.Str("pubkey")).NotTo(Equal(key))
		stopHub(ctx, p3)
	}, SpecTimeout(120*time.Second))

	It("takes broker.use_curve and an allowlist file from its config; --no-curve overrides", func(ctx SpecContext) {
		listed := newKeys()
		dir := GinkgoT().TempDir()
		Expect(writeString(filepath.Join(dir, "clients.txt"), "# lab\n"+listed.Public.String()+"\n")).To(Succeed())
		cfg := filepath.Join(dir, "hub.json")
		Expect(writeString(cfg, `{"broker":{"use_curve":true},"security":{"allowed_clients":"clients.txt"}}`)).To(Succeed())
		p, ready := startHub("--config", cfg)
		key := ready.Str("pubkey")
		Expect(key).To(HaveLen(40))
		ok := dialWith(curveClient(key, listed), ready.Str("endpoint"))
		Expect(ok.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		Expect(dialRefused(ctx, curveClient(key, newKeys()), ready.Str("endpoint"))).To(MatchError(ContainSubstring("refused")))
		stopHub(ctx, p)

		p2, ready2 := startHub("--config", cfg, "--no-curve")
		Expect(ready2.Str("pubkey")).To(BeEmpty())
		stopHub(ctx, p2)

		By("broker.use_curve = false turns CURVE off; --curve turns it back on")
		off := filepath.Join(dir, "off.json")
		Expect(writeString(off, `{"broker":{"use_curve":false}}`)).To(Succeed())
		p3, ready3 := startHub("--config", off)
		Expect(ready3.Str("pubkey")).To(BeEmpty())
		stopHub(ctx, p3)
		p4, ready4 := startHub("--config", off, "--curve")
		Expect(ready4.Str("pubkey")).To(HaveLen(40))
		stopHub(ctx, p4)

		By("a malformed allowlist stops start-up with exit 1")
		Expect(writeString(filepath.Join(dir, "clients.txt"), "not-a-key\n")).To(Succeed())
		bad, err := support.Start("badhub", GinkgoWriter, nil, hubBin, "--config", cfg, "--endpoint", "tcp://127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		Eventually(ctx, bad.Done()).Should(BeClosed())
		_, code := bad.Exited()
		Expect(code).To(Equal(1))
		Expect(bad.Stderr()).To(ContainSubstring("clients.txt"))
	}, SpecTimeout(120*time.Second))

	It("stops gracefully on the first SIGTERM and exits 1 at once on a second one while stopping", func(ctx SpecContext) {
		// --shutdown-delay holds the graceful stop for far longer than the spec
		// may run, so only the second signal can end the process in time.
		p, _ := startHub("--shutdown-delay", "10m")
		Expect(p.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(ctx, p.Stderr).Should(ContainSubstring("plh-hub shutting down"))
		Consistently(p.Done(), 200*time.Millisecond).ShouldNot(BeClosed(), "the first signal must not end the process during the delay")
		Expect(p.Signal(syscall.SIGTERM)).To(Succeed())
		Eventually(ctx, p.Done()).WithTimeout(30 * time.Second).Should(BeClosed())
		_, code := p.Exited()
		Expect(code).To(Equal(1))
		_, sawExit := p.Find("exit", nil)
		Expect(sawExit).To(BeFalse(), "a second signal exits without cleanup")
	}, SpecTimeout(90*time.Second))

	It("after the shutdown delay of a single SIGINT exits 0", func(ctx SpecContext) {
		p, _ := startHub("--shutdown-delay", "300ms")
		Expect(p.Signal(syscall.SIGINT)).To(Succeed())
		Eventually(ctx, p.Done()).Should(BeClosed())
		_, code := p.Exited()
		Expect(code).To(Equal(0))
		Expect(strings.Count(p.Stderr(), "plh-hub shutting down")).To(Equal(1))
	}, SpecTimeout(60*time.Second))
})
