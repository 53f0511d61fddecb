package proto

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in [][]byte
		ok bool
	}{
		{ControlFrames("REG_REQ", []byte("{}")), true},
		{DataFrames([]byte("x")), true},
		{[][]byte{{'C'}, []byte("X")}, false},
		{[][]byte{{'Z'}, []byte("X"), nil}, false},
		{[][]byte{{'C', 'C'}, []byte("X"), nil}, false},
		{[][]byte{{'C'}, nil, nil}, false},
		{[][]byte{{'C'}, []byte("A B"), nil}, false},
		{[][]byte{{'C'}, []byte(strings.Repeat("T", MaxTypeLen+1)), nil}, false},
		{nil, false},
	}
	for i, c := range cases {
		_, err := Parse(c.in)
		if (err == nil) != c.ok {
			t.Errorf("case %d: %v", i, err)
		}
		if err != nil && !errors.Is(err, ErrBadFrames) {
			t.Errorf("case %d: not ErrBadFrames: %v", i, err)
		}
	}
}

func TestParseReturnsTheMessage(t *testing.T) {
	f, err := Parse(ControlFrames("PING_REQ", []byte("{}")))
	if err != nil || f.Kind != KindControl || f.Type != "PING_REQ" || string(f.Body) != "{}" {
		t.Fatalf("control: %+v %v", f, err)
	}
	f, err = Parse(DataFrames([]byte("hi")))
	if err != nil || f.Kind != KindData || f.Type != "" || string(f.Body) != "hi" {
		t.Fatalf("data: %+v %v", f, err)
	}
}

// FuzzParse: Parse never panics, and what it accepts round-trips through the
// frame constructors.
func FuzzParse(f *testing.F) {
	f.Add(byte('C'), []byte("REG_REQ"), []byte("{}"))
	f.Add(byte('A'), []byte("x"), []byte(nil))
	f.Fuzz(func(t *testing.T, kind byte, a, b []byte) {
		fr, err := Parse([][]byte{{kind}, a, b})
		if err != nil {
			return
		}
		var again Frame
		if fr.Kind == KindControl {
			again, err = Parse(ControlFrames(fr.Type, fr.Body))
		} else {
			again, err = Parse(DataFrames(fr.Body))
		}
		if err != nil || again.Kind != fr.Kind || again.Type != fr.Type || string(again.Body) != string(fr.Body) {
			t.Fatalf("round trip: %+v -> %+v %v", fr, again, err)
		}
	})
}
