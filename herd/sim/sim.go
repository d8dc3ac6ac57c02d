package sim

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/core"
)

// Failure is a property that did not hold: the seed, the property, what was seen, and the
// events before it.
type Failure struct {
	Seed     uint64
	Property string
	Message  string
	At       time.Duration // simulated time
	Phase    int
	Last     []string // the last events of the trace
}

func (f *Failure) Error() string {
	return fmt.Sprintf("seed %d: %s at %v (phase %d): %s", f.Seed, f.Property, f.At, f.Phase, f.Message)
}

// Result is what a run did.
type Result struct {
	Seed    uint64
	Failure *Failure // nil: every property held
	Hash    uint64   // FNV-1a of the whole event trace
	SimTime time.Duration
	Steps   int // events run
	Faults  int
	Ops     int
	Stats   Stats
}

// Stats are counts over a run.
type Stats struct {
	Resyncs, Overflows, PeerAT, Acked, Judged int
	// Client lines answered: all of them, the invalid ones, WHATSATs answered with
	// Places JSON, and those whose Places request timed out.
	Lines, Invalid, Whatsat, PlacesTimeouts int
	// ForgedDropped counts links dropped for a forged update (bad origin or bad MAC).
	ForgedDropped int
}

// MaxSteps bounds a run's events: a herd that floods forever fails instead of hanging.
const MaxSteps = 4_000_000

// Sim is one run in progress.
type Sim struct {
	sched  *Schedule
	rng    *rand.Rand
	now    time.Duration
	seq    uint64
	steps  int
	events eventHeap
	nodes  []*node
	byName map[string]*node
	links  map[[2]int]*linkFaults
	conns  int

	hash     uint64
	last     [32]string
	lastN    int
	failure  *Failure
	phase    int
	inWindow bool

	// what each server was seen storing (its newest per client: it must never go back),
	// and the AT lines it stored during the current window
	held  []map[string]string
	inWin []map[string]bool
	acks  []ack
	// issued are the AT lines servers answered to IAMATs and stored: the only updates
	// a server may ever hold.
	issued map[string]bool
	stats  Stats
	peerAT int
	// resyncs and overflows in the current phase
	phaseResyncs int
	sentLines    int
}

// ack is an acknowledged IAMAT that its server stored.
type ack struct {
	at     string
	client string
	origin int
	when   time.Duration
}

// Run runs sched and checks its properties.
func Run(sched *Schedule) Result {
	s := &Sim{
		sched:  sched,
		rng:    rand.New(rand.NewPCG(sched.Seed, 0x51a1)),
		byName: map[string]*node{},
		links:  map[[2]int]*linkFaults{},
		hash:   fnv.New64a().Sum64(),
		issued: map[string]bool{},
	}
	for i, name := range sched.Servers {
		n := &node{s: s, i: i, name: name}
		if i < len(sched.Skew) {
			n.skew = sched.Skew[i]
		}
		s.nodes = append(s.nodes, n)
		s.byName[name] = n
		s.held = append(s.held, map[string]string{})
		s.inWin = append(s.inWin, map[string]bool{})
	}
	for _, l := range sched.Links {
		a, b := s.byName[l[0]], s.byName[l[1]]
		a.order = append(a.order, b.name)
		b.order = append(b.order, a.name)
		s.links[[2]int{a.i, b.i}] = &linkFaults{}
		s.links[[2]int{b.i, a.i}] = &linkFaults{}
	}
	s.healLinks()
	for _, n := range s.nodes {
		n.start()
	}
	s.settle()
	for i, p := range sched.Phases {
		if s.failure != nil {
			break
		}
		s.phase = i
		s.runPhase(p)
	}
	res := Result{Seed: sched.Seed, Failure: s.failure, Hash: s.hash, SimTime: s.now, Steps: s.steps,
		Faults: sched.Faults(), Ops: sched.Ops(), Stats: s.stats}
	res.Stats.PeerAT = s.peerAT
	return res
}

// RunSeed generates the schedule of seed and runs it.
func RunSeed(seed uint64) Result { return Run(Generate(seed)) }

// trace records one event: it goes into the run's hash and the ring of last events.
func (s *Sim) trace(format string, args ...any) {
	line := fmt.Sprintf("%v ", s.now) + fmt.Sprintf(format, args...)
	s.mix(0, line)
	s.last[s.lastN%len(s.last)] = line
	s.lastN++
}

// mix adds an event (a number and a string, at the current time) to the run's hash.
func (s *Sim) mix(x uint64, line string) {
	h := s.hash
	for _, v := range [2]uint64{uint64(s.now), x} {
		h ^= v
		h *= 1099511628211
	}
	for i := 0; i < len(line); i++ {
		h ^= uint64(line[i])
		h *= 1099511628211
	}
	s.hash = h
}

func (s *Sim) lastEvents() []string {
	var out []string
	for i := max(0, s.lastN-len(s.last)); i < s.lastN; i++ {
		out = append(out, s.last[i%len(s.last)])
	}
	return out
}

// fail records the first property that does not hold.
func (s *Sim) fail(property, format string, args ...any) {
	if s.failure != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	s.trace("FAIL %s: %s", property, msg)
	s.failure = &Failure{Seed: s.sched.Seed, Property: property, Message: msg, At: s.now, Phase: s.phase, Last: s.lastEvents()}
}

// runUntil runs events up to t (or until a failure).
func (s *Sim) runUntil(t time.Duration) {
	for s.failure == nil && s.step(t) {
		if s.steps > MaxSteps {
			s.fail("bounded work", "more than %d events: the herd does not quiesce (a flood that never stops?)", MaxSteps)
			return
		}
	}
	if s.failure == nil {
		s.now = max(s.now, t)
	}
}

func (s *Sim) runPhase(p Phase) {
	start := s.now
	calm := true // no fault but slow Places
	for _, f := range p.Faults {
		calm = calm && f.Kind == SlowPlaces
	}
	s.phaseResyncs = 0
	peerAT0 := s.peerAT
	for i := range s.inWin {
		clear(s.inWin[i])
	}
	s.acks = s.acks[:0]
	s.inWindow = true
	for _, f := range p.Faults {
		s.inject(f)
	}
	for _, o := range p.Ops {
		n := s.byName[o.Server]
		s.at(start+o.Offset-s.now, nil, func() { s.clientOp(n, o) })
	}
	s.runUntil(start + p.Window)
	if s.failure != nil {
		return
	}
	s.checkWindow(start + p.Window)
	s.inWindow = false
	s.heal()
	s.settle()
	// IAMATs stored at their origin in the phase: in the window, and after it those a
	// WHATSAT's Places request held on their connection.
	stored := len(s.acks)
	if s.failure == nil && calm && s.phaseResyncs == 0 && stored > 0 {
		e, n := len(s.sched.Links), len(s.sched.Servers)
		bound := (2*e - n + 1) * stored
		if got := s.peerAT - peerAT0; got > bound {
			s.fail("flooding economy", "%d peer messages for %d updates in a calm phase, over 2E-N+1 = %d each", got, stored, 2*e-n+1)
		}
	}
}

// forge puts an update from outside the herd on the connection o.Forge has to n (if one
// is up): a man in the middle. Without the secret it names Mallory, no server of the
// herd, as its origin (the listener must drop the link); with the secret it impersonates
// o.Forge, and only the MAC can tell (the listener must drop the link on the bad MAC).
func (s *Sim) forge(n *node, o Op) {
	x := s.byName[o.Forge]
	d := x.dialers[n.name]
	if !x.up || d == nil || !d.up || d.c == nil || d.c.closed {
		return
	}
	origin := "Mallory"
	if s.sched.Secret {
		origin = x.name
	}
	line := "HERD-AT " + origin + " +0.000000000 " + o.Client + " +1.000000+1.000000 99999999999.000000000"
	s.trace("forged on %s->%s: %q", x.name, n.name, line)
	s.transmit(d.c, 0, line, true)
}

// stored is n storing at for client: it must be newer than what n held, and from a
// server of the herd.
func (s *Sim) stored(n *node, client, at string) {
	if f := strings.Split(at, " "); len(f) != 6 || s.byName[f[1]] == nil {
		s.fail("origins", "%s stored %q, whose origin is not a server of the herd", n.name, at)
	} else if !s.issued[at] {
		s.fail("origins", "%s stored %q, which no server of the herd answered to an IAMAT (a forged update)", n.name, at)
	}
	if prev := s.held[n.i][client]; prev != "" && newer(prev, at) {
		s.fail("newer wins", "%s replaced %q by the older %q", n.name, prev, at)
	}
	s.held[n.i][client] = at
	if s.inWindow {
		s.inWin[n.i][at] = true
	}
}

func (s *Sim) healLinks() {
	for _, lf := range s.links {
		lf.cut, lf.blackhole = 0, 0
		lf.latency, lf.jitter = 500*time.Microsecond, 500*time.Microsecond
	}
	for _, n := range s.nodes {
		n.placesSlow = 0
	}
}

// inject puts f in force.
func (s *Sim) inject(f Fault) {
	s.trace("inject %s", f)
	switch f.Kind {
	case Latency:
		lf := s.link(f.A, f.B)
		lf.latency, lf.jitter = f.Latency, f.Jitter
	case Cut:
		s.link(f.A, f.B).cut++
		s.resetLink(f.A, f.B, "cut")
	case BlackHole:
		s.link(f.A, f.B).blackhole++
	case Reset:
		s.resetLink(f.A, f.B, "reset")
	case Partition:
		group := map[string]int{}
		for i, g := range f.Groups {
			for _, x := range g {
				group[x] = i
			}
		}
		for _, l := range s.sched.Links {
			if group[l[0]] != group[l[1]] {
				s.link(l[0], l[1]).cut++
				s.link(l[1], l[0]).cut++
				s.resetLink(l[0], l[1], "partition")
				s.resetLink(l[1], l[0], "partition")
			}
		}
	case SlowPlaces:
		s.byName[f.A].placesSlow++
	case Pause:
		if n := s.byName[f.A]; n.up {
			n.pause()
		}
	case Crash, Restart:
		if n := s.byName[f.A]; n.up {
			n.crash()
			clear(s.held[n.i])
			if f.Kind == Restart {
				n.start()
			}
		}
	}
}

func (s *Sim) link(a, b string) *linkFaults {
	return s.links[[2]int{s.byName[a].i, s.byName[b].i}]
}

// resetLink resets the open connections a dialled to b.
func (s *Sim) resetLink(a, b, why string) {
	na, nb := s.byName[a], s.byName[b]
	for _, c := range na.conns {
		if c.d == na && c.l == nb && !c.closed {
			s.reset(c, why)
		}
	}
}

// heal ends every fault: crashed servers start, paused ones resume.
func (s *Sim) heal() {
	s.trace("heal all")
	s.healLinks()
	for _, n := range s.nodes {
		if !n.up {
			n.start()
		} else if n.paused {
			n.resume()
		}
	}
}

// usable reports whether updates can go from a to b now (the connection a dials to b).
func (s *Sim) usable(a, b *node) bool {
	lf := s.links[[2]int{a.i, b.i}]
	return a.up && !a.paused && b.up && !b.paused && lf.cut == 0 && lf.blackhole == 0
}

// distances is the latency bound of the fastest usable path from n to every server (-1:
// unreachable), Dijkstra over the herd's links.
func (s *Sim) distances(from *node) []time.Duration {
	d := make([]time.Duration, len(s.nodes))
	done := make([]bool, len(s.nodes))
	for i := range d {
		d[i] = -1
	}
	if !from.up || from.paused {
		return d
	}
	d[from.i] = 0
	for {
		u := -1
		for i := range d {
			if !done[i] && d[i] >= 0 && (u < 0 || d[i] < d[u]) {
				u = i
			}
		}
		if u < 0 {
			return d
		}
		done[u] = true
		for _, p := range s.nodes[u].order {
			v := s.byName[p]
			if !s.usable(s.nodes[u], v) {
				continue
			}
			lf := s.links[[2]int{u, v.i}]
			if w := d[u] + lf.latency + lf.jitter; d[v.i] < 0 || w < d[v.i] {
				d[v.i] = w
			}
		}
	}
}

// checkWindow checks, before the heal, every update acknowledged in the window: held by
// every server reachable from its origin (once its path had time), by none cut off.
func (s *Sim) checkWindow(end time.Duration) {
	for _, a := range s.acks {
		dist := s.distances(s.nodes[a.origin])
		for _, t := range s.nodes {
			if !t.up || t.i == a.origin {
				continue
			}
			if dist[t.i] < 0 {
				if s.inWin[t.i][a.at] {
					s.fail("nothing across a cut", "%s stored %q though no usable path leads there from %s", t.name, a.at, s.nodes[a.origin].name)
					return
				}
				continue
			}
			if a.when+dist[t.i]+Margin > end {
				continue // not judged: too late in the window
			}
			s.stats.Judged++
			r, _ := t.core.Lookup(a.client)
			if r.AT == "" || newer(a.at, r.AT) {
				s.fail("delivery", "%s holds %q for %s, not %q acknowledged by %s at %v (path bound %v)", t.name, r.AT, a.client, a.at, s.nodes[a.origin].name, a.when, dist[t.i])
				return
			}
		}
	}
}

// settle runs until every link is up and streaming over a sound connection and every
// server holds the same newest record per client, the newest any of them was seen
// holding; at most 30 simulated seconds.
func (s *Sim) settle() {
	deadline := s.now + 30*time.Second
	for s.failure == nil {
		s.runUntil(s.now + 100*time.Millisecond)
		if s.failure != nil {
			return
		}
		links, conv := s.settled(s.now >= deadline)
		if links == "" && conv == "" {
			s.trace("settled")
			return
		}
		if s.now >= deadline {
			if conv != "" {
				s.fail("convergence after heal", "%s", conv)
			} else {
				s.fail("links after heal", "%s", links)
			}
			return
		}
	}
}

// settled says what is not settled yet: a link, and a client's records (looked at only
// once the links are, or when all says so).
func (s *Sim) settled(all bool) (links, conv string) {
	for _, n := range s.nodes {
		for _, p := range n.order {
			d := n.dialers[p]
			if !d.up || d.c == nil || d.c.poisoned || d.c.closed || n.core.LinkState(p) != core.Streaming {
				links = fmt.Sprintf("link %s->%s is %v", n.name, p, n.core.LinkState(p))
				break
			}
		}
		if links != "" {
			break
		}
	}
	if links != "" && !all {
		return links, ""
	}
	want := map[string]string{}
	for i := range s.nodes {
		for c, at := range s.held[i] {
			if w, ok := want[c]; !ok || newer(at, w) {
				want[c] = at
			}
		}
	}
	for _, c := range slices.Sorted(maps.Keys(want)) {
		for _, n := range s.nodes {
			if r, _ := n.core.Lookup(c); r.AT != want[c] {
				return links, fmt.Sprintf("%s holds %q for %s, want %q (the newest a server that survived held)", n.name, r.AT, c, want[c])
			}
		}
	}
	return links, ""
}
