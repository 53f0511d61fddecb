package broker_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/suites/support"
	"golang.org/x/sys/unix"
)

// hubFDLimit is the descriptor limit of the hub in the hostile specs (ulimit -n
// 1024): a leak of one descriptor per request or connection fails fast.
const hubFDLimit = 1024

// startLimitedHub runs plh-hub without CURVE under ulimit -n 1024, with the
// configuration body cfg ("" = none) and extra environment env. The limit is
// set on the running process (prlimit) and read back from /proc.
func startLimitedHub(cfg string, env []string, args ...string) (*support.Proc, event.Event) {
	GinkgoHelper()
	base := []string{"PYLABHUB_CONFIG_FILE=", "PYLABHUB_ADMIN_ENDPOINT=tcp://127.0.0.1:0"}
	all := append([]string{"--endpoint", "tcp://127.0.0.1:0", "--no-curve"}, args...)
	if cfg != "" {
		f := filepath.Join(GinkgoT().TempDir(), "hub.json")
		Expect(writeString(f, cfg)).To(Succeed())
		all = append(all, "--config", f)
	}
	p, ready := support.StartHub(hubBin, append(base, env...), all...)
	pid := p.Cmd.Process.Pid
	Expect(unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: hubFDLimit, Max: hubFDLimit}, nil)).To(Succeed())
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	Expect(err).NotTo(HaveOccurred())
	Expect(string(limits)).To(MatchRegexp(`Max open files\s+1024\s+1024`))
	return p, ready
}

// procFDs counts the open descriptors of process pid.
func procFDs(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	Expect(err).NotTo(HaveOccurred())
	return len(ents)
}

// procThreads reads the OS thread count of process pid.
func procThreads(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	Expect(err).NotTo(HaveOccurred())
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			Expect(err).NotTo(HaveOccurred())
			return n
		}
	}
	Fail("no Threads line")
	return 0
}

// hubGoroutines scrapes go_goroutines from the hub's metrics server at addr.
func hubGoroutines(addr string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			Expect(err).NotTo(HaveOccurred())
			return int(n)
		}
	}
	Fail("no go_goroutines in the hub's metrics")
	return 0
}

// lines counts the lines of s.
func lines(s string) int { return strings.Count(s, "\n") }

// regDeregCycles runs cycles CONSUMER_REG/DEREG pairs for this (live) process
// against a plh-hub limited to 1024 descriptors, and checks that the hub's
// descriptors, threads and goroutines stay flat and that it logs nothing per cycle.
func regDeregCycles(ctx SpecContext, cycles int) {
	p, ready := startLimitedHub(`{"metrics":{"listen":"127.0.0.1:0"}}`, nil, "--channel-timeout", "600s")
	hub, metrics := p.Cmd.Process.Pid, ready.Str("metrics_addr")
	Expect(metrics).NotTo(BeEmpty())
	c := dialRaw(ready.Str("endpoint"))
	ch := support.UniqueName("cycle")
	register(c, ch, "", uint64(os.Getpid()))
	self := proc.Self()
	cycle := func() {
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: ch, ConsumerPID: uint64(self.Pid), ConsumerStartTime: self.StartTime}))).To(BeEmpty())
		Expect(errCode(c.call(&proto.ConsumerDeregReq{ChannelName: ch, ConsumerPID: uint64(self.Pid)}))).To(BeEmpty())
	}
	for range 20 {
		cycle()
	}
	fds, threads, gs, logged := procFDs(hub), procThreads(hub), hubGoroutines(metrics), len(p.Stderr())
	for range cycles {
		cycle()
	}
	fds2, threads2, gs2, logged2 := procFDs(hub), procThreads(hub), hubGoroutines(metrics), len(p.Stderr())
	AddReportEntry("hub after CONSUMER_REG/DEREG cycles", map[string]int{
		"cycles": cycles, "fds_before": fds, "fds_after": fds2, "threads_before": threads, "threads_after": threads2,
		"goroutines_before": gs, "goroutines_after": gs2, "stderr_bytes": logged2 - logged})
	Expect(fds2).To(BeNumerically("<=", fds+10), "hub descriptors after %d cycles", cycles)
	Expect(threads2).To(BeNumerically("<=", threads+10), "hub threads after %d cycles", cycles)
	Expect(gs2).To(BeNumerically("<=", gs+10), "hub goroutines after %d cycles", cycles)
	Expect(logged2-logged).To(BeNumerically("<", 4096), "hub log after %d cycles:\n%s", cycles, p.Stderr()[logged:])
	Expect(c.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount).To(BeZero())
	stopHub(ctx, p)
}

var _ = Describe("the hub under hostile and heavy clients", Label("hostile"), func() {
	It("keeps its descriptors, threads and goroutines flat over many CONSUMER_REG/DEREG cycles of one live process", func(ctx SpecContext) {
		regDeregCycles(ctx, 2000)
	}, SpecTimeout(180*time.Second))

	It("keeps them flat over 100,000 cycles", Label("soak"), func(ctx SpecContext) {
		regDeregCycles(ctx, 100_000)
	}, SpecTimeout(30*time.Minute))

	It("enforces every limit of its configuration file and environment with LIMIT_EXCEEDED, logging a bounded amount", func(ctx SpecContext) {
		p, ready := startLimitedHub(`{"broker":{"max_channels":3,"max_name_bytes":40,"max_metadata_bytes":64,
			"max_field_bytes":32,"max_body_bytes":2048,"list_page":2}}`,
			[]string{"PYLABHUB_BROKER_MAX_CONSUMERS_PER_CHANNEL=1"})
		c := dialRaw(ready.Str("endpoint"))
		pid := uint64(os.Getpid())
		limited := func(r proto.Request, what string) {
			GinkgoHelper()
			Expect(string(errCode(c.call(r)))).To(Equal(codeLimitExceeded), what)
		}
		var names []string
		for i := range 3 {
			names = append(names, fmt.Sprintf("lim-%d-%d", os.Getpid(), i))
			register(c, names[i], "", pid)
		}
		limited(&proto.RegReq{ChannelName: "lim-4th", ProducerPID: pid}, "max_channels = 3: the 4th channel")
		Expect(errCode(c.call(&proto.RegReq{ChannelName: names[0], ProducerPID: pid}))).To(BeEmpty(), "re-registering is not a new channel")
		limited(&proto.DiscReq{ChannelName: strings.Repeat("n", 41)}, "max_name_bytes = 40")
		limited(&proto.RegReq{ChannelName: names[1], ProducerPID: pid, Metadata: map[string]any{"k": strings.Repeat("m", 64)}}, "max_metadata_bytes = 64")
		limited(&proto.RegReq{ChannelName: names[1], ProducerPID: pid, ShmName: strings.Repeat("s", 33)}, "max_field_bytes = 32")
		typ, rep := c.rawCall("DISC_REQ", []byte(`{"correlation_id":"b","channel_name":"`+names[0]+`","pad":"`+strings.Repeat("p", 2048)+`"}`))
		expectRawError(typ, rep, codeLimitExceeded, "b")

		self := proc.Self()
		Expect(errCode(c.call(&proto.ConsumerRegReq{ChannelName: names[2], ConsumerPID: uint64(self.Pid), ConsumerStartTime: self.StartTime}))).To(BeEmpty())
		limited(&proto.ConsumerRegReq{ChannelName: names[2], ConsumerPID: uint64(self.Pid), ConsumerStartTime: self.StartTime, ConsumerID: "second"},
			"PYLABHUB_BROKER_MAX_CONSUMERS_PER_CHANNEL=1")

		By("list_page = 2: CHANNEL_LIST pages two at a time")
		first := c.call(&proto.ChannelListReq{}).(*proto.ChannelListAck)
		Expect(first.Channels).To(HaveLen(2))
		Expect(first.NextCursor).NotTo(BeEmpty())

		By("a flood of the same errors logs a bounded number of lines")
		before := lines(p.Stderr())
		for range 500 {
			limited(&proto.RegReq{ChannelName: "lim-flood", ProducerPID: pid}, "flood")
		}
		Expect(c.call(&proto.PingReq{})).To(BeAssignableToTypeOf(&proto.PingAck{}))
		Expect(lines(p.Stderr())-before).To(BeNumerically("<=", 25), "hub log:\n%s", p.Stderr())
		stopHub(ctx, p)
	}, SpecTimeout(120*time.Second))
})
