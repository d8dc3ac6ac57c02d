package chaos

import "github.com/herdchaos/herd/herd/topology"

// Restart SIGKILLs a server and starts it again at once.
type Restart struct{ Node string }

func (f Restart) String() string { return "restart " + f.Node }

// Effects implements Fault.
func (f Restart) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Restart: []string{f.Node}}, checkNode(cfg, f.Node)
}

func init() {
	Register(Kind[Restart]{
		Name:  "restart",
		Takes: "nodes (one)",
		Parse: func(s FaultSpec) (Restart, error) {
			n, err := s.node()
			return Restart{Node: n}, err
		},
		Spec: func(f Restart) FaultSpec { return FaultSpec{Nodes: []string{f.Node}} },
		Slot: 9,
		Draw: func(d *Draw) Fault {
			n, ok := d.FreeNode()
			if !ok {
				return d.NoFreeNode()
			}
			return Restart{Node: n}
		},
		Command: Command{
			Name:  "restart",
			Short: "SIGKILL a server and start it again at once",
			Args:  ArgsServer,
		},
	})
}
