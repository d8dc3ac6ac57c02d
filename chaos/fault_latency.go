package chaos

import (
	"fmt"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// Latency delays what each link carries by Latency ± Jitter.
type Latency struct {
	Links           []Link
	Latency, Jitter time.Duration
}

func (f Latency) String() string {
	return fmt.Sprintf("latency %s %v±%v", linkNames(f.Links), f.Latency, f.Jitter)
}

// Effects implements Fault.
func (f Latency) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"latency", "upstream", map[string]int{"latency": ms(f.Latency), "jitter": ms(f.Jitter)}})
}

func init() {
	Register(Kind[Latency]{
		Name:  "latency",
		Takes: "links, latency, jitter",
		Parse: func(s FaultSpec) (Latency, error) {
			links, err := s.links()
			if err != nil {
				return Latency{}, err
			}
			if err := s.positive("latency", s.Latency); err != nil {
				return Latency{}, err
			}
			if s.Jitter < 0 || s.Jitter > s.Latency {
				return Latency{}, fmt.Errorf("latency: jitter must be within [0, latency]")
			}
			return Latency{Links: links, Latency: s.Latency, Jitter: s.Jitter}, nil
		},
		Spec: func(f Latency) FaultSpec {
			return FaultSpec{Links: linkStrings(f.Links), Latency: f.Latency, Jitter: f.Jitter}
		},
		Slot: 0,
		Draw: func(d *Draw) Fault {
			return Latency{Links: []Link{d.Link()}, Latency: time.Duration(50+d.Rand.IntN(150)) * time.Millisecond, Jitter: time.Duration(d.Rand.IntN(30)) * time.Millisecond}
		},
		Command: Command{
			Name:  "latency",
			Short: "Delay what links carry (e.g. herdctl latency 'Goloman<->Hands' --latency 200ms --jitter 50ms)",
			Args:  ArgsLinks,
			Flags: []Flag{
				{Field: "latency", Usage: "added delay", Duration: 100 * time.Millisecond},
				{Field: "jitter", Usage: "random extra delay, up to this either way"},
			},
		},
	})
}
