package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/herdchaos/herd/herd/topology"
)

// A Trial runs a candidate scenario against a herd (healed and serving when it starts)
// and returns its verdict; an error means the scenario could not be carried out.
type Trial func(ctx context.Context, sc *Scenario) (Verdict, error)

// Shrunk is what Shrink found.
type Shrunk struct {
	Scenario *Scenario // the smallest scenario that still failed the same way
	Failure  string    // the check it fails: "delivered", "converged", "whatsat" or "fresh"
	Error    string    // what that check said, in the smallest run
	Trials   int       // how many runs it took, the first included
}

// failure is the name of a verdict's first failed check and what it said ("" if none).
func failure(v Verdict) (string, string) {
	for _, c := range v.Checks {
		if !c.OK {
			return c.Check, c.Error
		}
	}
	return "", ""
}

// Shrink removes steps and operations from a failing scenario while it still fails the
// same check, as delta debugging does: it first runs the scenario as it is (a failure
// that does not come back is not shrunk), then tries to drop halves, quarters, ... down to
// single steps, then to bisect the count of each updates step. Check steps stay, and so does a final
// "heal: all" before them (without it a convergence check fails for the wrong reason);
// dropping an inject drops the heals of its name. It stops after maxTrials runs, or when
// ctx ends, with the smallest failing scenario found so far. log gets a line per run.
func Shrink(ctx context.Context, sc *Scenario, cfg topology.Config, trial Trial, maxTrials int, log func(string)) (Shrunk, error) {
	if log == nil {
		log = func(string) {}
	}
	v, err := trial(ctx, sc)
	if err != nil {
		return Shrunk{}, fmt.Errorf("running the scenario as it is: %w", err)
	}
	want, msg := failure(v)
	if want == "" {
		return Shrunk{}, errors.New("the scenario passes every check: there is no failure to shrink")
	}
	best := Shrunk{Scenario: sc, Failure: want, Error: msg, Trials: 1}
	log(fmt.Sprintf("shrink: %d steps fail check %s; trying smaller ones", len(sc.Steps), want))

	// try runs a candidate and keeps it when it fails the same check.
	try := func(cand *Scenario, what string) bool {
		if best.Trials >= maxTrials || ctx.Err() != nil {
			return false
		}
		// As a saved file would run it: parsed back, with its line numbers.
		cand, err := ParseScenario(cand.Name, mustMarshal(cand), cfg)
		if err != nil {
			return false // not a scenario any more (cannot happen by construction: a guard)
		}
		best.Trials++
		v, err := trial(ctx, cand)
		got, msg := failure(v)
		kept := err == nil && got == want
		verdict := "passes: kept the step(s)"
		switch {
		case err != nil:
			verdict = "could not run (" + err.Error() + "): kept the step(s)"
		case kept:
			verdict = "still fails " + want + ": dropped"
		case got != "":
			verdict = "fails " + got + " instead: kept the step(s)"
		}
		log(fmt.Sprintf("shrink: trial %d, %s (%d steps): %s", best.Trials, what, len(cand.Steps), verdict))
		if kept {
			best.Scenario, best.Error = cand, msg
		}
		return kept
	}

	// Steps: halves, then quarters, ... then one at a time.
	size := max(1, len(removable(best.Scenario))/2)
	for len(removable(best.Scenario)) > 0 && best.Trials < maxTrials && ctx.Err() == nil {
		units := removable(best.Scenario)
		progress := false
		for start := 0; start < len(units); {
			end := min(start+size, len(units))
			if try(without(best.Scenario, units[start:end]), "without steps "+stepRange(units[start:end])) {
				units = removable(best.Scenario)
				progress = true
				continue // the same start now names the steps after the dropped ones
			}
			start = end
		}
		switch {
		case progress:
			size = max(1, min(size, len(units)/2))
		case size == 1:
			size = 0
		default:
			size /= 2
		}
		if size == 0 {
			break
		}
	}
	// Operations: the fewest updates each updates step needs, by bisection (a step that
	// fails with n updates is taken to fail with more).
	for i := range best.Scenario.Steps {
		lo, hi := 1, best.Scenario.Steps[i].Updates
		for lo < hi && best.Trials < maxTrials && ctx.Err() == nil {
			mid := (lo + hi) / 2
			cand := clone(best.Scenario)
			cand.Steps[i].Updates = mid
			if try(cand, fmt.Sprintf("step %d with %d updates instead of %d", i+1, mid, hi)) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
	}
	best.Scenario = clone(best.Scenario)
	best.Scenario.Name = fmt.Sprintf("%s (shrunk: %d of %d steps)", sc.Name, len(best.Scenario.Steps), len(sc.Steps))
	return best, nil
}

// removable are the indices of the steps Shrink may drop: all but checks and the final
// heal of everything before them.
func removable(sc *Scenario) []int {
	tail := len(sc.Steps)
	for tail > 0 && sc.Steps[tail-1].Check != "" {
		tail--
	}
	if tail > 0 && sc.Steps[tail-1].Heal == "all" {
		tail--
	}
	var out []int
	for i, st := range sc.Steps[:tail] {
		if st.Check == "" {
			out = append(out, i)
		}
	}
	return out
}

// without is sc without the steps at indices drop, and without the heals of the faults
// those steps named.
func without(sc *Scenario, drop []int) *Scenario {
	gone := map[string]bool{}
	for _, i := range drop {
		if as := sc.Steps[i].As; as != "" {
			gone[as] = true
		}
	}
	out := &Scenario{Name: sc.Name, Seed: sc.Seed}
	for i, st := range sc.Steps {
		if slices.Contains(drop, i) || (st.Heal != "" && gone[st.Heal]) {
			continue
		}
		out.Steps = append(out.Steps, st)
	}
	return out
}

func clone(sc *Scenario) *Scenario {
	out := *sc
	out.Steps = slices.Clone(sc.Steps)
	return &out
}

func mustMarshal(sc *Scenario) []byte {
	b, err := sc.Marshal()
	if err != nil {
		panic(err) // a Scenario always marshals
	}
	return b
}

// stepRange names steps by their 1-based numbers: "3", "3-5".
func stepRange(idx []int) string {
	if len(idx) == 1 {
		return fmt.Sprint(idx[0] + 1)
	}
	return fmt.Sprintf("%d-%d", idx[0]+1, idx[len(idx)-1]+1)
}
