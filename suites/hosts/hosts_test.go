package hosts_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pylabhub/plh/chaos"
	"github.com/pylabhub/plh/sim"
	"github.com/pylabhub/plh/suites/support"
)

// needHosts skips the spec, printing why, where hosts cannot be made.
func needHosts() {
	if err := chaos.HostsSupported(); err != nil {
		fmt.Fprintf(os.Stderr, "skipping %q: %v\n", CurrentSpecReport().LeafNodeText, err)
		Skip(err.Error())
	}
}

// newNet makes a Net with the given hosts, closed (and checked gone) at the
// end of the spec.
func newNet(hosts ...string) *chaos.Net {
	GinkgoHelper()
	id := fmt.Sprintf("s%05d", time.Now().UnixNano()%100000)
	n, err := chaos.NewNet(id)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(n.Close()).To(Succeed())
		Expect(linksOf(id)).To(BeEmpty())
	})
	for _, h := range hosts {
		_, err := n.AddHost(h, "", nil)
		Expect(err).NotTo(HaveOccurred())
	}
	return n
}

// linksOf lists the links whose name carries Net id's prefix.
func linksOf(id string) []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, chaos.LinkPrefix+"b"+id) || strings.HasPrefix(i.Name, chaos.LinkPrefix+"v"+id) {
			out = append(out, i.Name)
		}
	}
	return out
}

// onHost runs a bash command on h; it returns the output and whether it
// succeeded.
func onHost(h *chaos.Host, script string) (string, bool) {
	argv := h.Argv(os.TempDir(), []string{"bash", "-c", script})
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

var _ = Describe("hosts on one machine", func() {
	BeforeEach(needHosts)

	It("keeps a host's loopback to itself: a process on a cannot reach b's loopback, b's own processes can", func() {
		n := newNet("a", "b")
		a, b := n.Host("a"), n.Host("b")
		argv := b.Argv(os.TempDir(), []string{simBin, "hub", "--endpoint", "tcp://127.0.0.1:0"})
		hub, ready := support.StartHub(argv[0], nil, argv[1:]...)
		defer func() { _ = hub.Stop(5 * time.Second) }()
		ep := strings.TrimPrefix(ready.Str("endpoint"), "tcp://")
		host, port, err := net.SplitHostPort(ep)
		Expect(err).NotTo(HaveOccurred())
		Expect(host).To(Equal("127.0.0.1"))
		probe := fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%s", port)
		out, ok := onHost(b, probe)
		Expect(ok).To(BeTrue(), "b cannot reach its own broker on 127.0.0.1:%s: %s", port, out)
		out, ok = onHost(a, probe)
		Expect(ok).To(BeFalse(), "a reached b's loopback: %s", out)
		Expect(out).To(ContainSubstring("refused"))
		name, _ := onHost(b, "hostname")
		Expect(name).To(Equal("b"))
		pid, _ := onHost(b, "echo $$")
		Expect(strconv.Atoi(pid)).To(BeNumerically(">", chaos.PidStride*2), "b's pids start above %d", chaos.PidStride*2)
	})

	It("reaches another host over the bridge on 198.18.0.0/15 addresses only", func() {
		n := newNet("a", "b")
		a, b := n.Host("a"), n.Host("b")
		_, subnet, _ := net.ParseCIDR(chaos.HostSubnet)
		for _, h := range []*chaos.Host{a, b} {
			Expect(subnet.Contains(net.ParseIP(h.Addr))).To(BeTrue(), h.Addr)
			routes, _ := onHost(h, "ip -4 route show")
			Expect(routes).NotTo(ContainSubstring("default"), "a host has no route off the bridge")
		}
		argv := b.Argv(os.TempDir(), []string{simBin, "hub", "--endpoint", "tcp://" + b.Addr + ":0"})
		hub, ready := support.StartHub(argv[0], nil, argv[1:]...)
		defer func() { _ = hub.Stop(5 * time.Second) }()
		ep := strings.TrimPrefix(ready.Str("endpoint"), "tcp://")
		_, port, _ := net.SplitHostPort(ep)
		out, ok := onHost(a, fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", b.Addr, port))
		Expect(ok).To(BeTrue(), "a cannot reach b's broker at %s: %s", ep, out)
	})

	It("leaves no host, link, process or segment behind when plh-sim itself is SIGKILLed", func(ctx SpecContext) {
		root, err := support.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		out := GinkgoT().TempDir()
		cmd := exec.Command(simBin, "run", "--out", out, filepath.Join(root, "scenarios", "hosts_power_cut.toml"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var so syncBuffer
		cmd.Stdout = &so
		Expect(cmd.Start()).To(Succeed())
		DeferCleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		Eventually(so.String).WithContext(ctx).WithTimeout(60 * time.Second).Should(ContainSubstring("run_start"))
		// The run's net id and host inits, from its logs/hosts.log.
		logs, _ := filepath.Glob(filepath.Join(out, "*", "logs", sim.HostsLog))
		Expect(logs).To(HaveLen(1))
		b, err := os.ReadFile(logs[0])
		Expect(err).NotTo(HaveOccurred())
		var id string
		var inits []int
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "net":
				id = f[1]
			case len(f) == 6 && f[0] == "host":
				p, _ := strconv.Atoi(f[5])
				inits = append(inits, p)
			}
		}
		Expect(id).NotTo(BeEmpty(), string(b))
		Expect(linksOf(id)).To(HaveLen(3), "the bridge and one veth per host")
		Expect(inits).To(HaveLen(2), "one init per host")
		tag := fmt.Sprintf("plh_pub_%d_", cmd.Process.Pid)
		Expect(syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)).To(Succeed())
		_ = cmd.Wait()
		Eventually(func() []string { return linksOf(id) }).
			WithContext(ctx).WithTimeout(30 * time.Second).Should(BeEmpty())
		Eventually(func() []int {
			var alive []int
			for _, p := range inits {
				if syscall.Kill(p, 0) == nil {
					alive = append(alive, p)
				}
			}
			return alive
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeEmpty())
		Eventually(func() string {
			b, _ := exec.Command("pgrep", "-f", tag).Output()
			return string(b)
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeEmpty())
		Eventually(func() []string { m, _ := filepath.Glob("/dev/shm/" + tag + "*"); return m }).
			WithContext(ctx).WithTimeout(30 * time.Second).Should(BeEmpty())
	}, SpecTimeout(2*time.Minute))

	It("explores partitions, power cuts and intruders among hosts; the real build holds every invariant", func(ctx SpecContext) {
		root, err := support.ModuleRoot()
		Expect(err).NotTo(HaveOccurred())
		out := GinkgoT().TempDir()
		// Seed 168's first schedule draws one of each host-level kind: a
		// partition of the consumer's host, an intruder on the producer's
		// channel and a power cut of the consumer's host.
		cmd := exec.CommandContext(ctx, simBin, "explore", "--runs", "1", "--seed", "168", "--no-shrink", "--out", out,
			filepath.Join(root, "scenarios", "explore", "hosts.toml"))
		b, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s", b)
		Expect(string(b)).To(And(ContainSubstring("partition-lab@"), ContainSubstring("schema_conflict-p@"),
			ContainSubstring("host_kill-lab@"), ContainSubstring("faults fired 3 "), ContainSubstring("no failure found")), "%s", b)
	}, SpecTimeout(2*time.Minute))
})

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
