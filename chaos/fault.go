// Package chaos is the backend-neutral chaos framework: a Cluster over any way of running
// a herd (containers, local processes), a catalogue of faults, the oracle that says which
// servers an update must and must not reach, a history recorder and checkers.
package chaos

import (
	"fmt"
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

// Latency delays what each link carries by Latency ± Jitter.
type Latency struct {
	Links           []Link
	Latency, Jitter time.Duration
}

func (f Latency) String() string {
	return fmt.Sprintf("latency %s %v±%v", linkNames(f.Links), f.Latency, f.Jitter)
}

// Effects implements Fault.
func (f Latency) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"latency", "upstream", map[string]int{"latency": ms(f.Latency), "jitter": ms(f.Jitter)}})
}

// Bandwidth limits each link to KBps kilobytes per second.
type Bandwidth struct {
	Links []Link
	KBps  int
}

func (f Bandwidth) String() string {
	return fmt.Sprintf("bandwidth %s %dKB/s", linkNames(f.Links), f.KBps)
}

// Effects implements Fault.
func (f Bandwidth) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"bandwidth", "upstream", map[string]int{"rate": f.KBps}})
}

// Slicer cuts what each link carries into pieces of about AverageBytes, Delay apart.
type Slicer struct {
	Links         []Link
	AverageBytes  int
	SizeVariation int
	Delay         time.Duration
}

func (f Slicer) String() string {
	return fmt.Sprintf("slicer %s %dB/%v", linkNames(f.Links), f.AverageBytes, f.Delay)
}

// Effects implements Fault.
func (f Slicer) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"slicer", "upstream", map[string]int{
		"average_size": f.AverageBytes, "size_variation": f.SizeVariation, "delay": int(f.Delay / time.Microsecond)}})
}

// SlowClose delays the closing of each link's connections.
type SlowClose struct {
	Links []Link
	Delay time.Duration
}

func (f SlowClose) String() string {
	return fmt.Sprintf("slow_close %s %v", linkNames(f.Links), f.Delay)
}

// Effects implements Fault.
func (f SlowClose) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"slow_close", "upstream", map[string]int{"delay": ms(f.Delay)}})
}

// ResetPeer resets each link's connections After their start (TCP RST).
type ResetPeer struct {
	Links []Link
	After time.Duration
}

func (f ResetPeer) String() string {
	return fmt.Sprintf("reset_peer %s after %v", linkNames(f.Links), f.After)
}

// Effects implements Fault.
func (f ResetPeer) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"reset_peer", "upstream", map[string]int{"timeout": ms(f.After)}})
}

// BlackHole keeps each link's connections open but drops everything, both ways.
type BlackHole struct{ Links []Link }

func (f BlackHole) String() string { return "black_hole " + linkNames(f.Links) }

// Effects implements Fault.
func (f BlackHole) Effects(cfg topology.Config) (Effects, error) {
	e, err := toxicOn(cfg, f.Links, Toxic{"timeout", "upstream", map[string]int{"timeout": 0}})
	if err != nil {
		return e, err
	}
	for _, l := range f.Links {
		e.Toxics = append(e.Toxics, LinkToxic{l, Toxic{"timeout", "downstream", map[string]int{"timeout": 0}}})
	}
	return e, nil
}

// Cut disables links (one direction each: a one-way cut when only A->B is listed).
type Cut struct{ Links []Link }

func (f Cut) String() string { return "cut " + linkNames(f.Links) }

// Effects implements Fault.
func (f Cut) Effects(cfg topology.Config) (Effects, error) {
	if err := checkLinks(cfg, f.Links); err != nil {
		return Effects{}, err
	}
	return Effects{Cut: slices.Clone(f.Links)}, nil
}

// Partition cuts every link between servers of different groups. Servers in no group
// form a group of their own.
type Partition struct{ Groups [][]string }

func (f Partition) String() string {
	var g []string
	for _, grp := range f.Groups {
		g = append(g, strings.Join(grp, ","))
	}
	return "partition " + strings.Join(g, " | ")
}

// Effects implements Fault.
func (f Partition) Effects(cfg topology.Config) (Effects, error) {
	group := map[string]int{}
	for i, grp := range f.Groups {
		for _, n := range grp {
			if err := checkNode(cfg, n); err != nil {
				return Effects{}, err
			}
			if _, dup := group[n]; dup {
				return Effects{}, fmt.Errorf("partition: %s is in two groups", n)
			}
			group[n] = i
		}
	}
	for _, n := range cfg.Names() {
		if _, ok := group[n]; !ok {
			group[n] = -1
		}
	}
	var e Effects
	for _, l := range cfg.Links() {
		if group[l[0]] != group[l[1]] {
			e.Cut = append(e.Cut, Link{l[0], l[1]}, Link{l[1], l[0]})
		}
	}
	return e, nil
}

// Isolate cuts every link into and out of a server (its Places link stays).
type Isolate struct{ Node string }

func (f Isolate) String() string { return "isolate " + f.Node }

// Effects implements Fault.
func (f Isolate) Effects(cfg topology.Config) (Effects, error) {
	if err := checkNode(cfg, f.Node); err != nil {
		return Effects{}, err
	}
	var e Effects
	for _, p := range cfg.Server(f.Node).Neighbours() {
		e.Cut = append(e.Cut, Link{f.Node, p}, Link{p, f.Node})
	}
	return e, nil
}

// Crash SIGKILLs a server; healing starts it again (with no state: it must resync).
type Crash struct{ Node string }

func (f Crash) String() string { return "crash " + f.Node }

// Effects implements Fault.
func (f Crash) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Crash: []string{f.Node}}, checkNode(cfg, f.Node)
}

// Stop stops a server gracefully (SIGTERM); healing starts it again.
type Stop struct{ Node string }

func (f Stop) String() string { return "stop " + f.Node }

// Effects implements Fault.
func (f Stop) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Stop: []string{f.Node}}, checkNode(cfg, f.Node)
}

// Pause freezes a server (SIGSTOP, docker pause); healing resumes it.
type Pause struct{ Node string }

func (f Pause) String() string { return "pause " + f.Node }

// Effects implements Fault.
func (f Pause) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Pause: []string{f.Node}}, checkNode(cfg, f.Node)
}

// Restart SIGKILLs a server and starts it again at once.
type Restart struct{ Node string }

func (f Restart) String() string { return "restart " + f.Node }

// Effects implements Fault.
func (f Restart) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Restart: []string{f.Node}}, checkNode(cfg, f.Node)
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

// PlacesSlow delays the Places link of each node (all when none are named).
type PlacesSlow struct {
	Nodes   []string
	Latency time.Duration
}

func (f PlacesSlow) String() string {
	return fmt.Sprintf("places_slow %s %v", nodesOrAll(f.Nodes), f.Latency)
}

// Effects implements Fault.
func (f PlacesSlow) Effects(cfg topology.Config) (Effects, error) {
	links, err := placesLinks(cfg, f.Nodes)
	if err != nil {
		return Effects{}, err
	}
	return toxicOn(cfg, links, Toxic{"latency", "downstream", map[string]int{"latency": ms(f.Latency)}})
}

// PlacesDown cuts the Places link of each node (all when none are named).
type PlacesDown struct{ Nodes []string }

func (f PlacesDown) String() string { return "places_down " + nodesOrAll(f.Nodes) }

// Effects implements Fault.
func (f PlacesDown) Effects(cfg topology.Config) (Effects, error) {
	links, err := placesLinks(cfg, f.Nodes)
	return Effects{Cut: links}, err
}

// PlacesError makes the Places upstream answer every request with Status (an API status
// such as OVER_QUERY_LIMIT, or HTTP500).
type PlacesError struct{ Status string }

func (f PlacesError) String() string { return "places_error " + f.Status }

// Effects implements Fault.
func (f PlacesError) Effects(topology.Config) (Effects, error) {
	if f.Status == "" {
		return Effects{}, fmt.Errorf("places_error needs a status")
	}
	return Effects{PlacesFail: f.Status}, nil
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
