package chaos

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Many hosts on one machine. A Host is a set of namespaces held by one init
// process: network (its own loopback, one veth "eth0" on the run's bridge),
// UTS (its own hostname), PID (its own pid numbers, so a pid sent by a remote
// process means nothing here, as between real machines) and mount (its own
// /proc; /dev/shm stays the machine's, the engine still sees every segment).
// The init process is `unshare --fork` running a small shell loop that sets
// the hostname and reaps orphans; killing it kills every process of the host
// at once and frees its network namespace (and with it its veth). Processes
// run on a host through `nsenter` (HostArgv).
//
// Names: every link starts with LinkPrefix followed by the run's id (bridge
// LinkPrefix+"b"+id, veths LinkPrefix+"v"+id+index), so SweepLinks(id) removes
// what a killed engine left. Addresses: 198.18.0.0/15 only (RFC 2544
// benchmarking range): host i gets 198.18.0.(i+1)/24 on its eth0; the bridge
// has no address, so the machine's own namespace is not on the hosts' network
// and the hosts have no route off the bridge. Several runs at once reuse the
// same addresses on separate bridges without meeting.

// LinkPrefix starts the name of every link (bridge, veth) a Net creates.
const LinkPrefix = "plhs"

// HostSubnet is the benchmarking range every host address comes from.
const HostSubnet = "198.18.0.0/15"

// MaxHosts bounds the hosts of one Net (one /24).
const MaxHosts = 250

// PidStride separates the pid numbers of hosts: host i's processes get pids
// from PidStride*(i+1)+1 on (within pid_max 32768 for MaxHosts hosts).
const PidStride = 100

// maxIDLen keeps veth names within IFNAMSIZ-1 (15): "plhsv" + id + index.
const maxIDLen = 6

var validID = regexp.MustCompile(`^[a-z0-9]{1,6}$`)

// hostTools are the programs a Net runs (iproute2, util-linux, hostname).
var hostTools = []string{"ip", "unshare", "nsenter", "hostname", "sh"}

// HostsSupported reports why hosts cannot be made here (nil: they can): it
// needs root and the tools of hostTools.
func HostsSupported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: network namespaces need root (euid %d)", ErrNoHosts, os.Geteuid())
	}
	for _, t := range hostTools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%w: %s not found (scripts/deps.sh installs iproute2)", ErrNoHosts, t)
		}
	}
	return nil
}

// Net is the hosts of one run joined by one bridge.
type Net struct {
	id     string
	bridge string

	mu     sync.Mutex
	hosts  map[string]*Host
	order  []*Host
	closed bool
}

// Host is one simulated machine of a Net.
type Host struct {
	// Name is the host's name and its UTS hostname.
	Name string
	// Addr is its address on the bridge (198.18.0.x).
	Addr string

	index   int
	veth    string // the bridge-side end of its veth pair
	holder  *exec.Cmd
	initPid int // the host's pid 1, as the machine's namespace sees it
	done    chan struct{}
}

// NewNet creates the bridge of a run. id (1-6 lower-case letters or digits)
// makes its link names unique; the caller hands it to its janitor.
func NewNet(id string) (*Net, error) {
	if !validID.MatchString(id) || len(id) > maxIDLen {
		return nil, fmt.Errorf("chaos: net id %q: want 1-%d lower-case letters or digits", id, maxIDLen)
	}
	if err := HostsSupported(); err != nil {
		return nil, err
	}
	n := &Net{id: id, bridge: LinkPrefix + "b" + id, hosts: map[string]*Host{}}
	if err := run("ip", "link", "add", n.bridge, "type", "bridge"); err != nil {
		return nil, err
	}
	if err := run("ip", "link", "set", n.bridge, "up"); err != nil {
		_ = run("ip", "link", "del", n.bridge)
		return nil, err
	}
	return n, nil
}

// ID returns the id the Net was made with (what SweepLinks takes).
func (n *Net) ID() string { return n.id }

// Bridge returns the bridge's link name.
func (n *Net) Bridge() string { return n.bridge }

// AddHost starts host name: its init process (hostname set), its loopback up,
// its eth0 on the bridge with the next address, and, when rate is not "", a
// tbf rate limit (tc syntax, e.g. "100mbit") on both directions of its link.
// onHolder, when not nil, is told the init process's process group before
// anything else is set up (for a janitor).
func (n *Net) AddHost(name, rate string, onHolder func(pgid int)) (*Host, error) {
	if !validHostname(name) {
		return nil, fmt.Errorf("chaos: host name %q: want letters, digits and '-' (at most 63)", name)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrNetClosed
	}
	if _, dup := n.hosts[name]; dup || len(n.order) >= MaxHosts {
		n.mu.Unlock()
		return nil, fmt.Errorf("chaos: host %q already exists (or more than %d hosts)", name, MaxHosts)
	}
	h := &Host{Name: name, index: len(n.order), done: make(chan struct{})}
	h.Addr = fmt.Sprintf("198.18.0.%d", h.index+1)
	h.veth = fmt.Sprintf("%sv%s%d", LinkPrefix, n.id, h.index)
	n.hosts[name] = h
	n.order = append(n.order, h)
	n.mu.Unlock()
	if err := h.start(onHolder); err != nil {
		return nil, fmt.Errorf("chaos: host %s: %w", name, err)
	}
	if err := n.wire(h, rate); err != nil {
		h.kill()
		return nil, fmt.Errorf("chaos: host %s: %w", name, err)
	}
	return h, nil
}

// initScript is the host's pid 1: it names the host, starts the host's pid
// numbers at $1 (so a pid from another host names no process here, as
// between machines), then waits for children forever (a shell's wait reaps
// the orphans the kernel hands to pid 1).
const initScript = `hostname "$0" || exit 1; echo "$1" > /proc/sys/kernel/ns_last_pid || exit 1; echo ready; exec >/dev/null; trap 'exit 0' TERM; while :; do sleep 3600 & wait; done`

func (h *Host) start(onHolder func(int)) error {
	h.holder = exec.Command("unshare", "--net", "--uts", "--pid", "--mount", "--fork", "--mount-proc",
		"--kill-child", "--", "sh", "-c", initScript, h.Name, strconv.Itoa(PidStride*(h.index+1)))
	h.holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	h.holder.Stderr = &stderr
	out, err := h.holder.StdoutPipe()
	if err != nil {
		return err
	}
	if err := h.holder.Start(); err != nil {
		return fmt.Errorf("start init: %w", err)
	}
	if onHolder != nil {
		onHolder(h.holder.Process.Pid)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		_, _ = io.Copy(io.Discard, out)
		_ = h.holder.Wait()
		close(h.done)
	}()
	select {
	case ok := <-ready:
		if ok {
			if h.initPid = childOf(h.holder.Process.Pid); h.initPid > 0 {
				return nil
			}
		}
	case <-time.After(5 * time.Second):
	}
	h.kill()
	return fmt.Errorf("init did not come up: %s", strings.TrimSpace(stderr.String()))
}

// childOf returns the first child of pid (0: none yet).
func childOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	c, _ := strconv.Atoi(f[0])
	return c
}

// wire gives h its link: a veth pair (eth0 inside, h.veth on the bridge), the
// address, the loopback, the rate limit.
func (n *Net) wire(h *Host, rate string) error {
	pid := strconv.Itoa(h.initPid)
	steps := [][]string{
		{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", pid},
		{"ip", "link", "set", h.veth, "master", n.bridge, "up"},
		{"nsenter", "-t", pid, "--net", "ip", "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"nsenter", "-t", pid, "--net", "ip", "link", "set", "eth0", "up"},
		{"nsenter", "-t", pid, "--net", "ip", "link", "set", "lo", "up"},
	}
	if rate != "" {
		tbf := []string{"root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms"}
		steps = append(steps,
			append([]string{"tc", "qdisc", "add", "dev", h.veth}, tbf...),
			append([]string{"nsenter", "-t", pid, "--net", "tc", "qdisc", "add", "dev", "eth0"}, tbf...))
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// Host returns host name (nil: none).
func (n *Net) Host(name string) *Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosts[name]
}

// Hosts returns the hosts in the order they were added.
func (n *Net) Hosts() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.order...)
}

// Argv returns the command line that runs argv on the host: nsenter into its
// namespaces, working directory dir. nsenter forks (a PID namespace is
// entered by a child) and mirrors its child's exit status; it is started with
// the termination signals ignored so that a signal to the process group stops
// the program (Go reinstalls its handlers) and not the nsenter in front of it.
// SIGKILL and SIGSTOP/SIGCONT reach both.
func (h *Host) Argv(dir string, argv []string) []string {
	out := []string{"sh", "-c", `trap '' TERM INT HUP QUIT USR1 USR2; exec "$@"`, "plh-host",
		"nsenter", "-t", strconv.Itoa(h.initPid), "--net", "--uts", "--pid", "--mount", "--wd=" + dir, "--"}
	return append(out, argv...)
}

// InitPid returns the host's pid 1 as the machine sees it.
func (h *Host) InitPid() int { return h.initPid }

// Alive reports whether the host's init still runs.
func (h *Host) Alive() bool {
	select {
	case <-h.done:
		return false
	default:
		return true
	}
}

// PowerCut turns host name off at once: its link goes down first (so nothing
// it sends afterwards, not even the kernel's resets for the killed sockets,
// reaches anyone: peers learn only by silence, as from a machine that lost
// power), then its init is SIGKILLed, which kills every process of the host
// in the same instant. It returns when the init is gone.
func (n *Net) PowerCut(name string) error {
	h := n.Host(name)
	if h == nil {
		return fmt.Errorf("chaos: no host %q", name)
	}
	if !h.Alive() {
		return fmt.Errorf("chaos: host %s is already off", name)
	}
	if err := run("ip", "link", "set", h.veth, "down"); err != nil {
		return err
	}
	h.kill()
	return nil
}

func (h *Host) kill() {
	if h.holder == nil || h.holder.Process == nil {
		return
	}
	if h.initPid > 0 {
		_ = syscall.Kill(h.initPid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-h.holder.Process.Pid, syscall.SIGKILL)
	<-h.done
}

// Partition cuts the traffic between two groups of hosts: from every host of
// a to every host of b (and back, unless oneWay), by blackhole routes in the
// sending hosts: packets are dropped silently, connections time out as on a
// broken network. It returns what it did.
func (n *Net) Partition(a, b []string, oneWay bool) (string, error) {
	return n.routes("add", a, b, oneWay)
}

// Heal removes the blackhole routes Partition added for the same groups.
func (n *Net) Heal(a, b []string, oneWay bool) (string, error) {
	return n.routes("del", a, b, oneWay)
}

func (n *Net) routes(op string, a, b []string, oneWay bool) (string, error) {
	ha, err := n.lookup(a)
	if err != nil {
		return "", err
	}
	hb, err := n.lookup(b)
	if err != nil {
		return "", err
	}
	var did []string
	var errs []error
	cut := func(from, to []*Host) {
		for _, f := range from {
			for _, t := range to {
				if f == t {
					continue
				}
				if !f.Alive() {
					continue
				}
				err := run("nsenter", "-t", strconv.Itoa(f.initPid), "--net", "ip", "route", op, "blackhole", t.Addr+"/32")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				did = append(did, f.Name+"->"+t.Name)
			}
		}
	}
	cut(ha, hb)
	if !oneWay {
		cut(hb, ha)
	}
	verb := map[string]string{"add": "cut", "del": "healed"}[op]
	return verb + " " + strings.Join(did, ", "), errors.Join(errs...)
}

func (n *Net) lookup(names []string) ([]*Host, error) {
	out := make([]*Host, 0, len(names))
	for _, s := range names {
		h := n.Host(s)
		if h == nil {
			return nil, fmt.Errorf("chaos: no host %q", s)
		}
		out = append(out, h)
	}
	return out, nil
}

// Close kills every host (its processes with it) and removes the bridge.
// Idempotent.
func (n *Net) Close() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	hosts := append([]*Host(nil), n.order...)
	n.mu.Unlock()
	for _, h := range hosts {
		h.kill()
	}
	return SweepLinks(n.id)
}

// SweepLinks removes every link of the Net with id (bridge and veths left by
// a killed engine; a veth goes with its namespace, which goes with its last
// process). It is what a janitor calls.
func SweepLinks(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("chaos: net id %q", id)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("chaos: list links: %w", err)
	}
	var errs []error
	for _, i := range ifs {
		if owned(i.Name, id) {
			if err := run("ip", "link", "del", i.Name); err != nil && linkExists(i.Name) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func owned(link, id string) bool {
	if link == LinkPrefix+"b"+id {
		return true
	}
	rest, ok := strings.CutPrefix(link, LinkPrefix+"v"+id)
	if !ok || rest == "" {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// InNetNS runs fn on an OS thread that has joined host h's network namespace:
// sockets fn creates (a listener, a dialled connection) belong to that
// namespace for their whole life, whichever goroutine uses them later. The
// thread returns to its own namespace afterwards (or is discarded if it
// cannot).
func (h *Host) InNetNS(fn func() error) error {
	return inNetNS(fmt.Sprintf("/proc/%d/ns/net", h.initPid), fn)
}

func inNetNS(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("chaos: netns: %w", err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("chaos: netns: %w", err)
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("chaos: setns %s: %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("chaos: setns back: %w", err)) // thread stays locked: discarded at exit
	}
	runtime.UnlockOSThread()
	return ferr
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func validHostname(s string) bool { return hostnameRE.MatchString(s) }

// run runs a command and returns its output in the error when it fails.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
