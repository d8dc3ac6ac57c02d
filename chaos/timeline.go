package chaos

import (
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteTimeline writes a self-contained HTML page of a history: one lane per server, the
// fault windows as bars (a server's own crash, stop or pause also shaded in its lane),
// each IAMAT where it was accepted (a triangle) and each update's first appearance at
// each server (a dot of the update's colour), and the checks' verdicts. Hover for details.
func WriteTimeline(w io.Writer, title string, servers []string, h *History) error {
	s := h.Snapshot()
	end := time.Duration(0)
	bump := func(d time.Duration) {
		if d > end {
			end = d
		}
	}
	for _, op := range s.Ops {
		bump(op.Invoke)
		bump(op.Complete)
	}
	for _, f := range s.Faults {
		bump(f.Start)
		bump(f.End)
	}
	for _, x := range s.Seen {
		bump(x.When)
	}
	for _, n := range s.Notes {
		bump(n.When)
	}
	if end <= 0 {
		end = time.Second
	}
	end += end / 50

	const left, width, laneH, barH = 130.0, 1100.0, 34.0, 14.0
	x := func(d time.Duration) float64 { return left + width*float64(d)/float64(end) }
	// Fault rows: pack overlapping windows into rows.
	var rowEnds []time.Duration
	rowOf := make([]int, len(s.Faults))
	for i, f := range s.Faults {
		fe := f.End
		if fe < 0 {
			fe = end
		}
		placed := false
		for r, re := range rowEnds {
			if re <= f.Start {
				rowOf[i], rowEnds[r], placed = r, fe, true
				break
			}
		}
		if !placed {
			rowOf[i] = len(rowEnds)
			rowEnds = append(rowEnds, fe)
		}
	}
	faultTop := 40.0
	lanesTop := faultTop + float64(max(1, len(rowEnds)))*(barH+4) + 20
	checksY := lanesTop + float64(len(servers))*laneH + 16
	height := checksY + 60

	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`<!doctype html><html><head><meta charset="utf-8"><title>%s</title><style>
body{font:13px system-ui,sans-serif;margin:20px;color:#222}
svg text{font:12px system-ui,sans-serif}
table{border-collapse:collapse;margin-top:16px}td{padding:2px 10px;border-bottom:1px solid #eee;vertical-align:top}
.bad{color:#b00020}.ok{color:#1b7a2b}
</style></head><body><h2>%s</h2>
<p>Lanes are servers. Bars above are fault windows; a server's own crash, stop or pause is also shaded in its lane.
&#9650; an IAMAT accepted there; &#9679; an update first seen there (one colour per update). Hover for details.</p>
<svg width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(title), html.EscapeString(title), left+width+20, height)
	// Time axis.
	step := niceStep(end)
	for t := time.Duration(0); t <= end; t += step {
		p(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, x(t), faultTop-10, x(t), checksY+10)
		p(`<text x="%.1f" y="%.1f" fill="#888" text-anchor="middle">%s</text>`, x(t), faultTop-16, t.Round(time.Millisecond))
	}
	p(`<text x="4" y="%.1f" fill="#555">faults</text>`, faultTop+barH-2)
	for i, f := range s.Faults {
		fe := f.End
		open := ""
		if fe < 0 {
			fe, open = end, " (still in force)"
		}
		y := faultTop + float64(rowOf[i])*(barH+4)
		wd := max(x(fe)-x(f.Start), 3)
		p(`<g><title>%s %s: %v to %v%s</title><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="3" fill="%s" opacity="0.75"/>`,
			f.ID, html.EscapeString(f.Fault), f.Start.Round(time.Millisecond), fe.Round(time.Millisecond), open, x(f.Start), y, wd, barH, faultColour(f.Spec.Kind))
		p(`<text x="%.1f" y="%.1f" fill="#fff">%s</text></g>`, x(f.Start)+3, y+barH-3, html.EscapeString(clip(f.Fault, int(wd/7))))
	}
	lane := map[string]float64{}
	for i, n := range servers {
		y := lanesTop + float64(i)*laneH
		lane[n] = y + laneH/2
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, left, y, width, laneH, []string{"#fafafa", "#f3f3f3"}[i%2])
		p(`<text x="4" y="%.1f">%s</text>`, y+laneH/2+4, html.EscapeString(n))
		for _, f := range s.Faults {
			if f.Holds(n, "crash", "stop", "pause", "restart", "isolate") {
				fe := f.End
				if fe < 0 {
					fe = end
				}
				p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" opacity="0.25"><title>%s</title></rect>`,
					x(f.Start), y, max(x(fe)-x(f.Start), 2), laneH, faultColour(f.Spec.Kind), html.EscapeString(f.Fault))
			}
		}
	}
	for _, op := range s.Ops {
		y, ok := lane[op.Node]
		if !ok || op.Kind != "iamat" {
			continue
		}
		colour := "#999"
		if reply := strings.TrimSuffix(op.Reply, "\n"); op.Err == "" && strings.HasPrefix(reply, "AT ") {
			colour = updateColour(reply) // the colour of the update it made
		}
		cx := x(op.Invoke)
		p(`<path d="M%.1f %.1f l5 9 h-10 z" fill="%s"><title>%v %s at %s: %s%s</title></path>`,
			cx, y-9, colour, op.Invoke.Round(time.Millisecond), html.EscapeString(op.Request), op.Node, html.EscapeString(op.Reply), html.EscapeString(op.Err))
	}
	for _, seen := range s.Seen {
		y, ok := lane[seen.Node]
		if !ok {
			continue
		}
		p(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%v first seen at %s: %s</title></circle>`,
			x(seen.When), y+6, updateColour(seen.AT), seen.When.Round(time.Millisecond), seen.Node, html.EscapeString(seen.AT))
	}
	p(`<text x="4" y="%.1f" fill="#555">checks</text>`, checksY+4)
	for _, n := range s.Notes {
		if !strings.HasPrefix(n.Text, "check ") {
			continue
		}
		colour := "#1b7a2b"
		if strings.Contains(n.Text, "FAILED") {
			colour = "#b00020"
		}
		p(`<circle cx="%.1f" cy="%.1f" r="6" fill="%s"><title>%v %s</title></circle>`, x(n.When), checksY, colour, n.When.Round(time.Millisecond), html.EscapeString(n.Text))
	}
	p(`</svg><table><tr><th>time</th><th>step or check</th></tr>`)
	for _, n := range s.Notes {
		class := ""
		if strings.HasPrefix(n.Text, "check ") {
			class = "ok"
			if strings.Contains(n.Text, "FAILED") {
				class = "bad"
			}
		}
		p(`<tr><td>%v</td><td class="%s">%s</td></tr>`, n.When.Round(time.Millisecond), class, html.EscapeString(n.Text))
	}
	p(`</table></body></html>`)
	_, err := io.WriteString(w, b.String())
	return err
}

func niceStep(end time.Duration) time.Duration {
	for _, s := range []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute} {
		if end/s <= 12 {
			return s
		}
	}
	return 5 * time.Minute
}

func clip(s string, n int) string {
	if n < 4 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"}

func updateColour(at string) string {
	h := fnv.New32a()
	h.Write([]byte(at))
	return palette[h.Sum32()%uint32(len(palette))]
}

// faultColour is the colour of a fault kind (FaultSpec.Kind).
func faultColour(kind string) string {
	kinds := []string{"latency", "bandwidth", "slicer", "slow_close", "reset_peer", "black_hole", "cut", "partition",
		"isolate", "crash", "stop", "pause", "restart", "places_slow", "places_down", "places_error"}
	colours := []string{"#4c78a8", "#72b7b2", "#54a24b", "#88d27a", "#f58518", "#222222", "#e45756", "#b279a2",
		"#ff9da6", "#9d0208", "#6a040f", "#7f7f7f", "#bab0ac", "#eeca3b", "#d8a500", "#9c755f"}
	if i := slices.Index(kinds, kind); i >= 0 {
		return colours[i]
	}
	return "#555"
}
