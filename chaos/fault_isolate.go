package chaos

import "github.com/herdchaos/herd/herd/topology"

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

func init() {
	Register(Kind[Isolate]{
		Name:  "isolate",
		Takes: "nodes (one)",
		Parse: func(s FaultSpec) (Isolate, error) {
			n, err := s.node()
			return Isolate{Node: n}, err
		},
		Spec: func(f Isolate) FaultSpec { return FaultSpec{Nodes: []string{f.Node}} },
		Slot: 6,
		Draw: func(d *Draw) Fault { return Isolate{Node: d.Node()} },
		Command: Command{
			Name:  "isolate",
			Short: "Cut every link into and out of a server",
			Args:  ArgsServer,
		},
	})
}
