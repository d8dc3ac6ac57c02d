// Package sim is a deterministic simulator of the herd protocol: N servers, each the real
// herd/core Node driven by a small runtime that does in simulated time what herd/server
// does with sockets and the wall clock (dial with backoff, handshake with the typed
// herd/proto messages, the link loop Take/write/Advance, pings and Tick, liveness,
// redial, the peer secret's handshake), over a simulated network (ordered streams per
// connection, latency and jitter, one-way cuts, partitions, black holes, resets, pauses,
// crashes, restarts, clock skew, slow Places). Clients send whole lines, valid and
// hostile, answered through herd/proto, herd/core and herd/places as herd/server answers
// them (clients.go, lines.go) and judged by the simulator's own reading of the protocol
// (oracle.go). One seed drives everything: the same seed gives the same run, event for
// event.
//
// A run is a Schedule: phases, each some faults in force for a window with client
// operations during it, then heal and settle, then the properties are checked (see
// sim.go). A Schedule is data, so a failing one can be shrunk (shrink.go).
package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/topology"
)

// FaultKind names a fault the simulated network or a server suffers.
type FaultKind string

// The faults. A link fault names A and B: the connection A dials to B (which carries
// A's updates to B; both directions of that connection suffer it). Every fault of a phase
// is healed at the end of its window.
const (
	Latency   FaultKind = "latency"   // A->B: Latency plus up to Jitter per line
	Cut       FaultKind = "cut"       // A->B: its connection reset, new dials refused
	BlackHole FaultKind = "blackhole" // A->B: bytes vanish (no RST); new dials time out
	Reset     FaultKind = "reset"     // A->B: its connection reset, once
	Partition FaultKind = "partition" // Groups: every link between groups cut both ways
	Pause     FaultKind = "pause"     // A: processes nothing; its inputs queue
	Crash     FaultKind = "crash"     // A: killed, all state lost; heal restarts it
	Restart   FaultKind = "restart"   // A: killed and started again at once
	// A: its Places requests take longer than PlacesTimeout (WHATSATs answer the
	// timeout's error JSON).
	SlowPlaces FaultKind = "slowplaces"
)

// Fault is one fault of a phase.
type Fault struct {
	Kind    FaultKind
	A, B    string
	Groups  [][]string    `json:",omitempty"`
	Latency time.Duration `json:",omitempty"`
	Jitter  time.Duration `json:",omitempty"`
}

func (f Fault) String() string {
	switch f.Kind {
	case Latency:
		return fmt.Sprintf("latency %s->%s %v+%v", f.A, f.B, f.Latency, f.Jitter)
	case Cut, BlackHole, Reset:
		return fmt.Sprintf("%s %s->%s", f.Kind, f.A, f.B)
	case Partition:
		var g []string
		for _, x := range f.Groups {
			g = append(g, strings.Join(x, ","))
		}
		return "partition " + strings.Join(g, " | ")
	}
	return fmt.Sprintf("%s %s", f.Kind, f.A)
}

// Op is a client operation at Offset into its phase: a connection to Server that sends
// an IAMAT (Location and Time as the client sends them), or with Read a WHATSAT (Radius
// and Bound as sent, "10" and "5" when empty), or any bytes at all (Line: hostile and
// odd lines, several lines, a last one without "\n"), then half-closes.
type Op struct {
	Offset time.Duration
	Server string
	Client string
	Read   bool `json:",omitempty"`
	// Forge, when set, names a neighbour of Server: a man in the middle puts an update
	// from outside the herd on that neighbour's connection to Server.
	Forge    string `json:",omitempty"`
	Location string `json:",omitempty"`
	Time     string `json:",omitempty"`
	Radius   string `json:",omitempty"`
	Bound    string `json:",omitempty"`
	Line     string `json:",omitempty"`
}

// Bytes is what the client sends.
func (o Op) Bytes() string {
	switch {
	case o.Line != "":
		return o.Line
	case o.Read:
		radius, bound := o.Radius, o.Bound
		if radius == "" {
			radius = "10"
		}
		if bound == "" {
			bound = "5"
		}
		return "WHATSAT " + o.Client + " " + radius + " " + bound + "\n"
	}
	return "IAMAT " + o.Client + " " + o.Location + " " + o.Time + "\n"
}

func (o Op) String() string {
	switch {
	case o.Forge != "":
		return fmt.Sprintf("+%v forged update for %s on %s->%s", o.Offset, o.Client, o.Forge, o.Server)
	case o.Line != "":
		return fmt.Sprintf("+%v %q (%d bytes) at %s", o.Offset, short(o.Line), len(o.Line), o.Server)
	}
	return fmt.Sprintf("+%v %s at %s", o.Offset, strings.TrimSuffix(o.Bytes(), "\n"), o.Server)
}

// Phase is faults in force for Window, the client operations during it; then every fault
// is healed, the herd settles and the properties are checked.
type Phase struct {
	Faults []Fault
	Ops    []Op
	Window time.Duration
}

// Schedule is a whole run: the herd, its parameters and its phases.
type Schedule struct {
	Seed     uint64
	Servers  []string
	Links    [][2]string
	QueueLen int // each link's queue bound (small, so overflows happen)
	Window   int // each connection direction's bytes in flight before a write blocks
	Skew     []time.Duration
	// Secret: the herd has a peer secret (proven handshakes replace live links; a
	// forged line fails the MAC).
	Secret bool `json:",omitempty"`
	// PlacesAPI is the API whose JSON the simulated Places answers with: "legacy" or
	// "new".
	PlacesAPI string
	Phases    []Phase
}

// Faults counts the faults of the schedule.
func (s *Schedule) Faults() int {
	n := 0
	for _, p := range s.Phases {
		n += len(p.Faults)
	}
	return n
}

// Ops counts the client operations of the schedule.
func (s *Schedule) Ops() int {
	n := 0
	for _, p := range s.Phases {
		n += len(p.Ops)
	}
	return n
}

// String lists the schedule, a phase a line.
func (s *Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d servers, links %v, queue %d, window %d bytes, secret %v, Places API %s\n", s.Seed, len(s.Servers), s.Links, s.QueueLen, s.Window, s.Secret, s.PlacesAPI)
	for i, p := range s.Phases {
		var fs []string
		for _, f := range p.Faults {
			fs = append(fs, f.String())
		}
		fmt.Fprintf(&b, "phase %d (%v): faults [%s]\n", i, p.Window, strings.Join(fs, "; "))
		for _, o := range p.Ops {
			fmt.Fprintf(&b, "  %s\n", o)
		}
	}
	return b.String()
}

// Timing of a phase: operations come after OpsFrom (links reset at the phase's start are
// back by then) and are judged for delivery when Margin plus the path's latency is left
// of the window.
const (
	OpsFrom    = 1500 * time.Millisecond
	Margin     = 1000 * time.Millisecond
	MinSimTime = 60 * time.Second
	MinFaults  = 20
	maxLatency = 150 * time.Millisecond
	maxJitter  = 30 * time.Millisecond
)

// Generate draws the schedule of seed: the default five servers, or for every tenth
// seed a random connected herd of 3 to 25; phases until at least MinFaults faults and
// MinSimTime of simulated time (estimated).
func Generate(seed uint64) *Schedule {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	fr := rand.New(rand.NewPCG(seed, 0xf0e)) // forged updates
	// Client lines, WHATSATs' radius and bound, slow Places, the secret and the API.
	lr := rand.New(rand.NewPCG(seed, 0x11e5))
	s := &Schedule{Seed: seed, Secret: lr.IntN(3) == 0, PlacesAPI: places.APILegacy}
	if lr.IntN(4) == 0 {
		s.PlacesAPI = places.APINew
	}
	if seed%10 == 0 {
		s.Servers, s.Links = randomTopology(r)
	} else {
		cfg := topology.Default("127.0.0.1")
		s.Servers, s.Links = cfg.Names(), cfg.Links()
	}
	s.QueueLen = 1 << r.IntN(7) // 1 to 64
	s.Window = 1024 << r.IntN(6)
	for range s.Servers {
		// Constant offsets, up to a day either way.
		s.Skew = append(s.Skew, time.Duration(r.Int64N(int64(48*time.Hour)))-24*time.Hour)
	}
	clients := 2 + r.IntN(10)
	var span time.Duration
	for s.Faults() < MinFaults || span < MinSimTime {
		p := Phase{Window: 3*time.Second + time.Duration(r.Int64N(int64(2*time.Second)))}
		nf := 0
		if r.IntN(5) != 0 { // one phase in five is calm
			nf = 1 + r.IntN(3)
		}
		for range nf {
			p.Faults = append(p.Faults, randomFault(r, s))
		}
		nops := 1 + r.IntN(10)
		for range nops {
			p.Ops = append(p.Ops, randomOp(r, s, clients, p.Window))
		}
		if r.IntN(3) == 0 { // a burst: many clients at one server at once
			o := randomOp(r, s, clients, p.Window)
			for i := range 10 + r.IntN(40) {
				p.Ops = append(p.Ops, Op{Offset: o.Offset + time.Duration(i)*time.Microsecond, Server: o.Server,
					Client: fmt.Sprintf("b%d", i), Location: randomLocation(r), Time: randomTime(r)})
			}
		}
		if r.IntN(4) == 0 { // equal times at two servers
			o := randomOp(r, s, clients, p.Window)
			o.Read = false
			if o.Location == "" {
				o.Location, o.Time = randomLocation(r), randomTime(r)
			}
			o2 := o
			o2.Server = s.Servers[r.IntN(len(s.Servers))]
			p.Ops = append(p.Ops, o, o2)
		}
		if fr.IntN(4) == 0 {
			l := s.Links[fr.IntN(len(s.Links))]
			p.Ops = append(p.Ops, Op{Offset: OpsFrom + time.Duration(fr.Int64N(int64(p.Window-OpsFrom))),
				Server: l[0], Forge: l[1], Client: fmt.Sprintf("forged%d", fr.IntN(3))})
		}
		for i := range p.Ops {
			if p.Ops[i].Read {
				p.Ops[i].Radius, p.Ops[i].Bound = randomRadius(lr), randomBound(lr)
			}
		}
		for range lr.IntN(5) {
			p.Ops = append(p.Ops, Op{Offset: OpsFrom + time.Duration(lr.Int64N(int64(p.Window-OpsFrom))),
				Server: s.Servers[lr.IntN(len(s.Servers))], Line: randomLines(lr, clients)})
		}
		if lr.IntN(6) == 0 {
			p.Faults = append(p.Faults, Fault{Kind: SlowPlaces, A: s.Servers[lr.IntN(len(s.Servers))]})
		}
		slices.SortStableFunc(p.Ops, func(a, b Op) int { return int(a.Offset - b.Offset) })
		s.Phases = append(s.Phases, p)
		span += p.Window
	}
	return s
}

func randomTopology(r *rand.Rand) ([]string, [][2]string) {
	n := 3 + r.IntN(23)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("S%02d", i)
	}
	has := map[[2]int]bool{}
	var links [][2]string
	add := func(a, b int) {
		if a > b {
			a, b = b, a
		}
		if a == b || has[[2]int{a, b}] {
			return
		}
		has[[2]int{a, b}] = true
		links = append(links, [2]string{names[a], names[b]})
	}
	for i := 1; i < n; i++ { // a random spanning tree: connected
		add(i, r.IntN(i))
	}
	for range r.IntN(n) { // and some more links
		add(r.IntN(n), r.IntN(n))
	}
	return names, links
}

func randomFault(r *rand.Rand, s *Schedule) Fault {
	l := s.Links[r.IntN(len(s.Links))]
	a, b := l[0], l[1]
	if r.IntN(2) == 0 {
		a, b = b, a
	}
	x := s.Servers[r.IntN(len(s.Servers))]
	switch r.IntN(9) {
	case 0:
		return Fault{Kind: Latency, A: a, B: b, Latency: time.Duration(r.Int64N(int64(maxLatency))), Jitter: time.Duration(r.Int64N(int64(maxJitter)))}
	case 1:
		return Fault{Kind: Cut, A: a, B: b}
	case 2:
		return Fault{Kind: BlackHole, A: a, B: b}
	case 3:
		return Fault{Kind: Reset, A: a, B: b}
	case 4:
		var g [2][]string
		for _, n := range s.Servers {
			i := r.IntN(2)
			g[i] = append(g[i], n)
		}
		return Fault{Kind: Partition, Groups: [][]string{g[0], g[1]}}
	case 5:
		return Fault{Kind: Pause, A: x}
	case 6:
		return Fault{Kind: Crash, A: x}
	case 7:
		return Fault{Kind: Restart, A: x}
	}
	return Fault{Kind: Partition, Groups: [][]string{{x}, without(s.Servers, x)}} // isolate
}

func without(names []string, x string) []string {
	var out []string
	for _, n := range names {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}

func randomOp(r *rand.Rand, s *Schedule, clients int, window time.Duration) Op {
	o := Op{
		Offset: OpsFrom + time.Duration(r.Int64N(int64(window-OpsFrom))),
		Server: s.Servers[r.IntN(len(s.Servers))],
		Client: fmt.Sprintf("c%d", r.IntN(clients)),
	}
	if r.IntN(4) == 0 {
		o.Read = true
		return o
	}
	o.Location, o.Time = randomLocation(r), randomTime(r)
	return o
}

func randomLocation(r *rand.Rand) string {
	return fmt.Sprintf("%+.6f%+.6f", r.Float64()*180-90, r.Float64()*360-180)
}

// randomTime draws a client time from the whole valid space: now-ish with nine digits,
// negative, huge, ten fraction digits, integers, a plus sign, few distinct values (so
// equal times happen).
func randomTime(r *rand.Rand) string {
	switch r.IntN(8) {
	case 6:
		return fmt.Sprintf("1795900000.123456%04d", r.IntN(10000)) // equal to the microsecond
	case 0:
		return fmt.Sprintf("-%d.%d", r.IntN(1000), r.IntN(10))
	case 1:
		return fmt.Sprintf("%d%018d.%010d", 1+r.IntN(9), r.Int64N(1e18), r.Int64N(1e10))
	case 2:
		return fmt.Sprintf("1795900%03d.%010d", r.IntN(1000), r.Int64N(1e10))
	case 3:
		return fmt.Sprintf("+%d", r.IntN(5))
	case 4:
		return fmt.Sprintf("%d.%d", r.IntN(3), r.IntN(3)) // few values: ties
	}
	return fmt.Sprintf("1795900%03d.%09d", r.IntN(1000), r.Int64N(1e9))
}
