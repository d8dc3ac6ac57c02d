package chaos

import "github.com/herdchaos/herd/herd/topology"

// Stop stops a server gracefully (SIGTERM); healing starts it again.
type Stop struct{ Node string }

func (f Stop) String() string { return "stop " + f.Node }

// Effects implements Fault.
func (f Stop) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Stop: []string{f.Node}}, checkNode(cfg, f.Node)
}

func init() {
	Register(Kind[Stop]{
		Name:  "stop",
		Takes: "nodes (one)",
		Parse: func(s FaultSpec) (Stop, error) {
			n, err := s.node()
			return Stop{Node: n}, err
		},
		Spec: func(f Stop) FaultSpec { return FaultSpec{Nodes: []string{f.Node}} },
		Slot: 12,
		Draw: func(d *Draw) Fault {
			n, ok := d.FreeNode()
			if !ok {
				return d.NoFreeNode()
			}
			return Stop{Node: n}
		},
		Command: Command{
			Name:  "stop",
			Short: "Stop a server gracefully (heal starts it again)",
			Args:  ArgsServer,
		},
	})
}
