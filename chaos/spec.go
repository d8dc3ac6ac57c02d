package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// FaultSpec is a fault as data, in the form scenario files, herdctl and its state file
// use: a kind and the parameters that kind takes.
//
//	{kind: latency, links: ["Goloman<->Hands"], latency: 100ms, jitter: 20ms}
//	{kind: partition, groups: [[Goloman, Hands, Wilkes], [Holiday, Welsh]]}
//	{kind: crash, nodes: [Welsh]}
type FaultSpec struct {
	Kind    string        `yaml:"kind" json:"kind"`
	Links   []string      `yaml:"links,omitempty" json:"links,omitempty"` // "A->B" or "A<->B"
	Nodes   []string      `yaml:"nodes,omitempty" json:"nodes,omitempty"`
	Groups  [][]string    `yaml:"groups,omitempty" json:"groups,omitempty"`
	Latency time.Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
	Jitter  time.Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	After   time.Duration `yaml:"after,omitempty" json:"after,omitempty"` // reset_peer
	Delay   time.Duration `yaml:"delay,omitempty" json:"delay,omitempty"` // slicer, slow_close
	Rate    int           `yaml:"rate,omitempty" json:"rate,omitempty"`   // bandwidth, KB/s
	Size    int           `yaml:"size,omitempty" json:"size,omitempty"`   // slicer average bytes
	Status  string        `yaml:"status,omitempty" json:"status,omitempty"`
}

// FaultKinds are the kinds a FaultSpec can have, with what each takes.
var FaultKinds = map[string]string{
	"latency":      "links, latency, jitter",
	"bandwidth":    "links, rate (KB/s)",
	"slicer":       "links, size (bytes), delay",
	"slow_close":   "links, delay",
	"reset_peer":   "links, after",
	"black_hole":   "links",
	"cut":          "links (one direction each: A->B is a one-way cut)",
	"partition":    "groups",
	"isolate":      "nodes (one)",
	"crash":        "nodes (one)",
	"stop":         "nodes (one)",
	"pause":        "nodes (one)",
	"restart":      "nodes (one)",
	"places_slow":  "nodes (none: all), latency",
	"places_down":  "nodes (none: all)",
	"places_error": "status (an API status or HTTP500)",
}

// KindNames lists the kinds, sorted.
func KindNames() []string {
	out := make([]string, 0, len(FaultKinds))
	for k := range FaultKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s FaultSpec) links() ([]Link, error) {
	if len(s.Links) == 0 {
		return nil, fmt.Errorf("%s needs links", s.Kind)
	}
	var out []Link
	for _, l := range s.Links {
		ls, err := ParseLinks(l)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

func (s FaultSpec) node() (string, error) {
	if len(s.Nodes) != 1 {
		return "", fmt.Errorf("%s takes exactly one node, got %d", s.Kind, len(s.Nodes))
	}
	return s.Nodes[0], nil
}

// Fault builds the fault. It checks the parameters, not the topology (Effects does).
func (s FaultSpec) Fault() (Fault, error) {
	positive := func(what string, d time.Duration) error {
		if d <= 0 {
			return fmt.Errorf("%s needs a positive %s", s.Kind, what)
		}
		return nil
	}
	switch s.Kind {
	case "latency", "bandwidth", "slicer", "slow_close", "reset_peer", "black_hole", "cut":
		links, err := s.links()
		if err != nil {
			return nil, err
		}
		switch s.Kind {
		case "latency":
			if err := positive("latency", s.Latency); err != nil {
				return nil, err
			}
			if s.Jitter < 0 || s.Jitter > s.Latency {
				return nil, fmt.Errorf("latency: jitter must be within [0, latency]")
			}
			return Latency{Links: links, Latency: s.Latency, Jitter: s.Jitter}, nil
		case "bandwidth":
			if s.Rate <= 0 {
				return nil, fmt.Errorf("bandwidth needs a positive rate (KB/s)")
			}
			return Bandwidth{Links: links, KBps: s.Rate}, nil
		case "slicer":
			size := s.Size
			if size <= 0 {
				size = 1
			}
			return Slicer{Links: links, AverageBytes: size, Delay: s.Delay}, nil
		case "slow_close":
			return SlowClose{Links: links, Delay: s.Delay}, positive("delay", s.Delay)
		case "reset_peer":
			return ResetPeer{Links: links, After: s.After}, nil
		case "black_hole":
			return BlackHole{Links: links}, nil
		default:
			return Cut{Links: links}, nil
		}
	case "partition":
		if len(s.Groups) < 2 {
			return nil, fmt.Errorf("partition needs at least two groups")
		}
		return Partition{Groups: s.Groups}, nil
	case "isolate", "crash", "stop", "pause", "restart":
		n, err := s.node()
		if err != nil {
			return nil, err
		}
		switch s.Kind {
		case "isolate":
			return Isolate{Node: n}, nil
		case "crash":
			return Crash{Node: n}, nil
		case "stop":
			return Stop{Node: n}, nil
		case "pause":
			return Pause{Node: n}, nil
		default:
			return Restart{Node: n}, nil
		}
	case "places_slow":
		return PlacesSlow{Nodes: s.Nodes, Latency: s.Latency}, positive("latency", s.Latency)
	case "places_down":
		return PlacesDown{Nodes: s.Nodes}, nil
	case "places_error":
		return PlacesError{Status: s.Status}, nil
	case "":
		return nil, fmt.Errorf("a fault needs a kind (one of %s)", strings.Join(KindNames(), ", "))
	}
	return nil, fmt.Errorf("unknown fault kind %q (one of %s)", s.Kind, strings.Join(KindNames(), ", "))
}

func linkStrings(links []Link) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.String()
	}
	return out
}

// SpecOf is the data form of a fault.
func SpecOf(f Fault) FaultSpec {
	switch f := f.(type) {
	case Latency:
		return FaultSpec{Kind: "latency", Links: linkStrings(f.Links), Latency: f.Latency, Jitter: f.Jitter}
	case Bandwidth:
		return FaultSpec{Kind: "bandwidth", Links: linkStrings(f.Links), Rate: f.KBps}
	case Slicer:
		return FaultSpec{Kind: "slicer", Links: linkStrings(f.Links), Size: f.AverageBytes, Delay: f.Delay}
	case SlowClose:
		return FaultSpec{Kind: "slow_close", Links: linkStrings(f.Links), Delay: f.Delay}
	case ResetPeer:
		return FaultSpec{Kind: "reset_peer", Links: linkStrings(f.Links), After: f.After}
	case BlackHole:
		return FaultSpec{Kind: "black_hole", Links: linkStrings(f.Links)}
	case Cut:
		return FaultSpec{Kind: "cut", Links: linkStrings(f.Links)}
	case Partition:
		return FaultSpec{Kind: "partition", Groups: f.Groups}
	case Isolate:
		return FaultSpec{Kind: "isolate", Nodes: []string{f.Node}}
	case Crash:
		return FaultSpec{Kind: "crash", Nodes: []string{f.Node}}
	case Stop:
		return FaultSpec{Kind: "stop", Nodes: []string{f.Node}}
	case Pause:
		return FaultSpec{Kind: "pause", Nodes: []string{f.Node}}
	case Restart:
		return FaultSpec{Kind: "restart", Nodes: []string{f.Node}}
	case PlacesSlow:
		return FaultSpec{Kind: "places_slow", Nodes: f.Nodes, Latency: f.Latency}
	case PlacesDown:
		return FaultSpec{Kind: "places_down", Nodes: f.Nodes}
	case PlacesError:
		return FaultSpec{Kind: "places_error", Status: f.Status}
	}
	panic(fmt.Sprintf("chaos: SpecOf(%T): a fault without a data form", f))
}
