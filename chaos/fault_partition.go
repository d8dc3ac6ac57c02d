package chaos

import (
	"fmt"
	"sort"
	"strings"

	"github.com/herdchaos/herd/herd/topology"
)

// Partition cuts every link between servers of different groups. Servers in no group
// form a group of their own.
type Partition struct{ Groups [][]string }

func (f Partition) String() string {
	var g []string
	for _, grp := range f.Groups {
		g = append(g, strings.Join(grp, ","))
	}
	return "partition " + strings.Join(g, " | ")
}

// Effects implements Fault.
func (f Partition) Effects(cfg topology.Config) (Effects, error) {
	group := map[string]int{}
	for i, grp := range f.Groups {
		for _, n := range grp {
			if err := checkNode(cfg, n); err != nil {
				return Effects{}, err
			}
			if _, dup := group[n]; dup {
				return Effects{}, fmt.Errorf("partition: %s is in two groups", n)
			}
			group[n] = i
		}
	}
	for _, n := range cfg.Names() {
		if _, ok := group[n]; !ok {
			group[n] = -1
		}
	}
	var e Effects
	for _, l := range cfg.Links() {
		if group[l[0]] != group[l[1]] {
			e.Cut = append(e.Cut, Link{l[0], l[1]}, Link{l[1], l[0]})
		}
	}
	return e, nil
}

func init() {
	Register(Kind[Partition]{
		Name:  "partition",
		Takes: "groups",
		Parse: func(s FaultSpec) (Partition, error) {
			if len(s.Groups) < 2 {
				return Partition{}, fmt.Errorf("partition needs at least two groups")
			}
			return Partition{Groups: s.Groups}, nil
		},
		Spec: func(f Partition) FaultSpec { return FaultSpec{Groups: f.Groups} },
		Slot: 5,
		Draw: func(d *Draw) Fault {
			names := d.Config.Names()
			perm := d.Rand.Perm(len(names))
			cut := 1 + d.Rand.IntN(len(names)-1)
			var a, b []string
			for j, p := range perm {
				if j < cut {
					a = append(a, names[p])
				} else {
					b = append(b, names[p])
				}
			}
			sort.Strings(a)
			sort.Strings(b)
			return Partition{Groups: [][]string{a, b}}
		},
		Command: Command{
			Name:    "partition",
			Short:   "Cut every link between groups of servers (a group is A,B,C)",
			Example: "  herdctl partition Goloman,Hands,Wilkes Holiday,Welsh",
			Args:    ArgsGroups,
		},
	})
}
