//go:build !herdbugs

package bug

import "testing"

// The shipped build has no way to switch a bug on, whatever the environment says.
func TestNoBugCanBeSwitchedOnInTheShippedBuild(t *testing.T) {
	t.Setenv("HERD_BUGS", "older-overwrites,whatsat-ignores-bound,whatsat-names-receiver,no-resync,no-reconnect,no-dedup")
	for _, b := range []string{"older-overwrites", "whatsat-ignores-bound", "whatsat-names-receiver", "no-resync", "no-reconnect", "no-dedup"} {
		if On(b) {
			t.Fatalf("%s is on in a build without the herdbugs tag", b)
		}
	}
}
