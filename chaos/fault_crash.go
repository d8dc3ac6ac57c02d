package chaos

import "github.com/herdchaos/herd/herd/topology"

// Crash SIGKILLs a server; healing starts it again (with no state: it must resync).
type Crash struct{ Node string }

func (f Crash) String() string { return "crash " + f.Node }

// Effects implements Fault.
func (f Crash) Effects(cfg topology.Config) (Effects, error) {
	return Effects{Crash: []string{f.Node}}, checkNode(cfg, f.Node)
}

func init() {
	Register(Kind[Crash]{
		Name:  "crash",
		Takes: "nodes (one)",
		Parse: func(s FaultSpec) (Crash, error) {
			n, err := s.node()
			return Crash{Node: n}, err
		},
		Spec: func(f Crash) FaultSpec { return FaultSpec{Nodes: []string{f.Node}} },
		Slot: 7,
		Draw: func(d *Draw) Fault {
			n, ok := d.FreeNode()
			if !ok {
				return d.NoFreeNode()
			}
			return Crash{Node: n}
		},
		Command: Command{
			Name:  "crash",
			Short: "SIGKILL a server (heal starts it again, with no state)",
			Args:  ArgsServer,
		},
	})
}
