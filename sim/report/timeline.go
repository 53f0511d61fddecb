package report

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/pylabhub/plh/internal/event"
	"github.com/pylabhub/plh/sim/scenario"
	"github.com/pylabhub/plh/sim/verdict"
)

// Geometry of the timeline picture.
const (
	tlWidth   = 1200
	tlLeft    = 150
	tlRight   = 20
	tlTop     = 40
	tlLane    = 34
	tlStrip   = 90
	tlBuckets = 200
	// tlMaxMarkers bounds the markers of one kind on one lane.
	tlMaxMarkers = 500
)

// marker styles per event kind: shape and colour.
var markers = map[string][2]string{
	"ready":                        {"circle", "#2a9d3a"},
	"registered":                   {"circle", "#2a7fd4"},
	"discovered":                   {"circle", "#2a7fd4"},
	"attached":                     {"circle", "#2a7fd4"},
	"notification":                 {"diamond", "#e07b00"},
	"consumer_joined":              {"circle", "#7b4fc9"},
	"consumer_left":                {"diamond", "#7b4fc9"},
	"consumer_died":                {"diamond", "#b0008a"},
	"broker_lost":                  {"cross", "#d1242f"},
	"broker_reconnected":           {"circle", "#2a9d3a"},
	"checksum_error":               {"square", "#d1242f"},
	"gap":                          {"tick", "#d97706"},
	"reorder":                      {"square", "#d1242f"},
	"error":                        {"cross", "#d1242f"},
	"exit":                         {"bar", "#222"},
	scenario.KindLockHeld:          {"square", "#b0008a"},
	scenario.KindLockReclaimed:     {"circle", "#2a9d3a"},
	scenario.KindLockReclaimFailed: {"cross", "#d1242f"},
}

// RenderTimeline writes a self-contained HTML page (inline SVG and CSS, no
// script, no network): one lane per process with its life span and markers for
// notable events, fault bands across all lanes, a throughput and backpressure
// strip, a resource strip (descriptors, goroutines), and the verdicts with
// their evidence.
func RenderTimeline(w io.Writer, p *scenario.Plan, rep *verdict.Report, evs []event.Event) error {
	var sb strings.Builder
	lanes := laneNames(p, evs)
	tmin, tmax := rep.T0, rep.End
	for _, ev := range evs {
		if tmin == 0 || ev.T < tmin {
			tmin = ev.T
		}
		if ev.T > tmax {
			tmax = ev.T
		}
	}
	if tmax <= tmin {
		tmax = tmin + 1e9
	}
	plotW := float64(tlWidth - tlLeft - tlRight)
	x := func(t int64) float64 { return float64(tlLeft) + plotW*float64(t-tmin)/float64(tmax-tmin) }
	laneY := map[string]float64{}
	for i, n := range lanes {
		laneY[n] = float64(tlTop + i*tlLane + tlLane/2)
	}
	stripTop := float64(tlTop + len(lanes)*tlLane + 20)
	height := int(stripTop) + tlStrip + tlResStrip + 30

	fmt.Fprintf(&sb, `<!DOCTYPE html><html><head><meta charset="utf-8"><title>%s — plh-sim timeline</title><style>
body{font:14px system-ui,sans-serif;margin:20px;color:#222}
.pass{color:#2a9d3a}.fail{color:#d1242f}.inconclusive{color:#b26b00}.error{color:#d1242f}
table{border-collapse:collapse;margin:10px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
pre{margin:0;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;max-width:70em}svg text{font:12px system-ui,sans-serif}
</style></head><body>
<h1>%s</h1><p>Status <b class="%s">%s</b> (exit %d) · seed %d · source %s · run start at t=%d ns</p>
`, esc(rep.Name), esc(rep.Name), rep.Status, strings.ToUpper(rep.Status), rep.ExitCode, rep.Seed, esc(rep.Source), rep.T0)
	if rep.Error != "" {
		fmt.Fprintf(&sb, "<p class=\"error\">Harness error: %s</p>\n", esc(rep.Error))
	}
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", tlWidth, height, tlWidth, height)
	// Time axis: a tick per second relative to run start.
	for s := (tmin - rep.T0) / 1e9; ; s++ {
		t := rep.T0 + s*1e9
		if t > tmax {
			break
		}
		if t < tmin {
			continue
		}
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" fill="#888">%ds</text>`+"\n",
			x(t), tlTop-8, x(t), height-25, x(t)+2, tlTop-12, s)
	}
	if rep.T0 > 0 {
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#2a9d3a" stroke-dasharray="4 3"/>`+"\n", x(rep.T0), tlTop-8, x(rep.T0), height-25)
	}
	// Lanes and life spans.
	for _, n := range lanes {
		y := laneY[n]
		fmt.Fprintf(&sb, `<text x="8" y="%.1f">%s</text><line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n",
			y+4, esc(n), tlLeft, y, tlWidth-tlRight, y)
		var from int64
		for _, ev := range evs {
			if ev.Node != scenario.EngineName || ev.Str("target") != n {
				continue
			}
			switch ev.Kind {
			case "spawned":
				from = ev.T
			case "process_end":
				if from != 0 {
					fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="8" fill="#cfe3f7"><title>%s pid %v</title></rect>`+"\n",
						x(from), y-4, max(x(ev.T)-x(from), 1), esc(n), ev.Fields["pid"])
					from = 0
				}
			}
		}
		if from != 0 {
			fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="8" fill="#cfe3f7"/>`+"\n", x(from), y-4, max(x(tmax)-x(from), 1))
		}
	}
	// Fault bands.
	for _, ev := range evs {
		if ev.Node != scenario.EngineName || (ev.Kind != "fault" && ev.Kind != "fault_failed") {
			continue
		}
		end := ev.T
		for _, e2 := range evs {
			if e2.Node == scenario.EngineName && e2.Kind == "fault_end" && e2.Str("id") == ev.Str("id") && e2.T >= ev.T {
				end = e2.T
				break
			}
		}
		colour := "#d1242f"
		if ev.Kind == "fault_failed" {
			colour = "#999"
		}
		bx := x(ev.T)
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.15" stroke="%s"><title>%s</title></rect>`+"\n",
			bx, tlTop-4, max(x(end)-bx, 2), stripTop-float64(tlTop)-12, colour, colour, esc(evJSON(ev)))
		fmt.Fprintf(&sb, `<text x="%.1f" y="%d" fill="%s">⚡%s</text>`+"\n", bx+2, tlTop+2, colour, esc(ev.Str("id")))
		if y, ok := laneY[ev.Str("target")]; ok {
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="6" fill="none" stroke="%s" stroke-width="2"/>`+"\n", bx, y, colour)
		}
	}
	// Event markers, at most tlMaxMarkers per lane and kind (a node stuck in a
	// loop may write a flood of one kind).
	drawn := map[[2]string]int{}
	for _, ev := range evs {
		st, ok := markers[ev.Kind]
		y, onLane := laneY[markerLane(ev)]
		if !ok || !onLane {
			continue
		}
		k := [2]string{markerLane(ev), ev.Kind}
		if drawn[k]++; drawn[k] > tlMaxMarkers {
			continue
		}
		sb.WriteString(marker(st[0], st[1], x(ev.T), y, evJSON(ev)))
	}
	for k, n := range drawn {
		if n > tlMaxMarkers {
			fmt.Fprintf(&sb, `<text x="%d" y="%.1f" fill="#d1242f" font-size="11">+%d %s not drawn</text>`+"\n",
				tlWidth-tlRight-170, laneY[k[0]]+14, n-tlMaxMarkers, esc(k[1]))
		}
	}
	writeStrip(&sb, evs, x, tmin, tmax, stripTop)
	writeResourceStrip(&sb, evs, x, stripTop+tlStrip)
	sb.WriteString("</svg>\n")
	writeTables(&sb, rep)
	sb.WriteString("</body></html>\n")
	_, err := io.WriteString(w, sb.String())
	return err
}

// laneNames lists the hub, the plan's nodes and any other process that wrote
// events (an intruder spawned by a fault), in that order.
func laneNames(p *scenario.Plan, evs []event.Event) []string {
	seen := map[string]bool{scenario.HubName: true, scenario.EngineName: true}
	out := []string{scenario.HubName}
	for _, n := range p.Nodes {
		if !seen[n.Name] {
			seen[n.Name] = true
			out = append(out, n.Name)
		}
	}
	for _, ev := range evs {
		name := ev.Node
		if ev.Node == scenario.EngineName && ev.Kind == "spawned" {
			name = ev.Str("target")
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// markerLane is the lane an event is drawn on: its node's, except the engine's
// own observations about a process (a reclaimed lock), drawn on that process's lane.
func markerLane(ev event.Event) string {
	if t := ev.Str("target"); ev.Node == scenario.EngineName && t != "" {
		return t
	}
	return ev.Node
}

func marker(shape, colour string, x, y float64, title string) string {
	t := "<title>" + esc(title) + "</title>"
	switch shape {
	case "diamond":
		return fmt.Sprintf(`<path d="M%.1f %.1fl6 6l-6 6l-6-6z" fill="%s">%s</path>`+"\n", x, y-6, colour, t)
	case "square":
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="9" height="9" fill="%s">%s</rect>`+"\n", x-4.5, y-4.5, colour, t)
	case "cross":
		return fmt.Sprintf(`<path d="M%.1f %.1fl10 10m0-10l-10 10" stroke="%s" stroke-width="2.5">%s</path>`+"\n", x-5, y-5, colour, t)
	case "tick":
		return fmt.Sprintf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5">%s</line>`+"\n", x, y+5, x, y+12, colour, t)
	case "bar":
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="3" height="16" fill="%s">%s</rect>`+"\n", x-1.5, y-8, colour, t)
	}
	return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="4.5" fill="%s">%s</circle>`+"\n", x, y, colour, t)
}

// writeStrip draws written (blue) and read (green) counts per time bucket, and
// backpressure stalls as red ticks under them.
func writeStrip(sb *strings.Builder, evs []event.Event, x func(int64) float64, tmin, tmax int64, top float64) {
	// Nodes aggregate written/read per 100 ms, so buckets are at least that wide.
	nb := int(min(max((tmax-tmin)/1e8, 10), tlBuckets))
	wr, rd := make([]float64, nb), make([]float64, nb)
	var stalls []event.Event
	span := float64(tmax-tmin) / float64(nb)
	peak := 1.0
	for _, ev := range evs {
		b := int(float64(ev.T-tmin) / span)
		b = min(max(b, 0), nb-1)
		n, _ := ev.Num("count")
		switch ev.Kind {
		case "written":
			wr[b] += n
			peak = max(peak, wr[b])
		case "read":
			rd[b] += n
			peak = max(peak, rd[b])
		case "backpressure_stall":
			stalls = append(stalls, ev)
		}
	}
	h := float64(tlStrip - 25)
	fmt.Fprintf(sb, `<text x="8" y="%.1f">throughput</text><text x="8" y="%.1f" fill="#888" font-size="11">peak %.0f / bucket</text>`+"\n", top+20, top+36, peak)
	fmt.Fprintf(sb, `<rect x="8" y="%.1f" width="9" height="9" fill="#2a7fd4" fill-opacity="0.6"/><text x="21" y="%.1f" font-size="11">written</text>`+
		`<rect x="70" y="%.1f" width="9" height="9" fill="#2a9d3a" fill-opacity="0.6"/><text x="83" y="%.1f" font-size="11">read</text>`+"\n",
		top+44, top+52, top+44, top+52)
	fmt.Fprintf(sb, `<text x="8" y="%.1f" fill="#d1242f">stalls (%d)</text>`+"\n", top+h+14, len(stalls))
	bw := float64(tlWidth-tlLeft-tlRight) / float64(nb)
	for i := 0; i < nb; i++ {
		bx := float64(tlLeft) + float64(i)*bw
		if wr[i] > 0 {
			hh := h * wr[i] / peak
			fmt.Fprintf(sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#2a7fd4" fill-opacity="0.6"/>`+"\n", bx, top+h-hh, bw/2, hh)
		}
		if rd[i] > 0 {
			hh := h * rd[i] / peak
			fmt.Fprintf(sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#2a9d3a" fill-opacity="0.6"/>`+"\n", bx+bw/2, top+h-hh, bw/2, hh)
		}
	}
	for _, ev := range stalls {
		fmt.Fprintf(sb, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d1242f"><title>%s</title></line>`+"\n",
			x(ev.T), top+h+4, x(ev.T), top+h+16, esc(evJSON(ev)))
	}
}

func writeTables(sb *strings.Builder, rep *verdict.Report) {
	sb.WriteString("<h2>Expectations</h2><table><tr><th>status</th><th>expectation</th><th>message</th><th>evidence</th></tr>\n")
	for _, v := range rep.Expectations {
		var ev []string
		for _, e := range v.Evidence {
			ev = append(ev, evJSON(e))
		}
		fmt.Fprintf(sb, "<tr><td class=\"%s\">%s</td><td>%s</td><td>%s</td><td><pre>%s</pre></td></tr>\n",
			v.Status, v.Status, esc(v.Name), esc(v.Message), esc(strings.Join(ev, "\n")))
	}
	sb.WriteString("</table><h2>Faults</h2><table><tr><th>id</th><th>kind</th><th>target</th><th>scheduled</th><th>fired</th><th>detail</th></tr>\n")
	for _, f := range rep.Faults {
		fired := "no"
		if f.Fired {
			fired = fmt.Sprintf("%.3fs", f.FiredAtS)
		}
		detail := f.Detail
		if f.Error != "" {
			detail += " error: " + f.Error
		}
		fmt.Fprintf(sb, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			esc(f.ID), esc(f.Kind), esc(f.Target), esc(f.At), fired, esc(detail))
	}
	sb.WriteString("</table><p>Markers: circle = ready/registered/attached, diamond = notification, cross = broker lost or error, square = checksum error or reorder, bar = exit. Hover for the event. Blue/green bars: written/read per time bucket.</p>\n")
}

func evJSON(ev event.Event) string {
	b, err := json.Marshal(ev)
	if err != nil {
		return ev.Kind
	}
	return string(b)
}

func esc(s string) string { return html.EscapeString(s) }
