package chaos

import "github.com/herdchaos/herd/herd/topology"

// Pause freezes a server (SIGSTOP, docker pause); healing resumes it.
type Pause struct{ Node string }

func (f Pause) String() string { return "pause " + f.Node }

// Effects implements Fault.
func (f Pause) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Pause: []string{f.Node}}, checkNode(cfg, f.Node)
}

func init() {
	Register(Kind[Pause]{
		Name:  "pause",
		Takes: "nodes (one)",
		Parse: func(s FaultSpec) (Pause, error) {
			n, err := s.node()
			return Pause{Node: n}, err
		},
		Spec: func(f Pause) FaultSpec { return FaultSpec{Nodes: []string{f.Node}} },
		Slot: 8,
		Draw: func(d *Draw) Fault {
			n, ok := d.FreeNode()
			if !ok {
				return d.NoFreeNode()
			}
			return Pause{Node: n}
		},
		Command: Command{
			Name:  "pause",
			Short: "Freeze a server (resume or heal thaws it)",
			Args:  ArgsServer,
		},
	})
}
