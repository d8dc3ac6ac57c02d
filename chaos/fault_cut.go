package chaos

import (
	"slices"

	"github.com/herdchaos/herd/herd/topology"
)

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

func init() {
	Register(Kind[Cut]{
		Name:  "cut",
		Takes: "links (one direction each: A->B is a one-way cut)",
		Parse: func(s FaultSpec) (Cut, error) {
			links, err := s.links()
			return Cut{Links: links}, err
		},
		Spec: func(f Cut) FaultSpec { return FaultSpec{Links: linkStrings(f.Links)} },
		Slot: 4,
		Draw: func(d *Draw) Fault { return Cut{Links: []Link{d.Link()}} },
		Command: Command{
			Name:  "cut",
			Short: "Cut links (A->B is a one-way cut; A<->B both ways)",
			Args:  ArgsLinks,
		},
	})
}
