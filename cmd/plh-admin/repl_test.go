package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBlockComplete(t *testing.T) {
	cases := []struct {
		lines []string
		want  bool
	}{
		{[]string{"x = 1"}, true},
		{[]string{"def f():"}, false},
		{[]string{"def f():", "    return 1"}, false},
		{[]string{"def f():", "    return 1", ""}, true},
		{[]string{"x = [1,"}, false},
		{[]string{"x = [1,", " 2]"}, true},
		{[]string{"s = '(' # ("}, true},
		{[]string{"x = 1 + \\"}, false},
		{[]string{"x = 1 + \\", "  2"}, true},
		{[]string{"x = (", ""}, true}, // a blank line gives up on brackets
	}
	for _, c := range cases {
		b := block{lines: c.lines}
		if got := b.complete(); got != c.want {
			t.Errorf("%q: complete=%v, want %v", c.lines, got, c.want)
		}
	}
}
