package curve

import (
	"testing"

	"github.com/go-zeromq/zmq4"
)

// BenchmarkEcho4K measures 4 KiB request/echo round trips through the curve
// transport (zmq4 DEALER to ROUTER over loopback TCP): both data paths, sealing
// and opening, and the listener's connection wrapper.
func BenchmarkEcho4K(b *testing.B) {
	srv := mustKeys(b)
	addr := startRouter(b, ServerConfig{Keys: srv})
	d, err := dialDealer(b, addr, ClientConfig{ServerKey: srv.Public})
	if err != nil {
		b.Fatal(err)
	}
	msg := zmq4.NewMsg(make([]byte, 4096))
	b.SetBytes(2 * 4096)
	b.ResetTimer()
	for range b.N {
		if err := d.Send(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Recv(); err != nil {
			b.Fatal(err)
		}
	}
}
