package chaos

import (
	"fmt"

	"github.com/herdchaos/herd/herd/topology"
)

// PlacesError makes the Places upstream answer every request with Status (an API status
// such as OVER_QUERY_LIMIT, or HTTP500).
type PlacesError struct{ Status string }

func (f PlacesError) String() string { return "places_error " + f.Status }

// Effects implements Fault.
func (f PlacesError) Effects(topology.Config) (Effects, error) {
	if f.Status == "" {
		return Effects{}, fmt.Errorf("places_error needs a status")
	}
	return Effects{PlacesFail: f.Status}, nil
}

func init() {
	Register(Kind[PlacesError]{
		Name:     "places_error",
		Takes:    "status (an API status or HTTP500)",
		Parse:    func(s FaultSpec) (PlacesError, error) { return PlacesError{Status: s.Status}, nil },
		Spec:     func(f PlacesError) FaultSpec { return FaultSpec{Status: f.Status} },
		NotDrawn: true,
		Command: Command{
			Name:    "places-error",
			Short:   "Make the Places upstream answer every request with an error status",
			Example: "  herdctl places-error OVER_QUERY_LIMIT",
			Args:    ArgsStatus,
			Values:  []string{"OVER_QUERY_LIMIT", "REQUEST_DENIED", "INVALID_REQUEST", "UNKNOWN_ERROR", "HTTP500"},
		},
	})
}
