package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herdchaos/herd/herd/sim"
)

// A whole schedule of the default five servers (WHATSATs with radius and bound, slow
// Places, hostile lines and forged updates among its operations) is written as a scenario
// that herdctl's parser takes (writeScenario parses what it writes).
func TestAScheduleIsWrittenAsAScenarioThatParses(t *testing.T) {
	var s *sim.Schedule
	for seed := uint64(1); s == nil; seed++ {
		c := sim.Generate(seed)
		kinds := map[string]bool{}
		for _, p := range c.Phases {
			for _, f := range p.Faults {
				kinds[string(f.Kind)] = true
			}
			for _, o := range p.Ops {
				kinds[map[bool]string{true: "whatsat", false: "other"}[o.Read]] = true
				if o.Line != "" {
					kinds["line"] = true
				}
			}
		}
		if seed%10 != 0 && kinds["slowplaces"] && kinds["whatsat"] && kinds["line"] {
			s = c
		}
	}
	path := filepath.Join(t.TempDir(), "s.yaml")
	if err := writeScenario(s, path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, want := range []string{"kind: places_slow", "whatsat: {server:", "radius:", "bound:"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the scenario of seed %d has no %q", s.Seed, want)
		}
	}
}
