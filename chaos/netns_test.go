package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newTestNet makes a Net with hosts a and b, or skips (with the reason) where
// hosts cannot be made.
func newTestNet(t *testing.T, names ...string) *Net {
	t.Helper()
	if err := HostsSupported(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	id := fmt.Sprintf("t%05d", time.Now().UnixNano()%100000)
	n, err := NewNet(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		if links := ownedLinks(id); len(links) > 0 {
			t.Errorf("links left after Close: %v", links)
		}
	})
	for _, h := range names {
		if _, err := n.AddHost(h, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func ownedLinks(id string) []string {
	ifs, _ := net.Interfaces()
	var out []string
	for _, i := range ifs {
		if owned(i.Name, id) {
			out = append(out, i.Name)
		}
	}
	return out
}

// onHost runs a shell command on h and returns its output.
func onHost(t *testing.T, h *Host, script string) string {
	t.Helper()
	argv := h.Argv(t.TempDir(), []string{"sh", "-c", script})
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s on %s: %v: %s", script, h.Name, err, out)
	}
	return strings.TrimSpace(string(out))
}

func listenOn(t *testing.T, h *Host, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := h.InNetNS(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

func dialFrom(h *Host, addr string) error {
	return h.InNetNS(func() error {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// reachable dials addr from h until it connects or 15 s have passed (a new
// bridge port and ARP take a moment on a loaded machine); it returns the last
// error. Only positive checks wait: a dial that must fail is tried once.
func reachable(h *Host, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := dialFrom(h, addr)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHostIdentity(t *testing.T) {
	n := newTestNet(t, "alpha", "beta")
	for i, h := range n.Hosts() {
		if got := onHost(t, h, "hostname"); got != h.Name {
			t.Errorf("hostname on %s = %q", h.Name, got)
		}
		pid, _ := strconv.Atoi(onHost(t, h, "echo $$"))
		if pid <= PidStride*(i+1) || pid > PidStride*(i+2) {
			t.Errorf("pid on %s = %d: not in the host's own pid namespace", h.Name, pid)
		}
		if !strings.HasPrefix(h.Addr, "198.18.") {
			t.Errorf("address %s outside 198.18.0.0/15", h.Addr)
		}
	}
	if a := onHost(t, n.Host("alpha"), "ip -4 -o addr show dev eth0"); !strings.Contains(a, n.Host("alpha").Addr+"/24") {
		t.Errorf("alpha eth0: %s", a)
	}
}

func TestHostLoopbackIsolated(t *testing.T) {
	n := newTestNet(t, "a", "b")
	a, b := n.Host("a"), n.Host("b")
	ln := listenOn(t, b, "127.0.0.1:0")
	if err := reachable(b, ln.Addr().String()); err != nil {
		t.Fatalf("b cannot reach its own loopback: %v", err)
	}
	if err := dialFrom(a, ln.Addr().String()); err == nil {
		t.Fatal("a reached b's loopback")
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("the machine's namespace reached b's loopback")
	}
	remote := listenOn(t, b, b.Addr+":0")
	if err := reachable(a, remote.Addr().String()); err != nil {
		t.Fatalf("a cannot reach b over the bridge: %v", err)
	}
}

func TestPartitionAndHeal(t *testing.T) {
	n := newTestNet(t, "a", "b", "c")
	a, b, c := n.Host("a"), n.Host("b"), n.Host("c")
	lb := listenOn(t, b, b.Addr+":0")
	if _, err := n.Partition([]string{"a"}, []string{"b"}, false); err != nil {
		t.Fatal(err)
	}
	if err := dialFrom(a, lb.Addr().String()); err == nil {
		t.Fatal("a reached b across the partition")
	}
	if err := reachable(c, lb.Addr().String()); err != nil {
		t.Fatalf("c (outside the partition) cannot reach b: %v", err)
	}
	if _, err := n.Heal([]string{"a"}, []string{"b"}, false); err != nil {
		t.Fatal(err)
	}
	if err := reachable(a, lb.Addr().String()); err != nil {
		t.Fatalf("a cannot reach b after heal: %v", err)
	}
}

// TestPartitionOneWay cuts a→b only: b's datagrams still reach a.
func TestPartitionOneWay(t *testing.T) {
	n := newTestNet(t, "a", "b")
	a, b := n.Host("a"), n.Host("b")
	if _, err := n.Partition([]string{"a"}, []string{"b"}, true); err != nil {
		t.Fatal(err)
	}
	// send reports whether one datagram from from reached to within 300 ms.
	send := func(from, to *Host) bool {
		var pc net.PacketConn
		if err := to.InNetNS(func() (err error) { pc, err = net.ListenPacket("udp", to.Addr+":0"); return err }); err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		_ = from.InNetNS(func() error {
			c, err := net.Dial("udp", pc.LocalAddr().String())
			if err == nil {
				_, _ = c.Write([]byte("x"))
				c.Close()
			}
			return err
		})
		_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, _, err := pc.ReadFrom(make([]byte, 8))
		return err == nil
	}
	if send(a, b) {
		t.Error("a→b delivered across a one-way partition")
	}
	// The datagram that must arrive is tried until it does (ARP on a loaded
	// machine may take longer than one read deadline); the one that must not
	// is tried once.
	delivered := false
	for deadline := time.Now().Add(15 * time.Second); !delivered && time.Now().Before(deadline); {
		delivered = send(b, a)
	}
	if !delivered {
		t.Error("b→a lost: the partition was one-way a→b")
	}
}

func TestPowerCut(t *testing.T) {
	n := newTestNet(t, "a", "b")
	a := n.Host("a")
	argv := a.Argv(t.TempDir(), []string{"sh", "-c", "echo up; exec sleep 60"})
	cmd := exec.Command(argv[0], argv[1:]...)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "up\n" {
		t.Fatalf("process on a: %q", line)
	}
	if err := n.PowerCut("a"); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("process on a after the power cut: %v", err)
	}
	if a.Alive() {
		t.Fatal("host a still alive")
	}
	if err := n.PowerCut("a"); err == nil {
		t.Fatal("second power cut of a dead host succeeded")
	}
	if got := onHost(t, n.Host("b"), "hostname"); got != "b" {
		t.Fatalf("b after a's power cut: %q", got)
	}
}

func TestProxyOnHost(t *testing.T) {
	n := newTestNet(t, "a", "b")
	a, b := n.Host("a"), n.Host("b")
	var ln net.Listener
	if err := b.InNetNS(func() (err error) { ln, err = net.Listen("tcp", b.Addr+":0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte(line))
	}()
	px, err := NewProxyOn(a, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	px.SetDelay(100 * time.Millisecond)
	var c net.Conn
	if err := a.InNetNS(func() (err error) { c, err = net.Dial("tcp", px.Addr()); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, _ = c.Write([]byte("ping\n"))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo through the proxy: %q %v", line, err)
	}
	if rtt := time.Since(start); rtt < 200*time.Millisecond {
		t.Fatalf("round trip %v through a 100ms-each-way proxy", rtt)
	}
}

func TestNetBadInput(t *testing.T) {
	if _, err := NewNet("Bad/ID"); err == nil {
		t.Error("NewNet accepted a bad id")
	}
	if err := SweepLinks("../x"); err == nil {
		t.Error("SweepLinks accepted a bad id")
	}
	if owned("plhsvab1x", "ab") || !owned("plhsvab12", "ab") || !owned("plhsbab", "ab") || owned("eth0", "ab") {
		t.Error("owned() mismatch")
	}
	n := newTestNet(t, "a")
	if _, err := n.AddHost("a", "", nil); err == nil {
		t.Error("duplicate host accepted")
	}
	if _, err := n.AddHost("no_underscore", "", nil); err == nil {
		t.Error("bad hostname accepted")
	}
	if _, err := n.Partition([]string{"a"}, []string{"zz"}, false); err == nil {
		t.Error("partition with an unknown host accepted")
	}
}

func TestHostBandwidth(t *testing.T) {
	n := newTestNet(t)
	h, err := n.AddHost("slow", "10mbit", nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := onHost(t, h, "tc qdisc show dev eth0"); !strings.Contains(q, "tbf") || !strings.Contains(q, "10Mbit") {
		t.Errorf("eth0 of a 10mbit host: %s", q)
	}
	if _, err := n.AddHost("bad", "fast", nil); err == nil {
		t.Error("a bad rate was accepted")
	}
}
