// Package chaos is the backend-neutral chaos framework: a Cluster over any way of running
// a herd (containers, local processes), a catalogue of faults, the oracle that says which
// servers an update must and must not reach, a history recorder and checkers.
package chaos

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// Places is the To of a server's Places link ("Goloman->places").
const Places = "places"

// Link is a directed link: From's updates to To travel on it (or From's Places requests,
// when To is Places). Every Link is its own Toxiproxy proxy.
type Link struct{ From, To string }

func (l Link) String() string { return l.From + "->" + l.To }

// ParseLinks reads "A->B" (one direction) or "A<->B" (both).
func ParseLinks(s string) ([]Link, error) {
	if a, b, ok := strings.Cut(s, "<->"); ok && a != "" && b != "" {
		return []Link{{a, b}, {b, a}}, nil
	}
	if a, b, ok := strings.Cut(s, "->"); ok && a != "" && b != "" && !strings.Contains(b, ">") {
		return []Link{{a, b}}, nil
	}
	return nil, fmt.Errorf("link %q: want A->B or A<->B", s)
}

// Toxic is a Toxiproxy toxic on a link. Stream "upstream" is the data the link's From
// sends (updates, requests); "downstream" is what comes back (heartbeats, answers).
type Toxic struct {
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Attributes map[string]int `json:"attributes"`
}

// LinkToxic is a toxic placed on one link.
type LinkToxic struct {
	Link  Link
	Toxic Toxic
}

// Effects are what a fault does, as data: the Cluster applies them (reference-counting
// shared ones, so composed faults heal independently) and the oracle reads them.
type Effects struct {
	Cut        []Link      // proxies disabled: nothing passes, connections closed
	Toxics     []LinkToxic // toxics added, named after the fault
	Crash      []string    // SIGKILLed until healed (heal starts them again)
	Stop       []string    // stopped gracefully (SIGTERM) until healed
	Pause      []string    // frozen until healed
	Restart    []string    // SIGKILLed and started again at once; nothing to heal
	PlacesFail string      // the Places emulator answers every request with this status
}

// Fault is one injectable fault: a small value with a name.
type Fault interface {
	String() string
	Effects(cfg topology.Config) (Effects, error)
}

func ms(d time.Duration) int { return int(d / time.Millisecond) }

func checkLinks(cfg topology.Config, links []Link) error {
	for _, l := range links {
		s := cfg.Server(l.From)
		if s == nil {
			return fmt.Errorf("link %s: no server %q", l, l.From)
		}
		if l.To == Places {
			continue
		}
		if _, ok := s.Peers[l.To]; !ok {
			return fmt.Errorf("link %s: %s and %s are not neighbours", l, l.From, l.To)
		}
	}
	return nil
}

func checkNode(cfg topology.Config, n string) error {
	if cfg.Server(n) == nil {
		return fmt.Errorf("no server %q (the herd has %s)", n, strings.Join(cfg.Names(), ", "))
	}
	return nil
}

func linkNames(links []Link) string {
	s := make([]string, len(links))
	for i, l := range links {
		s[i] = l.String()
	}
	return strings.Join(s, ",")
}

func toxicOn(cfg topology.Config, links []Link, t Toxic) (Effects, error) {
	if err := checkLinks(cfg, links); err != nil {
		return Effects{}, err
	}
	var e Effects
	for _, l := range links {
		e.Toxics = append(e.Toxics, LinkToxic{l, t})
	}
	return e, nil
}

func nodesOrAll(n []string) string {
	if len(n) == 0 {
		return "all"
	}
	return strings.Join(n, ",")
}

// PeerLinks are the topology's directed peer links: both directions of every link, in
// the order of cfg.Links.
func PeerLinks(cfg topology.Config) []Link {
	var out []Link
	for _, l := range cfg.Links() {
		out = append(out, Link{l[0], l[1]}, Link{l[1], l[0]})
	}
	return out
}

// AllLinks are the peer links and then every server's Places link: every proxy a
// backend runs.
func AllLinks(cfg topology.Config) []Link {
	out := PeerLinks(cfg)
	for _, n := range cfg.Names() {
		out = append(out, Link{n, Places})
	}
	return out
}

func placesLinks(cfg topology.Config, nodes []string) ([]Link, error) {
	if len(nodes) == 0 {
		nodes = cfg.Names()
	}
	var out []Link
	for _, n := range nodes {
		if err := checkNode(cfg, n); err != nil {
			return nil, err
		}
		out = append(out, Link{n, Places})
	}
	return out, nil
}

// Kind is one fault kind of type F, declared once, in a file of its own
// (fault_latency.go, ...), and registered from that file's init with Register, as
// Toxiproxy registers its toxics. Everything that lists kinds derives from the
// registry: FaultSpec.Fault, SpecOf, FaultKinds, KindNames, RandomSchedule's draw and
// herdctl's fault commands. What the fault means for the oracle is F's Effects.
type Kind[F Fault] struct {
	// Name is the kind in scenario files, the state file and the history ("slow_close");
	// F's String starts with it.
	Name string
	// Takes says which FaultSpec fields the kind takes (FaultKinds, herdctl's help).
	Takes string
	// Parse builds the fault from its data form, checking the parameters (not the
	// topology: Effects does).
	Parse func(FaultSpec) (F, error)
	// Spec is the data form of a fault (SpecOf fills in the Kind).
	Spec func(F) FaultSpec
	// Draw picks a fault of this kind for RandomSchedule. It may return one of another
	// kind when this one cannot be drawn (Draw.NoFreeNode). Nil exactly when NotDrawn.
	Draw func(*Draw) Fault
	// Slot is the kind's place in RandomSchedule's draw: each round that injects picks one
	// of the drawn kinds' slots, 0..n-1, uniformly. Changing a slot changes the schedule
	// of every seed.
	Slot int
	// NotDrawn says the kind is never drawn in random schedules.
	NotDrawn bool
	// Command is the kind's herdctl command.
	Command Command
}

// Command is how herdctl offers a kind: "herdctl NAME ARGS [flags]".
type Command struct {
	Name    string // "slow-close"
	Short   string // one line of help
	Example string // optional
	Args    Args
	Flags   []Flag   // spec fields given as flags
	Values  []string // completions of the argument, for ArgsStatus
}

// Args is the form of a herdctl fault command's arguments, and the FaultSpec field they
// fill.
type Args string

// The argument forms.
const (
	ArgsLinks   Args = "LINK..."        // one or more A->B or A<->B: Links
	ArgsServer  Args = "SERVER"         // exactly one server: Nodes
	ArgsServers Args = "[SERVER...]"    // any number of servers, none meaning all: Nodes
	ArgsGroups  Args = "GROUP GROUP..." // two or more groups A,B,C: Groups
	ArgsStatus  Args = "STATUS"         // one status: Status
)

// Flag is a FaultSpec field given as a herdctl flag named as the field is in scenario
// files (latency, jitter, after, delay: durations; rate, size, variation: numbers).
type Flag struct {
	Field    string
	Usage    string
	Duration time.Duration // the default of a duration field
	Int      int           // the default of a number field
}

// kind is a registered Kind with its type erased.
type kind struct {
	name, takes string
	parse       func(FaultSpec) (Fault, error)
	spec        func(Fault) FaultSpec
	draw        func(*Draw) Fault // nil: not drawn
	slot        int
	command     Command
}

var (
	kinds       = map[string]*kind{}       // by name
	kindsByType = map[reflect.Type]*kind{} // by the fault's type, for SpecOf
)

// Register adds a fault kind to the catalogue. It is meant for package init, and panics
// when the name or type is taken, a drawn kind's slot is taken, or a part is missing.
func Register[F Fault](k Kind[F]) {
	typ := reflect.TypeFor[F]()
	fail := func(what string) { panic(fmt.Sprintf("chaos: fault kind %q (%v): %s", k.Name, typ, what)) }
	switch {
	case k.Name == "":
		fail("no name")
	case typ.Kind() == reflect.Interface:
		fail("the type must be a concrete fault type")
	case k.Takes == "":
		fail("no Takes (the help line)")
	case k.Parse == nil:
		fail("no Parse (spec -> value)")
	case k.Spec == nil:
		fail("no Spec (value -> spec)")
	case k.Draw == nil && !k.NotDrawn:
		fail("no Draw: give a generator or say NotDrawn")
	case k.Draw != nil && k.NotDrawn:
		fail("both a Draw and NotDrawn")
	case k.NotDrawn && k.Slot != 0:
		fail("a Slot but NotDrawn")
	case k.Slot < 0:
		fail("a negative Slot")
	case k.Command.Name == "" || k.Command.Short == "" || k.Command.Args == "":
		fail("no herdctl Command (name, short help and args)")
	}
	if _, dup := kinds[k.Name]; dup {
		fail("registered twice")
	}
	if other, dup := kindsByType[typ]; dup {
		fail("type already registered as " + other.name)
	}
	for _, other := range kinds {
		if k.Draw != nil && other.draw != nil && other.slot == k.Slot {
			fail(fmt.Sprintf("draw slot %d already taken by %s", k.Slot, other.name))
		}
		if other.command.Name == k.Command.Name {
			fail("herdctl command " + k.Command.Name + " already taken by " + other.name)
		}
	}
	r := &kind{
		name:  k.Name,
		takes: k.Takes,
		parse: func(s FaultSpec) (Fault, error) {
			f, err := k.Parse(s)
			if err != nil {
				return nil, err
			}
			return f, nil
		},
		spec:    func(f Fault) FaultSpec { return k.Spec(f.(F)) },
		draw:    k.Draw,
		slot:    k.Slot,
		command: k.Command,
	}
	kinds[k.Name] = r
	kindsByType[typ] = r
	FaultKinds[k.Name] = k.Takes
}

// Commands are the herdctl commands of every kind, each with the kind's name, sorted by
// kind.
func Commands() []KindCommand {
	var out []KindCommand
	for _, name := range KindNames() {
		out = append(out, KindCommand{Kind: name, Command: kinds[name].command})
	}
	return out
}

// KindCommand is a kind's herdctl command and the kind it injects.
type KindCommand struct {
	Kind string
	Command
}

// drawnKinds are the kinds RandomSchedule draws, by slot; it panics when the slots are
// not 0..n-1 (a kind added with a slot past a gap).
func drawnKinds() []*kind {
	var out []*kind
	for _, k := range kinds {
		if k.draw != nil {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b *kind) int { return a.slot - b.slot })
	for i, k := range out {
		if k.slot != i {
			panic(fmt.Sprintf("chaos: fault kind %s has draw slot %d; the %d drawn kinds need slots 0..%d", k.name, k.slot, len(out), len(out)-1))
		}
	}
	return out
}

// Draw is what a kind's generator draws with: the schedule's random source and herd, and
// the servers that faults in force hold down.
type Draw struct {
	Rand   *rand.Rand
	Config topology.Config
	held   map[string]string // server -> label of the fault holding it down
}

// Link is a random direction of a random peer link.
func (d *Draw) Link() Link {
	links := d.Config.Links()
	l := links[d.Rand.IntN(len(links))]
	if d.Rand.IntN(2) == 0 {
		return Link{l[0], l[1]}
	}
	return Link{l[1], l[0]}
}

// Node is a random server.
func (d *Draw) Node() string {
	names := d.Config.Names()
	return names[d.Rand.IntN(len(names))]
}

// FreeNode is a random server that no fault in force holds down; false when at most one
// is left (a schedule keeps one up).
func (d *Draw) FreeNode() (string, bool) {
	var free []string
	for _, n := range d.Config.Names() {
		if d.held[n] == "" {
			free = append(free, n)
		}
	}
	if len(free) <= 1 {
		return "", false
	}
	return free[d.Rand.IntN(len(free))], true
}

// NoFreeNode is what a server fault draws when FreeNode has none: a cut of a random link.
func (d *Draw) NoFreeNode() Fault { return Cut{Links: []Link{d.Link()}} }
