package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/hubd/admin"
	"github.com/pylabhub/plh/internal/wire"
	"github.com/pylabhub/plh/suites/support"
)

// hubProc is a running plh-hub with the endpoints its ready event reported.
type hubProc struct {
	p       *support.Proc
	broker  string
	key     string // broker CURVE public key ("" with use_curve = false)
	admin   string
	metrics string
	dir     string
	runtime string // the hub's XDG_RUNTIME_DIR (where it keeps a generated admin token)
	token   string // the generated admin token, read from admin_token_file ("" when none)
}

// hubConfig returns a config for a hub on ephemeral loopback ports; callers add
// keys before startHub.
func hubConfig() map[string]any {
	return map[string]any{
		"hub": map[string]any{
			"name":            "plh.test.admin",
			"broker_endpoint": "tcp://127.0.0.1:0",
			"admin_endpoint":  "tcp://127.0.0.1:0",
		},
	}
}

// writeConfig writes cfg as the hub's JSON config file in a fresh directory.
func writeConfig(cfg map[string]any) (dir, path string) {
	dir = GinkgoT().TempDir()
	raw, err := json.MarshalIndent(cfg, "", "  ")
	Expect(err).NotTo(HaveOccurred())
	path = filepath.Join(dir, "hub.json")
	Expect(os.WriteFile(path, raw, 0o600)).To(Succeed())
	return dir, path
}

// launchHub starts plh-hub on cfg without waiting for it to be ready.
func launchHub(cfg map[string]any) (*support.Proc, string) { return launchHubBin(bins["plh-hub"], cfg) }

// launchHubBin is launchHub with the hub binary bin. The hub's
// XDG_RUNTIME_DIR is dir/run, so a generated token's file stays in the spec's
// temporary directory.
func launchHubBin(bin string, cfg map[string]any) (*support.Proc, string) {
	dir, path := writeConfig(cfg)
	p, err := support.Start("hub", GinkgoWriter, []string{"PYLABHUB_CONFIG_FILE=" + path, "XDG_RUNTIME_DIR=" + runtimeDir(dir)},
		bin, "--config", path)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		if done, _ := p.Exited(); !done {
			Expect(p.Stop(20 * time.Second)).To(Succeed())
		}
	})
	return p, dir
}

// startHub starts plh-hub and waits for its ready event.
func startHub(cfg map[string]any) *hubProc { return startHubBin(bins["plh-hub"], cfg) }

// startHubBin is startHub with the hub binary bin.
func startHubBin(bin string, cfg map[string]any) *hubProc {
	p, dir := launchHubBin(bin, cfg)
	ready := support.WaitEvent(p, "ready", 30*time.Second)
	h := &hubProc{p: p, dir: dir, runtime: runtimeDir(dir)}
	if f, ok := ready.Fields["admin_token_file"].(string); ok {
		tok, err := admin.ReadTokenFile(f)
		Expect(err).NotTo(HaveOccurred())
		h.token = tok
	}
	h.broker, _ = ready.Fields["endpoint"].(string)
	h.key, _ = ready.Fields["pubkey"].(string)
	h.admin, _ = ready.Fields["admin_endpoint"].(string)
	h.metrics, _ = ready.Fields["metrics_addr"].(string)
	Expect(h.broker).NotTo(BeEmpty(), "ready event: %v", ready)
	Expect(h.admin).NotTo(BeEmpty(), "ready event: %v", ready)
	return h
}

// runtimeDir is the XDG_RUNTIME_DIR of the hub whose config is in dir.
func runtimeDir(dir string) string { return filepath.Join(dir, "run") }

// client connects an admin client to h.
func (h *hubProc) client(token string) *admin.Client {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := admin.DialClient(ctx, h.admin, token)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	return c
}

// exec runs code through c and returns the reply.
func exec(c *admin.Client, code string) admin.Reply {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := c.Exec(ctx, code)
	Expect(err).NotTo(HaveOccurred())
	return r
}

// waitExit waits for the hub to exit and returns its status.
func (h *hubProc) waitExit() int {
	Eventually(h.p.Done()).WithTimeout(30 * time.Second).Should(BeClosed())
	_, code := h.p.Exited()
	return code
}

// party is a raw broker client (a wire Dealer speaking broker/proto), standing
// for a producer or consumer process.
type party struct {
	d *wire.Dealer
}

// dialParty connects a party to h's broker (CURVE with h's key, the default).
func dialParty(h *hubProc) *party {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sec, err := support.CurveClient(h.key)
	Expect(err).NotTo(HaveOccurred())
	d, err := wire.Dial(ctx, wire.Config{Security: sec}, h.broker)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(d.Close)
	return &party{d: d}
}

var corr int

// request sends m (stamped with a correlation id) and returns the reply.
func (p *party) request(m proto.Request) proto.Message {
	corr++
	proto.Stamp(m, fmt.Sprintf("admin-suite-%d-%d", os.Getpid(), corr))
	frames, err := proto.Encode(m)
	Expect(err).NotTo(HaveOccurred())
	Expect(p.d.Send(frames...)).To(Succeed())
	return p.next()
}

// next returns the next message the broker sends this party.
func (p *party) next() proto.Message {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	frames, err := p.d.Recv(ctx)
	Expect(err).NotTo(HaveOccurred())
	m, err := proto.DecodeFrames(frames)
	Expect(err).NotTo(HaveOccurred())
	return m
}

// registerProducer registers channel with this party as producer.
func (p *party) registerProducer(channel string) {
	r := p.request(&proto.RegReq{ChannelName: channel, SchemaHash: "00", ProducerPID: uint64(os.Getpid()),
		ChannelPattern: "PubSub", ShmName: ""})
	ack, ok := r.(*proto.RegAck)
	Expect(ok).To(BeTrue(), "REG_REQ answered by %T %+v", r, r)
	Expect(ack.OK()).To(BeTrue())
}

// registerConsumer registers this party as a consumer of channel.
func (p *party) registerConsumer(channel string) {
	r := p.request(&proto.ConsumerRegReq{ChannelName: channel, ConsumerPID: uint64(os.Getpid())})
	ack, ok := r.(*proto.ConsumerRegAck)
	Expect(ok).To(BeTrue(), "CONSUMER_REG_REQ answered by %T %+v", r, r)
	Expect(ack.OK()).To(BeTrue())
}

// interrupt sends SIGINT to the hub.
func (h *hubProc) interrupt() { Expect(h.p.Signal(syscall.SIGINT)).To(Succeed()) }
