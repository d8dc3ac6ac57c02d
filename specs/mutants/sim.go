package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// simFailure is the first failure TestSeeds prints: "seed N: property at T (phase P): message".
var simFailure = regexp.MustCompile(`(?m)seed (\d+): (.+?) at [0-9.hms]+ \(phase \d+\): (.*)$`)

// simPackages are the packages of our herd the simulator runs: its servers are herd/core
// nodes, its clients' lines go through herd/proto, and its WHATSATs through herd/places
// (over the emulator's data set). herd/server is not run.
var simPackages = []string{"herd/core/", "herd/proto/", "herd/places/"}

// inSim reports whether every edit of m is in a package the simulator runs.
func inSim(m Mutant) bool {
	for _, e := range m.Edits {
		if !slices.ContainsFunc(simPackages, func(p string) bool { return strings.HasPrefix(e.File, p) }) {
			return false
		}
	}
	return true
}

// runSim runs the simulator's seeds against every mutant of herd/core, herd/proto and
// herd/places (go test -overlay), stopping at each one's first failing seed, and prints
// a table.
func runSim(ctx context.Context, catalogue, only string, seeds int) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	all, err := Load(filepath.Join(root, catalogue))
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "herd-mutants-sim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Printf("mutants against the simulator: %d seeds each (go test ./herd/sim -run TestSeeds -first)\n", seeds)
	start := time.Now()
	base := simRun(ctx, root, "", seeds)
	if base.Verdict != "survived" {
		return fmt.Errorf("the simulator fails on the herd without a mutant (%s: %s); fix that first", base.KilledBy, base.Message)
	}
	fmt.Printf("%-34s passes %6.1fs\n", "(no mutant)", base.Took.Seconds())
	var results []Result
	for _, m := range all {
		if only != "" && !slices.Contains(strings.Split(only, ","), m.Name) {
			continue
		}
		if !inSim(m) {
			continue
		}
		overlay, err := m.Overlay(root, filepath.Join(work, m.Name))
		var r Result
		if err != nil {
			r = Result{Verdict: "error", Message: oneLine(err.Error())}
		} else {
			r = simRun(ctx, root, overlay, seeds)
		}
		r.Mutant = m.Name
		if r.Verdict == "survived" && m.Equivalent != "" {
			r.Verdict = "equivalent"
		}
		results = append(results, r)
		fmt.Printf("%-34s %-10s %6.1fs  %s\n", m.Name, r.Verdict, r.Took.Seconds(), r.KilledBy)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	summarize("simulator", results, start)
	return nil
}

// simRun runs the simulator's seeds with overlay ("" for none). KilledBy is "seed N:
// property".
func simRun(ctx context.Context, root, overlay string, seeds int) Result {
	args := []string{"test", "-count=1"}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "./herd/sim", "-run", "^TestSeeds$", "-first", "-seeds", strconv.Itoa(seeds))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := Result{Took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.Verdict = "survived"
	case errors.As(err, &exit):
		r.Verdict = "killed"
		if m := simFailure.FindSubmatch(out); m != nil {
			r.KilledBy = "seed " + string(m[1]) + ": " + string(m[2])
			r.Message = oneLine(string(m[3]))
		} else {
			r.Message = lastLines(string(out), 3)
		}
	default:
		r.Verdict = "error"
		r.Message = oneLine(err.Error())
	}
	return r
}
