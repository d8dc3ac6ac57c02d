package chaos

import "github.com/herdchaos/herd/herd/topology"

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

func init() {
	Register(Kind[BlackHole]{
		Name:  "black_hole",
		Takes: "links",
		Parse: func(s FaultSpec) (BlackHole, error) {
			links, err := s.links()
			return BlackHole{Links: links}, err
		},
		Spec: func(f BlackHole) FaultSpec { return FaultSpec{Links: linkStrings(f.Links)} },
		Slot: 3,
		Draw: func(d *Draw) Fault { return BlackHole{Links: []Link{d.Link()}} },
		Command: Command{
			Name:  "blackhole",
			Short: "Keep links' connections open but drop everything, both ways",
			Args:  ArgsLinks,
		},
	})
}
