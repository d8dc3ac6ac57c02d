package chaos

import (
	"fmt"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

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

func init() {
	Register(Kind[PlacesSlow]{
		Name:  "places_slow",
		Takes: "nodes (none: all), latency",
		Parse: func(s FaultSpec) (PlacesSlow, error) {
			return PlacesSlow{Nodes: s.Nodes, Latency: s.Latency}, s.positive("latency", s.Latency)
		},
		Spec: func(f PlacesSlow) FaultSpec { return FaultSpec{Nodes: f.Nodes, Latency: f.Latency} },
		Slot: 10,
		Draw: func(d *Draw) Fault {
			return PlacesSlow{Latency: time.Duration(100+d.Rand.IntN(400)) * time.Millisecond}
		},
		Command: Command{
			Name:  "places-slow",
			Short: "Delay the Places upstream of some servers (all when none are named)",
			Args:  ArgsServers,
			Flags: []Flag{{Field: "latency", Usage: "added delay", Duration: 5 * time.Second}},
		},
	})
}
