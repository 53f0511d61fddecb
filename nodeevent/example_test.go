package nodeevent_test

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/nodeevent"
)

// A consumer built on hub reports what it did in four calls; the lines are
// what plh-sim reads from its stdout (here a buffer, to show them).
func Example() {
	var out bytes.Buffer // a real program passes os.Stdout (nodeevent.FromEnv)
	ev := nodeevent.New(&out, "cam-reader", "consumer", "plh_cam_1")
	_ = ev.Ready()                 // connected: the run may start
	_ = ev.Read(0, 99, 6400, 4242) // sequences 0..99 from producer pid 4242
	_ = ev.Notification("CHANNEL_CLOSING_NOTIFY", map[string]any{"reason": "explicit_close"})
	_ = ev.Exit(0, nodeevent.ReasonDone)

	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		e, _ := event.Decode(sc.Bytes())
		fmt.Println(e.Node, e.Kind, e.Fields["count"], e.Fields["type"], e.Fields["read"])
	}
	// Output:
	// cam-reader ready <nil> <nil> <nil>
	// cam-reader read 100 <nil> <nil>
	// cam-reader notification <nil> CHANNEL_CLOSING_NOTIFY <nil>
	// cam-reader exit <nil> <nil> 100
}
