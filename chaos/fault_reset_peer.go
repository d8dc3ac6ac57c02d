package chaos

import (
	"fmt"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// ResetPeer resets each link's connections After their start (TCP RST).
type ResetPeer struct {
	Links []Link
	After time.Duration
}

func (f ResetPeer) String() string {
	return fmt.Sprintf("reset_peer %s after %v", linkNames(f.Links), f.After)
}

// Effects implements Fault.
func (f ResetPeer) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"reset_peer", "upstream", map[string]int{"timeout": ms(f.After)}})
}

func init() {
	Register(Kind[ResetPeer]{
		Name:  "reset_peer",
		Takes: "links, after",
		Parse: func(s FaultSpec) (ResetPeer, error) {
			links, err := s.links()
			if err != nil {
				return ResetPeer{}, err
			}
			return ResetPeer{Links: links, After: s.After}, nil
		},
		Spec: func(f ResetPeer) FaultSpec {
			return FaultSpec{Links: linkStrings(f.Links), After: f.After}
		},
		Slot: 2,
		Draw: func(d *Draw) Fault {
			return ResetPeer{Links: []Link{d.Link()}, After: time.Duration(d.Rand.IntN(500)) * time.Millisecond}
		},
		Command: Command{
			Name:  "reset",
			Short: "Reset links' connections (TCP RST) after a while",
			Args:  ArgsLinks,
			Flags: []Flag{{Field: "after", Usage: "connection age at the reset"}},
		},
	})
}
