package noderole

import (
	"io"
	"strings"
	"testing"

	"github.com/pylabhub/plh/broker/proto"
)

func TestSchemaFlags(t *testing.T) {
	base := []string{"--role", "consumer", "--broker", "tcp://127.0.0.1:1", "--channel", "c"}
	o, err := parseFlags(append(base, "--schema", "imu", "--schema-version", "1.2.3", "--schema-blds", "t:u64;x:f32"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := o.descriptor; d == nil || d.Name != "imu" || d.Version != proto.PackVersion(1, 2, 3) || d.BLDS != "t:u64;x:f32" {
		t.Fatalf("descriptor %+v", o.descriptor)
	}
	if h := o.channelSchemaHash(); len(h) != 32 {
		t.Fatalf("hash %x", h)
	}
	for args, want := range map[string]string{
		"--schema-blds t:u64": "needs --schema",
		"--schema imu --schema-blds t:u64 --schema-version 1.x":      "--schema-version",
		"--schema imu --schema-blds t:u64 --schema-version 1024.0.0": "--schema-version",
		"--schema imu --schema-blds t":                               "--schema-blds",
	} {
		if _, err := parseFlags(append(base, strings.Fields(args)...), io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", args, err, want)
		}
	}
	if o, err := parseFlags(append(base, "--schema", "imu"), io.Discard); err != nil || o.descriptor != nil {
		t.Fatalf("name only: %+v %v", o.descriptor, err)
	}
}
