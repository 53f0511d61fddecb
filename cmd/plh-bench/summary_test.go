package main

import (
	"math"
	"testing"
)

func TestRatioLinesAndVerdicts(t *testing.T) {
	for _, c := range []struct {
		line, verdict string
	}{
		{"RATIO ring 4 KiB copy-out msg/s, DataBlock/raw|0.9818|>=|0.8", "pass"},
		{"RATIO ring 4 KiB copy-out msg/s, DataBlock/raw|0.7|>=|0.8", "MISS"},
		{"RATIO ring 64 B one-way p50, DataBlock/raw|1.2|<=|1.3", "pass"},
		{"RATIO ring 64 B one-way p50, DataBlock/raw|1.98|<=|1.3", "MISS"},
		{"RATIO hub Pipeline 4 KiB NULL msg/s, hub/libzmq|NaN|>=|1", "n/a"},
		{"RATIO curve 4 KiB one-way msg/s, CURVE/NULL|0.37|info|0", "info"},
	} {
		r, ok := parseRatio("b", c.line)
		if !ok {
			t.Fatalf("%q not parsed", c.line)
		}
		if got := r.verdict(); got != c.verdict {
			t.Errorf("%q: verdict %s, want %s", c.line, got, c.verdict)
		}
	}
	for _, bad := range []string{"RATIO x|1|>=", "RATIO x|one|>=|1", "RATIO x|1|>=|t"} {
		if _, ok := parseRatio("b", bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestBrokerResultGivesARatio(t *testing.T) {
	rs := resultRatios("broker", "RESULT regdisc_per_s=12000 zmq_rr_per_s=15000 died_p99_ms=3.1")
	if len(rs) != 1 || math.Abs(rs[0].v-0.8) > 1e-9 || rs[0].verdict() != "info" {
		t.Fatalf("got %+v", rs)
	}
	if rs := resultRatios("ring", "RESULT regdisc_per_s=1 zmq_rr_per_s=1"); len(rs) != 0 {
		t.Fatalf("ring RESULT gave %+v", rs)
	}
}
