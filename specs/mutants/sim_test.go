package main

import (
	"path/filepath"
	"testing"
)

// The simulator runs the mutants whose edits are all in herd/core, herd/proto or
// herd/places, and none that touches herd/server (which it does not run).
func TestTheSimulatorRunsTheMutantsOfThePackagesItRuns(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Load(filepath.Join(root, "specs", "mutants", "mutants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Mutant{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	for name, want := range map[string]bool{
		"space-includes-fs": true, "older-overwrites": true, "no-resync": true,
		"trim-keeps-one-more": true, "upstream-status-replaced": true,
		"places-no-timeout": false, "whatsat-radius-in-km": false, "no-reconnect": false,
	} {
		m, ok := byName[name]
		if !ok {
			t.Errorf("no mutant %s in the catalogue", name)
			continue
		}
		if got := inSim(m); got != want {
			t.Errorf("inSim(%s) = %v, want %v", name, got, want)
		}
	}
}
