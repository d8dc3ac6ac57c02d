package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every mutant of the catalogue still applies to today's herd: each edit's text occurs
// exactly once. (make mutants also compiles each one before running the suite.)
func TestEveryMutantAppliesToTheHerdAsItIs(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Load(filepath.Join(root, "specs", "mutants", "mutants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 30 {
		t.Errorf("the catalogue has %d mutants, want at least 30", len(ms))
	}
	packages := map[string]int{}
	for _, m := range ms {
		files, err := m.Apply(root)
		if err != nil {
			t.Error(err)
			continue
		}
		for f, b := range files {
			orig, _ := os.ReadFile(filepath.Join(root, f))
			if string(orig) == string(b) {
				t.Errorf("mutant %s leaves %s as it is", m.Name, f)
			}
			packages[filepath.Dir(f)]++
		}
	}
	for _, p := range []string{"herd/proto", "herd/core", "herd/server", "herd/places"} {
		if packages[p] == 0 {
			t.Errorf("no mutant in %s", p)
		}
	}
}

// A mutant whose text is not in the file, or is there twice, is refused with its name.
func TestAMutantThatDoesNotApplyOnceIsRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.go"), []byte("x := 1\nx := 1\ny := 2\n"), 0o644)
	for _, from := range []string{"x := 1", "z := 3"} {
		m := Mutant{Name: "m", Bug: "b", Edits: []Edit{{File: "a.go", From: from, To: "w := 0"}}}
		if _, err := m.Apply(dir); err == nil || !strings.Contains(err.Error(), "mutant m") {
			t.Errorf("from %q: err = %v, want a refusal naming the mutant", from, err)
		}
	}
	m := Mutant{Name: "m", Bug: "b", Edits: []Edit{{File: "a.go", From: "y := 2", To: "y := 3"}}}
	files, err := m.Apply(dir)
	if err != nil || string(files["a.go"]) != "x := 1\nx := 1\ny := 3\n" {
		t.Errorf("Apply = %q, %v", files["a.go"], err)
	}
}
