//go:build herdbugs

package bug

import (
	"os"
	"strings"
)

// Names are the bugs this build can switch on through HERD_BUGS (comma-separated).
var Names = []string{
	"older-overwrites",       // a client IAMAT replaces the stored location even if older
	"whatsat-ignores-bound",  // WHATSAT returns every result, whatever the bound
	"whatsat-names-receiver", // WHATSAT's AT line names the server asked, not the origin
	"no-resync",              // a link that comes up does not push the server's state
	"no-reconnect",           // a peer link that drops is never dialled again
	"no-dedup",               // updates are flooded on even when they are not newer
}

var on = map[string]bool{}

func init() {
	for _, b := range strings.Split(os.Getenv("HERD_BUGS"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			on[b] = true
		}
	}
}

// On reports whether the named bug is switched on.
func On(name string) bool { return on[name] }
