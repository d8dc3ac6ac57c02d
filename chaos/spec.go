package chaos

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
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
	// Variation is the slicer's size variation in bytes, less than its size.
	Variation int    `yaml:"variation,omitempty" json:"variation,omitempty"`
	Status    string `yaml:"status,omitempty" json:"status,omitempty"`
}

// FaultKinds are the kinds a FaultSpec can have, with what each takes: filled in by
// Register, one entry per registered kind.
var FaultKinds = map[string]string{}

// KindNames lists the kinds, sorted.
func KindNames() []string {
	return slices.Sorted(maps.Keys(FaultKinds))
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

// Fault builds the fault, by its kind's Parse. It checks the parameters, not the
// topology (Effects does).
func (s FaultSpec) Fault() (Fault, error) {
	if s.Kind == "" {
		return nil, fmt.Errorf("a fault needs a kind (one of %s)", strings.Join(KindNames(), ", "))
	}
	k := kinds[s.Kind]
	if k == nil {
		return nil, fmt.Errorf("unknown fault kind %q (one of %s)", s.Kind, strings.Join(KindNames(), ", "))
	}
	return k.parse(s)
}

// positive is the error of a kind whose duration what must be positive.
func (s FaultSpec) positive(what string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s needs a positive %s", s.Kind, what)
	}
	return nil
}

func linkStrings(links []Link) []string {
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = l.String()
	}
	return out
}

// SpecOf is the data form of a fault, by its kind's Spec. It panics for a fault of no
// registered kind.
func SpecOf(f Fault) FaultSpec {
	k := kindsByType[reflect.TypeOf(f)]
	if k == nil {
		panic(fmt.Sprintf("chaos: SpecOf(%T): a fault without a data form", f))
	}
	s := k.spec(f)
	s.Kind = k.name
	return s
}
