package noderole

import (
	"io"
	"path/filepath"
	"testing"
)

// Without --broker, plh-node runs brokerless: its discovery directory is
// --discovery-dir, else the default one under $XDG_RUNTIME_DIR. With
// --broker it has none unless given.
func TestDiscoveryDirFlags(t *testing.T) {
	run := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", run)
	base := []string{"--role", "producer", "--channel", "cam"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, filepath.Join(run, "plh", "channels")},
		{[]string{"--discovery-dir", "/x/d"}, "/x/d"},
		{[]string{"--broker", "tcp://127.0.0.1:1"}, ""},
		{[]string{"--broker", "tcp://127.0.0.1:1", "--discovery-dir", "/x/d"}, "/x/d"},
	} {
		o, err := parseFlags(append(append([]string(nil), base...), c.args...), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if o.discoveryDir != c.want {
			t.Errorf("%q: discovery dir %q, want %q", c.args, o.discoveryDir, c.want)
		}
	}
}
