package chaos

import (
	"fmt"

	"github.com/herdchaos/herd/herd/topology"
)

// Bandwidth limits each link to KBps kilobytes per second.
type Bandwidth struct {
	Links []Link
	KBps  int
}

func (f Bandwidth) String() string {
	return fmt.Sprintf("bandwidth %s %dKB/s", linkNames(f.Links), f.KBps)
}

// Effects implements Fault.
func (f Bandwidth) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"bandwidth", "upstream", map[string]int{"rate": f.KBps}})
}

func init() {
	Register(Kind[Bandwidth]{
		Name:  "bandwidth",
		Takes: "links, rate (KB/s)",
		Parse: func(s FaultSpec) (Bandwidth, error) {
			links, err := s.links()
			if err != nil {
				return Bandwidth{}, err
			}
			if s.Rate <= 0 {
				return Bandwidth{}, fmt.Errorf("bandwidth needs a positive rate (KB/s)")
			}
			return Bandwidth{Links: links, KBps: s.Rate}, nil
		},
		Spec: func(f Bandwidth) FaultSpec {
			return FaultSpec{Links: linkStrings(f.Links), Rate: f.KBps}
		},
		NotDrawn: true,
		Command: Command{
			Name:  "bandwidth",
			Short: "Limit links to a rate in KB/s",
			Args:  ArgsLinks,
			Flags: []Flag{{Field: "rate", Usage: "KB per second", Int: 4}},
		},
	})
}
