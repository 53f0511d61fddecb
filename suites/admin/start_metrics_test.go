package admin_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/suites/support"
)

var _ = Describe("plh-hub start-up with the admin module", func() {
	It("refuses an admin endpoint beyond loopback without a token", func() {
		cfg := hubConfig()
		cfg["hub"].(map[string]any)["admin_endpoint"] = "tcp://0.0.0.0:0"
		p, _ := launchHub(cfg)
		Eventually(p.Done()).WithTimeout(30 * time.Second).Should(BeClosed())
		_, code := p.Exited()
		Expect(code).To(Equal(1))
		Expect(p.Stderr()).To(ContainSubstring("requires a token"))
		_, ready := p.Find("ready", nil)
		Expect(ready).To(BeFalse())
	})

	It("runs the startup script in the admin namespace before it is ready", func() {
		cfg := hubConfig()
		dir, _ := writeConfig(cfg) // a directory for the script
		script := filepath.Join(dir, "startup.star")
		Expect(os.WriteFile(script, []byte("boot_count = 1\nprint('booting', plh.hub_name())\n"), 0o600)).To(Succeed())
		cfg["admin"] = map[string]any{"startup_script": script}
		h := startHub(cfg)
		// Logged before the ready event, but stderr is read by another goroutine.
		Eventually(h.p.Stderr).WithTimeout(20 * time.Second).Should(ContainSubstring("startup script: booting plh.test.admin"))
		r := exec(h.client(h.token), "boot_count += 1\nprint(boot_count)")
		Expect(r.Output).To(Equal("2\n"))
	})

	DescribeTable("exits 1 with a clear message when the startup script fails, leaving nothing running",
		func(body, want string) {
			cfg := hubConfig()
			dir, _ := writeConfig(cfg)
			script := filepath.Join(dir, "startup.star")
			if body != "" {
				Expect(os.WriteFile(script, []byte(body), 0o600)).To(Succeed())
			}
			cfg["admin"] = map[string]any{"startup_script": script}
			p, _ := launchHub(cfg)
			Eventually(p.Done()).WithTimeout(30 * time.Second).Should(BeClosed())
			_, code := p.Exited()
			Expect(code).To(Equal(1))
			Expect(p.Stderr()).To(ContainSubstring("startup script"))
			Expect(p.Stderr()).To(ContainSubstring(want))
			_, ready := p.Find("ready", nil)
			Expect(ready).To(BeFalse(), "a failed start must not announce readiness")
			ev, ok := p.Find("exit", nil)
			Expect(ok).To(BeTrue())
			Expect(ev.Fields["code"]).To(BeEquivalentTo(1))
			Expect(syscall.Kill(-p.Cmd.Process.Pid, 0)).To(MatchError(syscall.ESRCH), "process group still alive")
		},
		Entry("missing file", "", "no such file"),
		Entry("syntax error", "x = (\n", "startup.star:2"),
		Entry("runtime failure", "print('half')\nfail('not today')\n", "not today"),
		Entry("runaway", "while True:\n    pass\n", "limit exceeded"),
	)

	It("leaves nothing behind after a graceful shutdown", func() {
		h := startHub(hubConfig())
		h.interrupt()
		Expect(h.waitExit()).To(Equal(0))
		Expect(syscall.Kill(-h.p.Cmd.Process.Pid, 0)).To(MatchError(syscall.ESRCH))
		for _, ep := range []string{h.admin, h.broker} {
			_, err := net.DialTimeout("tcp", strings.TrimPrefix(ep, "tcp://"), 5*time.Second)
			Expect(err).To(HaveOccurred(), "%s still accepts connections", ep)
		}
	})
})

var _ = Describe("metrics of a real plh-hub", func() {
	It("shows the exact counts of a scripted sequence of requests", func() {
		cfg := hubConfig()
		cfg["admin"] = map[string]any{"token": "tok"}
		cfg["metrics"] = map[string]any{"listen": "127.0.0.1:0"}
		h := startHub(cfg)
		Expect(h.metrics).NotTo(BeEmpty())

		name := support.UniqueName("metrics")
		prod := dialParty(h)
		prod.registerProducer(name)
		c1, c2 := dialParty(h), dialParty(h)
		c1.registerConsumer(name)
		c2.registerConsumer(name)
		for range 2 { // no heartbeat yet: the channel is PendingReady
			Expect(c1.request(&proto.DiscReq{ChannelName: name})).To(BeAssignableToTypeOf(&proto.ErrorReply{}))
		}
		Expect(c1.request(&proto.DiscReq{ChannelName: name + "_missing"})).To(BeAssignableToTypeOf(&proto.ErrorReply{}))
		Expect(c2.request(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))

		good := h.client("tok")
		Expect(exec(good, "print(len(plh.channels()))").Output).To(Equal("1\n"))
		Expect(exec(good, "fail('on purpose')").Success).To(BeFalse())
		Expect(exec(h.client("bad"), "print(1)").Error).To(Equal("unauthorized"))

		text := scrape(h.metrics)
		for _, want := range []string{
			`plh_broker_requests_total{type="REG_REQ"} 1`,
			`plh_broker_requests_total{type="CONSUMER_REG_REQ"} 2`,
			`plh_broker_requests_total{type="DISC_REQ"} 3`,
			`plh_broker_requests_total{type="PING_REQ"} 1`,
			`plh_broker_errors_total{code="CHANNEL_NOT_FOUND"} 1`,
			`plh_broker_errors_total{code="CHANNEL_NOT_READY"} 2`,
			`plh_broker_channels{status="PendingReady"} 1`,
			`plh_broker_consumers 2`,
			`plh_broker_request_duration_seconds_count{type="DISC_REQ"} 3`,
			`plh_broker_heartbeat_timeouts_total 0`,
			`plh_broker_dead_consumers_total 0`,
			`plh_broker_checksum_repairs_total{outcome="repaired"} 0`,
			`plh_broker_checksum_repairs_total{outcome="failed"} 0`,
			`plh_admin_requests_total{outcome="ok"} 1`,
			`plh_admin_requests_total{outcome="script_error"} 1`,
			`plh_admin_requests_total{outcome="unauthorized"} 1`,
			`plh_admin_requests_total{outcome="bad_request"} 0`,
		} {
			Expect(text).To(ContainSubstring(want + "\n"))
		}

		Expect(exec(good, "plh.close('"+name+"')").Success).To(BeTrue())
		for _, p := range []*party{c1, c2, prod} {
			Expect(p.next()).To(BeAssignableToTypeOf(&proto.ChannelClosingNotify{}))
		}
		text = scrape(h.metrics)
		for _, want := range []string{
			`plh_broker_notifications_sent_total{type="CHANNEL_CLOSING_NOTIFY"} 3`,
			`plh_broker_channels{status="PendingReady"} 0`,
			`plh_broker_consumers 0`,
			`plh_admin_requests_total{outcome="ok"} 2`,
			`plh_admin_request_duration_seconds_count 4`,
		} {
			Expect(text).To(ContainSubstring(want + "\n"))
		}
	})
})

// scrape fetches the Prometheus text exposition from addr.
func scrape(addr string) string {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}
