package scenario

import (
	"strings"
	"testing"
)

const hostsBase = `name = "hosts"
duration = "3s"

[[hosts]]
name = "ctl"

[[hosts]]
name = "cam"
bandwidth = "100mbit"

[hub]
host = "ctl"

[[producers]]
name = "p"
host = "cam"
channel = "cam"
shm = true
`

func TestHostsAccepted(t *testing.T) {
	p, err := loadOne(t, hostsBase+`
[[consumers]]
name = "local"
host = "cam"
channel = "cam"

[[consumers]]
name = "remote"
host = "ctl"
channel = "cam"

[[faults]]
id = "cut"
at = "1s"
kind = "partition"
hosts = ["cam"]
peers = ["ctl"]
one_way = true
duration = "1s"

[[faults]]
at = "2s"
kind = "host_kill"
target = "cam"

[[expect]]
kind = "fault_end"
after = "cut:end"
within = "1s"
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) != 2 || p.Hub.Host != "ctl" || p.Hosts[1].Bandwidth != "100mbit" {
		t.Fatalf("hosts not resolved: %+v hub %+v", p.Hosts, p.Hub)
	}
	local, _ := p.Node("local")
	remote, _ := p.Node("remote")
	if local.Shm == nil || !*local.Shm || local.Secret == 0 {
		t.Errorf("a consumer on the producer's host gets the shm default: %+v", local.NodeSpec)
	}
	if remote.Shm != nil || remote.Secret != 0 {
		t.Errorf("a remote consumer got shared memory: %+v", remote.NodeSpec)
	}
	prod, _ := p.Node("p")
	if prod.Exit != ExitKilled || local.Exit != ExitKilled || remote.Exit != ExitClean {
		t.Errorf("exits after host_kill of cam: p %s local %s remote %s", prod.Exit, local.Exit, remote.Exit)
	}
}

func TestHostsRefused(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"remote shm", hostsBase + "[[consumers]]\nname = \"c\"\nhost = \"ctl\"\nchannel = \"cam\"\nshm = true\n", "shared memory is host-local"},
		{"node without host", hostsBase + "[[consumers]]\nname = \"c\"\nchannel = \"cam\"\n", "needs host"},
		{"unknown host", hostsBase + "[[consumers]]\nname = \"c\"\nhost = \"lab\"\nchannel = \"cam\"\n", `unknown host "lab"`},
		{"duplicate host", strings.Replace(hostsBase, `name = "cam"`, `name = "ctl"`, 1), "declared twice"},
		{"bad host name", strings.Replace(strings.Replace(hostsBase, `name = "cam"`, `name = "c_m"`, 1), `host = "cam"`, `host = "c_m"`, 1), "host name"},
		{"bad bandwidth", strings.Replace(hostsBase, `"100mbit"`, `"fast"`, 1), "bandwidth"},
		{"host without [[hosts]]", "name = \"x\"\nduration = \"1s\"\n[[producers]]\nname = \"p\"\nhost = \"a\"\nchannel = \"c\"\n", "declares no [[hosts]]"},
		{"partition without peers", hostsBase + "[[faults]]\nat = \"1s\"\nkind = \"partition\"\nhosts = [\"cam\"]\n", "hosts and peers"},
		{"partition unknown host", hostsBase + "[[faults]]\nat = \"1s\"\nkind = \"heal\"\nhosts = [\"cam\"]\npeers = [\"x\"]\n", `unknown host "x"`},
		{"host_kill of a node", hostsBase + "[[faults]]\nat = \"1s\"\nkind = \"host_kill\"\ntarget = \"p\"\n", "not a declared host"},
		{"kill_holding_lock on hosts", hostsBase + "[[faults]]\nat = \"1s\"\nkind = \"kill_holding_lock\"\ntarget = \"p\"\n", "not available with [[hosts]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadOne(t, tc.body)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
