package admin_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/suites/support"
)

var _ = Describe("plh.schemas() and plh.trace() of a real plh-hub", func() {
	It("lists registered schemas and switches the broker's protocol trace at run time", func() {
		dir := GinkgoT().TempDir()
		startPath := filepath.Join(dir, "start.jsonl")
		cfg := hubConfig()
		cfg["admin"] = map[string]any{"token": "s3cret"}
		cfg["broker"] = map[string]any{"trace": true, "trace_path": startPath}
		h := startHub(cfg)
		c := h.client("s3cret")

		ch := support.UniqueName("schema")
		p := dialParty(h)
		r := p.request(&proto.RegReq{ChannelName: ch + " | pid:1-0", SchemaHash: "ab", ProducerPID: uint64(os.Getpid()),
			SchemaName: "imu", SchemaVersion: proto.PackVersion(1, 3, 0), SchemaBLDS: "t:u64;x:f32;y:f32"})
		Expect(r).To(BeAssignableToTypeOf(&proto.RegAck{}))

		out := exec(c, "[(s['channel'], s['name'], s['version_text'], s['fields']) for s in plh.schemas()]")
		Expect(out.Success).To(BeTrue(), out.Error)
		Expect(out.Output).To(Equal(fmt.Sprintf("[(%q, \"imu\", \"1.3.0\", 3)]\n", ch+" | pid:1-0")))
		d := exec(c, fmt.Sprintf("print(plh.channel(%q)['name'])", ch))
		Expect(d.Output).To(Equal(ch+" | pid:1-0\n"), "plh.channel compares logical names: %s", d.Error)

		// The trace configured at start saw the registration, without its body.
		raw, err := os.ReadFile(startPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).To(And(ContainSubstring(`"type":"REG_REQ"`), ContainSubstring(`"type":"REG_ACK"`), Not(ContainSubstring("t:u64"))))

		// Switched to another file at run time, then off.
		runPath := filepath.Join(dir, "run.jsonl")
		on := exec(c, fmt.Sprintf("print(plh.trace(on=True, path=%q)['on'])", runPath))
		Expect(on.Output).To(Equal("True\n"), on.Error)
		Expect(p.request(&proto.DiscReq{ChannelName: ch})).To(BeAssignableToTypeOf(&proto.ErrorReply{}), "not ready yet")
		off := exec(c, "s = plh.trace(on=False)\nprint(s['on'], s['written'] >= 2)")
		Expect(off.Output).To(Equal("False True\n"), off.Error)
		p.request(&proto.PingReq{})
		raw, err = os.ReadFile(runPath)
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		Expect(lines).To(HaveLen(2), "DISC_REQ in, ERROR out, nothing after off:\n%s", raw)
		Expect(lines[0]).To(And(ContainSubstring(`"dir":"in"`), ContainSubstring(`"type":"DISC_REQ"`), ContainSubstring(`"channel":"`+ch+`"`)))
		Expect(lines[1]).To(And(ContainSubstring(`"error_code":"CHANNEL_NOT_READY"`), ContainSubstring(`"elapsed_us":`)))
		before, err := os.ReadFile(startPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(before)).NotTo(ContainSubstring("DISC_REQ"), "the start file was closed when the trace moved")

		bad := exec(c, "plh.trace(on=True, path='/etc/passwd')")
		Expect(bad.Success).To(BeFalse())
		Expect(bad.Error).To(ContainSubstring(".jsonl"))
	})
})
