package sim

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pylabhub/plh/chaos"
)

// TestJanitorRemovesHosts: a janitor whose engine vanished (end of input
// without "done") kills the hosts' inits and removes the run's links.
func TestJanitorRemovesHosts(t *testing.T) {
	if err := chaos.HostsSupported(); err != nil {
		t.Skipf("skipped: %v", err)
	}
	id := fmt.Sprintf("j%05d", time.Now().UnixNano()%100000)
	n, err := chaos.NewNet(id)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var pgids []int
	for _, name := range []string{"a", "b"} {
		if _, err := n.AddHost(name, "", func(pg int) { pgids = append(pgids, pg) }); err != nil {
			t.Fatal(err)
		}
	}
	in := "net " + id + "\n"
	for _, pg := range pgids {
		in += fmt.Sprintf("pgid %d\n", pg)
	}
	cleaned := RunJanitor(strings.NewReader(in), t.TempDir())
	if !contains(cleaned, "net "+id) {
		t.Errorf("janitor cleaned %v, not the net", cleaned)
	}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if strings.HasPrefix(i.Name, chaos.LinkPrefix+"b"+id) || strings.HasPrefix(i.Name, chaos.LinkPrefix+"v"+id) {
			t.Errorf("link %s left", i.Name)
		}
	}
	for _, h := range n.Hosts() {
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(h.InitPid(), 0) == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if h.Alive() && syscall.Kill(h.InitPid(), 0) == nil {
			t.Errorf("host %s still running", h.Name)
		}
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
