package chaos

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkHosts measures making and removing a Net of N hosts (bridge,
// inits, veths, addresses) where hosts can be made.
func BenchmarkHosts(b *testing.B) {
	if err := HostsSupported(); err != nil {
		b.Skipf("skipped: %v", err)
	}
	for _, n := range []int{2, 8} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var up, down time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				net, err := NewNet(fmt.Sprintf("b%d%d", n, i%10000))
				if err != nil {
					b.Fatal(err)
				}
				for h := 0; h < n; h++ {
					if _, err := net.AddHost(fmt.Sprintf("h%d", h), "", nil); err != nil {
						b.Fatal(err)
					}
				}
				mid := time.Now()
				if err := net.Close(); err != nil {
					b.Fatal(err)
				}
				up += mid.Sub(start)
				down += time.Since(mid)
			}
			b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "setup-ms")
			b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "teardown-ms")
		})
	}
}
