package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/suites/support"
)

// python is Debian's interpreter with python3-zmq (libzmq 4.3); the pyenv
// python3 on PATH has no zmq.
const python = "/usr/bin/python3"

// pyStep is one JSON line of testdata/broker_client.py.
type pyStep struct {
	Step string         `json:"step"`
	Type string         `json:"type"`
	Body map[string]any `json:"body"`
}

// runPyClient runs the pyzmq client against ep (CURVE when key is not "") and
// returns its steps by name.
func runPyClient(ctx context.Context, ep, channel, key string) map[string]pyStep {
	args := []string{ep, channel}
	if key != "" {
		args = append(args, key)
	}
	return runPyScript(ctx, "testdata/broker_client.py", args...)
}

// runPyScript runs a pyzmq script of testdata with args and returns its JSON
// steps by name; the script must end with the step "done".
func runPyScript(ctx context.Context, script string, args ...string) map[string]pyStep {
	cmd := exec.CommandContext(ctx, python, append([]string{script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	Expect(err).NotTo(HaveOccurred(), "%s failed\nstdout:\n%s\nstderr:\n%s", script, out, stderr.String())
	steps := map[string]pyStep{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var s pyStep
		Expect(json.Unmarshal(sc.Bytes(), &s)).To(Succeed(), "line %q", sc.Text())
		steps[s.Step] = s
	}
	Expect(steps).To(HaveKey("done"), "stdout:\n%s", out)
	return steps
}

func expectCode(steps map[string]pyStep, step, code string) {
	s := steps[step]
	Expect(s.Type).To(Equal("ERROR"), "step %s: %+v", step, s)
	Expect(s.Body).To(HaveKeyWithValue("status", "error"))
	Expect(s.Body).To(HaveKeyWithValue("error_code", code), "step %s", step)
	Expect(s.Body).To(HaveKeyWithValue("broker_version", "1.2"))
	Expect(s.Body).To(HaveKeyWithValue("correlation_id", Not(BeEmpty())))
}

func expectOK(steps map[string]pyStep, step, typ string) map[string]any {
	s := steps[step]
	Expect(s.Type).To(Equal(typ), "step %s: %+v", step, s)
	Expect(s.Body).To(HaveKeyWithValue("status", "success"), "step %s", step)
	return s.Body
}

var _ = Describe("a pyzmq client written from docs/protocol.md against a plh-hub process", func() {
	DescribeTable("registers, discovers, heartbeats and gets every error code",
		func(ctx SpecContext, curve bool) {
			args := []string{"--channel-timeout", "60s"}
			if !curve {
				args = append(args, "--no-curve") // CURVE is the default
			}
			p, ready := startHub(args...)
			key := ready.Str("pubkey")
			if curve {
				Expect(key).To(HaveLen(40))
			} else {
				Expect(key).To(BeEmpty())
			}
			ch := support.UniqueName("py")
			steps := runPyClient(ctx, ready.Str("endpoint"), ch, key)

			reg := expectOK(steps, "register", "REG_ACK")
			Expect(reg).To(HaveKeyWithValue("channel_id", ch))
			Expect(reg).NotTo(HaveKey("correlation_id"), "an unversioned request without correlation_id gets none back")
			expectCode(steps, "disc_before_heartbeat", "CHANNEL_NOT_READY")
			disc := expectOK(steps, "discover", "DISC_ACK")
			Expect(disc).To(HaveKeyWithValue("shm_name", ch+".shm"))
			Expect(disc).To(HaveKeyWithValue("metadata", HaveKeyWithValue("client", "pyzmq")))
			expectOK(steps, "consumer_register", "CONSUMER_REG_ACK")
			Expect(expectOK(steps, "discover_count", "DISC_ACK")).To(HaveKeyWithValue("consumer_count", BeEquivalentTo(1)))
			expectCode(steps, "schema_mismatch", "SCHEMA_MISMATCH")
			Expect(steps["owner_notified"].Type).To(Equal("CHANNEL_ERROR_NOTIFY"))
			Expect(steps["owner_notified"].Body).To(HaveKeyWithValue("event", "schema_mismatch_attempt"))
			expectCode(steps, "channel_not_found", "CHANNEL_NOT_FOUND")
			expectCode(steps, "not_registered", "NOT_REGISTERED")
			expectCode(steps, "unknown_msg_type", "UNKNOWN_MSG_TYPE")
			expectCode(steps, "version_mismatch", "VERSION_MISMATCH")
			expectCode(steps, "invalid_request", "INVALID_REQUEST")
			expectCode(steps, "invalid_request_empty", "INVALID_REQUEST")
			for step, code := range map[string]string{
				"name_invalid_utf8": "INVALID_REQUEST", "name_lone_surrogate": "INVALID_REQUEST",
				"name_control": "INVALID_REQUEST", "name_too_long": "LIMIT_EXCEEDED",
				"pid_zero": "INVALID_REQUEST", "pid_huge": "INVALID_REQUEST",
				"body_too_large": "LIMIT_EXCEEDED", "body_too_deep": "INVALID_REQUEST",
				"body_not_json": "INVALID_REQUEST", "type_empty": "UNKNOWN_MSG_TYPE", "type_huge": "UNKNOWN_MSG_TYPE",
			} {
				expectCode(steps, step, code)
			}
			Expect(expectOK(steps, "list_page", "CHANNEL_LIST_ACK")).To(HaveKeyWithValue("channels", HaveLen(1)))
			// Schema registry (B-9) and logical names (B-21).
			expectOK(steps, "schema_register", "REG_ACK")
			Expect(expectOK(steps, "schema_discover", "DISC_ACK")).To(And(HaveKeyWithValue("schema_name", "imu"),
				HaveKeyWithValue("schema_blds", "t:u64;x:f32"), HaveKeyWithValue("schema_version", BeEquivalentTo(1<<22))))
			expectCode(steps, "schema_incompatible", "SCHEMA_MISMATCH")
			Expect(steps["schema_incompatible"].Body).To(HaveKeyWithValue("message", ContainSubstring(`field 1 "x"`)))
			Expect(steps["schema_owner_notified"].Type).To(Equal("CHANNEL_ERROR_NOTIFY"))
			Expect(steps["schema_owner_notified"].Body).To(HaveKeyWithValue("channel_name", HaveSuffix("-0")), "named as its owner registered it")
			expectOK(steps, "schema_upgrade", "REG_ACK")
			expectCode(steps, "schema_bad_blds", "INVALID_REQUEST")
			Expect(expectOK(steps, "schema_close", "CHANNEL_CLOSE_ACK")).To(HaveKey("channel_name"))
			Expect(steps["schema_closing_notify"].Type).To(Equal("CHANNEL_CLOSING_NOTIFY"))
			Expect(steps["schema_closing_notify"].Body).To(HaveKeyWithValue("reason", "explicit_close"))

			// Structure remapping (B-19, protocol 1.2).
			expectCode(steps, "remap_not_owner", "NOT_REGISTERED")
			for _, step := range []string{"remap_producer_notified", "remap_consumer_notified"} {
				Expect(steps[step].Type).To(Equal("CHANNEL_EVENT_NOTIFY"), "step %s", step)
				Expect(steps[step].Body).To(And(HaveKeyWithValue("event", "remap"), HaveKeyWithValue("broker_action", "remap"),
					HaveKeyWithValue("shm_name", ch+".remap-1"), HaveKeyWithValue("layout_generation", BeEquivalentTo(1)),
					HaveKeyWithValue("final_seq", BeEquivalentTo(7))), "step %s", step)
			}
			Expect(expectOK(steps, "remap", "REMAP_ACK")).To(HaveKeyWithValue("layout_generation", BeEquivalentTo(1)))
			Expect(expectOK(steps, "remap_discover", "DISC_ACK")).To(And(HaveKeyWithValue("shm_name", ch+".remap-1"),
				HaveKeyWithValue("layout_generation", BeEquivalentTo(1)), HaveKeyWithValue("schema_hash", strings.Repeat("c", 64))))
			expectCode(steps, "remap_not_forward", "INVALID_REQUEST")

			expectOK(steps, "consumer_deregister", "CONSUMER_DEREG_ACK")
			expectOK(steps, "deregister", "DEREG_ACK")
			expectCode(steps, "gone", "CHANNEL_NOT_FOUND")

			stopHub(ctx, p)
		},
		Entry("over NULL", false, SpecTimeout(120*time.Second)),
		Entry("over CURVE with the hub's public key", true, SpecTimeout(120*time.Second)),
	)
})

var _ = Describe("a pyzmq client under checksum policy Repair (B-16)", func() {
	It("gets CHANNEL_EVENT_NOTIFY repair_failed with broker_detail when the channel's segment is not there; so does its producer", func(ctx SpecContext) {
		p, ready := startHub("--no-curve", "--channel-timeout", "60s", "--checksum-repair-policy", "Repair")
		ch := support.UniqueName("pyrepair")
		steps := runPyScript(ctx, "testdata/checksum_client.py", ready.Str("endpoint"), ch)
		expectOK(steps, "register", "REG_ACK")
		expectOK(steps, "consumer_register", "CONSUMER_REG_ACK")
		for _, step := range []string{"consumer_told", "producer_told"} {
			s := steps[step]
			Expect(s.Type).To(Equal("CHANNEL_EVENT_NOTIFY"), "step %s", step)
			Expect(s.Body).To(HaveKeyWithValue("channel_name", ch))
			Expect(s.Body).To(HaveKeyWithValue("slot_index", BeEquivalentTo(1)))
			Expect(s.Body).To(HaveKeyWithValue("error", "slot checksum mismatch"))
			Expect(s.Body).To(HaveKeyWithValue("broker_action", "repair_failed"))
			Expect(s.Body).To(HaveKeyWithValue("broker_detail", ContainSubstring("segment not found")))
		}
		stopHub(ctx, p)
	}, SpecTimeout(120*time.Second))
})
