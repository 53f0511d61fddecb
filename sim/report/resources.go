package report

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
)

// tlResStrip is the height of the resource strip of timeline.html.
const tlResStrip = 100

// resourceSeries are the lines of the resource strip: the hub's descriptors
// and goroutines in colour, every other process's descriptors in grey.
type resourceSeries struct {
	label, colour string
	pts           [][2]float64 // t, value
}

// writeResourceStrip draws the sampled resources (resource and stats events)
// as lines on one scale, with the hub's marked samples (baseline, t0,
// run_end, quiesced) as dots whose title is the sample.
func writeResourceStrip(sb *strings.Builder, evs []event.Event, x func(int64) float64, top float64) {
	series := map[string]*resourceSeries{}
	add := func(key, label, colour string, t int64, v float64) {
		s, ok := series[key]
		if !ok {
			s = &resourceSeries{label: label, colour: colour}
			series[key] = s
		}
		s.pts = append(s.pts, [2]float64{float64(t), v})
	}
	var marks []event.Event
	peak := 1.0
	for _, ev := range evs {
		hub := ev.Node == scenario.HubName
		if fds, ok := ev.Num("fds"); ok && ev.Kind == "resource" {
			if hub {
				add("hub fds", "hub fds", "#e07b00", ev.T, fds)
			} else {
				add(ev.Node+" fds", ev.Node+" fds", "#bbb", ev.T, fds)
			}
			peak = max(peak, fds)
			if hub && ev.Str("phase") != "" {
				marks = append(marks, ev)
			}
		}
		if g, ok := ev.Num("goroutines"); ok && hub && (ev.Kind == "stats" || ev.Kind == "resource") {
			add("hub goroutines", "hub goroutines", "#7b4fc9", ev.T, g)
			peak = max(peak, g)
		}
	}
	h := float64(tlResStrip - 25)
	fmt.Fprintf(sb, `<text x="8" y="%.1f">resources</text><text x="8" y="%.1f" fill="#888" font-size="11">peak %.0f</text>`+"\n", top+20, top+36, peak)
	fmt.Fprintf(sb, `<rect x="8" y="%.1f" width="9" height="9" fill="#e07b00"/><text x="21" y="%.1f" font-size="11">hub fds</text>`+
		`<rect x="8" y="%.1f" width="9" height="9" fill="#7b4fc9"/><text x="21" y="%.1f" font-size="11">hub goroutines</text>`+
		`<rect x="8" y="%.1f" width="9" height="9" fill="#bbb"/><text x="21" y="%.1f" font-size="11">node fds</text>`+"\n",
		top+44, top+52, top+58, top+66, top+72, top+80)
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { // grey lines under the hub's
		hi, hj := strings.HasPrefix(keys[i], "hub "), strings.HasPrefix(keys[j], "hub ")
		if hi != hj {
			return hj
		}
		return keys[i] < keys[j]
	})
	y := func(v float64) float64 { return top + h - h*v/peak }
	for _, k := range keys {
		s := series[k]
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(int64(p[0])), y(p[1])))
		}
		fmt.Fprintf(sb, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"><title>%s</title></polyline>`+"\n",
			s.colour, strings.Join(pts, " "), esc(s.label))
	}
	for _, ev := range marks {
		fds, _ := ev.Num("fds")
		fmt.Fprintf(sb, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="#e07b00" stroke="#222"><title>%s</title></circle>`+"\n",
			x(ev.T), y(fds), esc(evJSON(ev)))
	}
}
