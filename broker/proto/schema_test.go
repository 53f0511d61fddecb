package proto

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckSchemaPolicy(t *testing.T) {
	v100, v110, v200 := PackVersion(1, 0, 0), PackVersion(1, 1, 0), PackVersion(2, 0, 0)
	base := Schema{Name: "imu", Version: v100, BLDS: "t:u64;x:f32"}
	cases := []struct {
		name string
		next Schema
		want string // "" = compatible; else a part of the error
	}{
		{"same", base, ""},
		{"same fields, other patch", Schema{Name: "imu", Version: PackVersion(1, 0, 7), BLDS: base.BLDS}, ""},
		{"appended with higher minor", Schema{Name: "imu", Version: v110, BLDS: "t:u64;x:f32;y:f32"}, ""},
		{"appended, same minor", Schema{Name: "imu", Version: v100, BLDS: "t:u64;x:f32;y:f32"}, `field 2 "y" appended without a higher minor version`},
		{"changed type", Schema{Name: "imu", Version: v110, BLDS: "t:u64;x:f64"}, `field 1 "x": "x:f64", expected "x:f32"`},
		{"renamed", Schema{Name: "imu", Version: v110, BLDS: "t:u64;z:f32"}, `field 1 "x"`},
		{"removed", Schema{Name: "imu", Version: v110, BLDS: "t:u64"}, `field 1 "x" missing`},
		{"other name", Schema{Name: "gps", Version: v100, BLDS: base.BLDS}, `schema name "gps", expected "imu"`},
		{"other major", Schema{Name: "imu", Version: v200, BLDS: base.BLDS}, "major version 2, expected 1"},
	}
	for _, c := range cases {
		err := CheckSchema(base, c.next)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want compatible", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrSchemaIncompatible) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want ErrSchemaIncompatible with %q", c.name, err, c.want)
		}
	}
}

func TestSchemaFieldsGrammar(t *testing.T) {
	for _, ok := range []string{"", "value:u32", "sequence:u64;app_checksum:u32;payload:u8[4084]", "a:c[16]@0:16"} {
		if _, err := SchemaFields(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{";", "x", "x:u128", "x:u8[0]", "x:u8;;y:u8", "1x:u8", "x:u8 ", "x:u8[4"} {
		if _, err := SchemaFields(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
	if VersionString(PackVersion(1, 2, 3)) != "1.2.3" || PackVersion(1, 0, 0) != 0x00400000 {
		t.Fatal("version packing")
	}
}

func TestRegReqSchemaValidated(t *testing.T) {
	for body, want := range map[string]error{
		`{"channel_name":"c","producer_pid":1,"schema_name":"s","schema_blds":"a:u8"}`: nil,
		`{"channel_name":"c","producer_pid":1,"schema_blds":"a:u8"}`:                   ErrInvalid,
		`{"channel_name":"c","producer_pid":1,"schema_name":"s","schema_blds":"a"}`:    ErrInvalid,
		`{"channel_name":"c","producer_pid":1,"schema_name":5}`:                        ErrInvalid,
	} {
		if _, err := Decode(TypeRegReq, []byte(body)); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: %v, want %v", body, err, want)
		}
	}
}

func TestLogicalName(t *testing.T) {
	for in, want := range map[string]string{
		"sensors":                        "sensors",
		"sensors | pid:1234-0":           "sensors",
		"a | b | pid:7-12":               "a | b",
		"sensors | pid:1234":             "sensors | pid:1234",
		"sensors | pid:x-1":              "sensors | pid:x-1",
		"sensors | pid:1-2 ":             "sensors | pid:1-2 ",
		" | pid:1-2":                     " | pid:1-2",
		"sensors |pid:1-2":               "sensors |pid:1-2",
		"sensors | pid:1-2 | pid:3-4":    "sensors | pid:1-2",
		"sensors | pid:1-" + "999999999": "sensors",
	} {
		if got := LogicalName(in); got != want {
			t.Errorf("LogicalName(%q) = %q, want %q", in, got, want)
		}
	}
}
