package chaos

import (
	"fmt"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// Slicer cuts what each link carries into pieces of about AverageBytes, Delay apart.
type Slicer struct {
	Links         []Link
	AverageBytes  int
	SizeVariation int
	Delay         time.Duration
}

func (f Slicer) String() string {
	return fmt.Sprintf("slicer %s %dB/%v", linkNames(f.Links), f.AverageBytes, f.Delay)
}

// Effects implements Fault.
func (f Slicer) Effects(cfg topology.Config) (Effects, error) {
	return toxicOn(cfg, f.Links, Toxic{"slicer", "upstream", map[string]int{
		"average_size": f.AverageBytes, "size_variation": f.SizeVariation, "delay": int(f.Delay / time.Microsecond)}})
}

func init() {
	Register(Kind[Slicer]{
		Name:  "slicer",
		Takes: "links, size (bytes), variation (bytes, less than size), delay",
		Parse: func(s FaultSpec) (Slicer, error) {
			links, err := s.links()
			if err != nil {
				return Slicer{}, err
			}
			size := s.Size
			if size <= 0 {
				size = 1
			}
			if s.Variation < 0 || (s.Variation > 0 && s.Variation >= size) {
				return Slicer{}, fmt.Errorf("slicer: variation must be within [0, size)")
			}
			return Slicer{Links: links, AverageBytes: size, SizeVariation: s.Variation, Delay: s.Delay}, nil
		},
		Spec: func(f Slicer) FaultSpec {
			return FaultSpec{Links: linkStrings(f.Links), Size: f.AverageBytes, Variation: f.SizeVariation, Delay: f.Delay}
		},
		Slot: 1,
		Draw: func(d *Draw) Fault {
			return Slicer{Links: []Link{d.Link()}, AverageBytes: 1 + d.Rand.IntN(16), SizeVariation: 0, Delay: time.Duration(d.Rand.IntN(500)) * time.Microsecond}
		},
		Command: Command{
			Name:  "slicer",
			Short: "Cut what links carry into small pieces",
			Args:  ArgsLinks,
			Flags: []Flag{
				{Field: "size", Usage: "average piece in bytes", Int: 2},
				{Field: "variation", Usage: "pieces vary by up to this many bytes either way (less than size)"},
				{Field: "delay", Usage: "between pieces", Duration: 100 * time.Microsecond},
			},
		},
	})
}
