package chaos

import "github.com/herdchaos/herd/herd/topology"

// PlacesDown cuts the Places link of each node (all when none are named).
type PlacesDown struct{ Nodes []string }

func (f PlacesDown) String() string { return "places_down " + nodesOrAll(f.Nodes) }

// Effects implements Fault.
func (f PlacesDown) Effects(cfg topology.Config) (Effects, error) {
	links, err := placesLinks(cfg, f.Nodes)
	return Effects{Cut: links}, err
}

func init() {
	Register(Kind[PlacesDown]{
		Name:  "places_down",
		Takes: "nodes (none: all)",
		Parse: func(s FaultSpec) (PlacesDown, error) { return PlacesDown{Nodes: s.Nodes}, nil },
		Spec:  func(f PlacesDown) FaultSpec { return FaultSpec{Nodes: f.Nodes} },
		Slot:  11,
		Draw:  func(d *Draw) Fault { return PlacesDown{Nodes: []string{d.Node()}} },
		Command: Command{
			Name:  "places-down",
			Short: "Cut the Places upstream of some servers (all when none are named)",
			Args:  ArgsServers,
		},
	})
}
