package broker_test

import (
	"os"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/broker/proto"
	"github.com/pylabhub/plh/internal/proc"
	"github.com/pylabhub/plh/suites/support"
	"golang.org/x/sys/unix"
)

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

// regDeregCycles runs cycles CONSUMER_REG/DEREG pairs for this (live) process
// against a plh-hub limited to 1024 descriptors, and checks that the hub's
// descriptors and threads stay flat.
func regDeregCycles(ctx SpecContext, cycles int) {
	p, ready := startHub("--no-curve", "--channel-timeout", "600s")
	hub := p.Cmd.Process.Pid
	Expect(unix.Prlimit(hub, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 1024, Max: 1024}, nil)).To(Succeed())
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
	fds, threads := procFDs(hub), procThreads(hub)
	for range cycles {
		cycle()
	}
	fds2, threads2 := procFDs(hub), procThreads(hub)
	AddReportEntry("hub after CONSUMER_REG/DEREG cycles", map[string]int{
		"cycles": cycles, "fds_before": fds, "fds_after": fds2, "threads_before": threads, "threads_after": threads2})
	Expect(fds2).To(BeNumerically("<=", fds+10), "hub descriptors after %d cycles", cycles)
	Expect(threads2).To(BeNumerically("<=", threads+10), "hub threads after %d cycles", cycles)
	Expect(c.call(&proto.DiscReq{ChannelName: ch}).(*proto.DiscAck).ConsumerCount).To(BeZero())
	stopHub(ctx, p)
}

var _ = Describe("the hub under hostile and heavy clients", Label("hostile"), func() {
	It("keeps its descriptors and threads flat over many CONSUMER_REG/DEREG cycles of one live process", func(ctx SpecContext) {
		regDeregCycles(ctx, 2000)
	}, SpecTimeout(180*time.Second))

	It("keeps them flat over 100,000 cycles", Label("soak"), func(ctx SpecContext) {
		regDeregCycles(ctx, 100_000)
	}, SpecTimeout(30*time.Minute))
})
