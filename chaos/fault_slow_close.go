package chaos

import (
	"fmt"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// SlowClose delays the closing of each link's connections.
type SlowClose struct {
	Links []Link
	Delay time.Duration
}

func (f SlowClose) String() string {
	return fmt.Sprintf("slow_close %s %v", linkNames(f.Links), f.Delay)
}

// Effects implements Fault.
func (f SlowClose) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"slow_close", "upstream", map[string]int{"delay": ms(f.Delay)}})
}

func init() {
	Register(Kind[SlowClose]{
		Name:  "slow_close",
		Takes: "links, delay",
		Parse: func(s FaultSpec) (SlowClose, error) {
			links, err := s.links()
			if err != nil {
				return SlowClose{}, err
			}
			if err := s.positive("delay", s.Delay); err != nil {
				return SlowClose{}, err
			}
			return SlowClose{Links: links, Delay: s.Delay}, nil
		},
		Spec: func(f SlowClose) FaultSpec {
			return FaultSpec{Links: linkStrings(f.Links), Delay: f.Delay}
		},
		NotDrawn: true,
		Command: Command{
			Name:  "slow-close",
			Short: "Delay closing links' connections",
			Args:  ArgsLinks,
			Flags: []Flag{{Field: "delay", Usage: "how long", Duration: time.Second}},
		},
	})
}
