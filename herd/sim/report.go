package sim

import (
	"fmt"
	"strings"
)

// Report describes a failure: its seed, property, last events and the one-line command
// that replays it.
func Report(f *Failure) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nlast events:\n", f.Error())
	for _, l := range f.Last {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	fmt.Fprintf(&b, "replay: %s\n", ReplayCommand(f.Seed))
	return b.String()
}

// ReplayCommand is the command that runs seed again, alone.
func ReplayCommand(seed uint64) string {
	return fmt.Sprintf("go run ./cmd/herdsim -seed %d", seed)
}
