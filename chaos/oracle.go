package chaos

import (
	"container/heap"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// Oracle says, from the topology and the faults in force, which servers an update must
// reach (directed paths over links that are up, between servers that run and are not
// paused), which it may reach (also over unreliable links), and by when.
type Oracle struct {
	cfg    topology.Config
	timing Timing
	down   map[string]bool
	// edge state per directed peer link
	cut, unreliable, slow map[Link]bool
	minLat, maxLat        map[Link]time.Duration
}

// NewOracle builds the oracle for the given faults.
func NewOracle(cfg topology.Config, faults []ActiveFault, timing Timing) *Oracle {
	o := &Oracle{cfg: cfg, timing: timing, down: map[string]bool{},
		cut: map[Link]bool{}, unreliable: map[Link]bool{}, slow: map[Link]bool{},
		minLat: map[Link]time.Duration{}, maxLat: map[Link]time.Duration{}}
	for _, f := range faults {
		e := f.Effects
		for _, n := range slices.Concat(e.Crash, e.Stop, e.Pause) {
			o.down[n] = true
		}
		for _, l := range e.Cut {
			o.cut[l] = true
		}
		for _, t := range e.Toxics {
			switch t.Toxic.Type {
			case "timeout":
				o.cut[t.Link] = true
			case "reset_peer", "limit_data":
				o.unreliable[t.Link] = true
			case "bandwidth", "slicer", "slow_close":
				o.slow[t.Link] = true
			case "latency":
				lat := time.Duration(t.Toxic.Attributes["latency"]) * time.Millisecond
				jit := time.Duration(t.Toxic.Attributes["jitter"]) * time.Millisecond
				o.minLat[t.Link] += max(0, lat-jit)
				o.maxLat[t.Link] += lat + jit
			}
		}
	}
	return o
}

// Up reports whether node runs and is not paused.
func (o *Oracle) Up(node string) bool { return !o.down[node] }

func (o *Oracle) usable(l Link, allowUnreliable bool) bool {
	if o.down[l.From] || o.down[l.To] || o.cut[l] {
		return false
	}
	return allowUnreliable || !o.unreliable[l]
}

func (o *Oracle) reach(origin string, allowUnreliable bool) []string {
	if o.down[origin] || o.cfg.Server(origin) == nil {
		return nil
	}
	seen := map[string]bool{origin: true}
	queue := []string{origin}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, p := range o.cfg.Server(n).Neighbours() {
			if !seen[p] && o.usable(Link{n, p}, allowUnreliable) {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// MustReach are the servers an update accepted at origin must reach (origin included).
func (o *Oracle) MustReach(origin string) []string { return o.reach(origin, false) }

// MayReach are the servers it could reach; the rest must not get it while the faults last.
func (o *Oracle) MayReach(origin string) []string { return o.reach(origin, true) }

// MustNotReach are the running servers the update cannot reach while the faults last.
func (o *Oracle) MustNotReach(origin string) []string {
	may := o.MayReach(origin)
	var out []string
	for _, n := range o.cfg.Names() {
		if !o.down[n] && !slices.Contains(may, n) {
			out = append(out, n)
		}
	}
	return out
}

// Deadline is how long after origin accepted an update target must hold it: the worst
// case along the fastest path plus the herd's allowances.
func (o *Oracle) Deadline(origin, target string) time.Duration {
	d, ok := o.shortest(origin, target, func(l Link) time.Duration {
		w := o.maxLat[l] + o.timing.PerHop
		if o.slow[l] {
			w += o.timing.SlowHop
		}
		return w
	})
	if !ok {
		return 0
	}
	return d + o.timing.Settle
}

// MinDelay is the least time the injected latencies allow between origin accepting an
// update and target holding it: no server may have it sooner.
func (o *Oracle) MinDelay(origin, target string) time.Duration {
	d, _ := o.shortest(origin, target, func(l Link) time.Duration { return o.minLat[l] })
	return d
}

// Hops is the number of links on the shortest usable path, or -1.
func (o *Oracle) Hops(origin, target string) int {
	d, ok := o.shortest(origin, target, func(Link) time.Duration { return 1 })
	if !ok {
		return -1
	}
	return int(d)
}

// shortest is Dijkstra over usable (reliable) links.
func (o *Oracle) shortest(origin, target string, weight func(Link) time.Duration) (time.Duration, bool) {
	dist := map[string]time.Duration{origin: 0}
	pq := &distHeap{{origin, 0}}
	done := map[string]bool{}
	for pq.Len() > 0 {
		cur := heap.Pop(pq).(distItem)
		if done[cur.node] {
			continue
		}
		done[cur.node] = true
		if cur.node == target {
			return cur.d, true
		}
		for _, p := range o.cfg.Server(cur.node).Neighbours() {
			l := Link{cur.node, p}
			if !o.usable(l, false) {
				continue
			}
			nd := cur.d + weight(l)
			if old, ok := dist[p]; !ok || nd < old {
				dist[p] = nd
				heap.Push(pq, distItem{p, nd})
			}
		}
	}
	return 0, false
}

type distItem struct {
	node string
	d    time.Duration
}
type distHeap []distItem

func (h distHeap) Len() int           { return len(h) }
func (h distHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h distHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)        { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// OracleAt is the oracle in force at t by a recorded timeline: the topology, and the
// faults whose windows say the oracle counted them at t (from Applied until Healing),
// each read back from its FaultSpec. Checks judge by it, live and again from a saved
// history alike.
func OracleAt(cfg topology.Config, timing Timing, faults []FaultWindow, t time.Duration) (*Oracle, error) {
	var active []ActiveFault
	for _, w := range faults {
		if !w.inForce(t) {
			continue
		}
		f, err := w.Spec.Fault()
		if err != nil {
			return nil, fmt.Errorf("fault window %s: %w", w.ID, err)
		}
		e, err := f.Effects(cfg)
		if err != nil {
			return nil, fmt.Errorf("fault window %s: %w", w.ID, err)
		}
		active = append(active, ActiveFault{ID: w.ID, Fault: f, Effects: e, Since: w.Applied})
	}
	return NewOracle(cfg, active, timing), nil
}

// calm reports whether the faults stayed the same from from to to by the windows: no
// inject or heal was under way, even in part, in between (a change still under way
// counts until now).
func calm(faults []FaultWindow, from, to time.Duration) bool {
	overlaps := func(a, b time.Duration) bool { return a <= to && (b < 0 || b >= from) }
	for _, w := range faults {
		applied := w.Applied
		if applied < 0 {
			applied = w.End // an inject that failed and was undone, or one under way (-1)
		}
		if overlaps(w.Start, applied) || (w.Healing >= 0 && overlaps(w.Healing, w.End)) {
			return false
		}
	}
	return true
}

// describeFaultsAt lists the faults in force at t by the windows, for failure messages.
func describeFaultsAt(faults []FaultWindow, t time.Duration) string {
	var s []string
	for _, w := range faults {
		if w.inForce(t) {
			s = append(s, w.ID+" "+w.Fault)
		}
	}
	if len(s) == 0 {
		return "no faults in force"
	}
	return "faults in force: " + strings.Join(s, "; ")
}
