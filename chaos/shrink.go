package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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

// A signature says which failure a run had, so that a smaller scenario counts only when
// it fails the same way: the same check, reported for the same step of the original
// scenario, with the same kind of message (its text before the first colon, digits
// left out: "delivery to every reachable server", "convergence", "whatsat check", ...).
type signature struct {
	check string
	step  int // index in the original scenario's steps; -1 if not found
	kind  string
}

// failure is the signature of a verdict's first failed check and what it said (check
// "" if none). origin maps the run's steps to the original's.
func failure(v Verdict, sc *Scenario, origin []int) (signature, string) {
	for _, c := range v.Checks {
		if c.OK {
			continue
		}
		sig := signature{check: c.Check, step: -1, kind: c.Error}
		if i := strings.IndexByte(sig.kind, ':'); i >= 0 {
			sig.kind = sig.kind[:i]
		}
		sig.kind = strings.TrimSpace(strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return -1
			}
			return r
		}, sig.kind))
		for k, st := range sc.Steps {
			if st.Line == c.Line {
				sig.step = origin[k]
			}
		}
		return sig, c.Error
	}
	return signature{}, ""
}

// Shrink removes steps and operations from a failing scenario while it still fails the
// same way (the same check, for the same step, with the same kind of message), as delta
// debugging does: it first runs the scenario as it is (a failure that does not come back
// is not shrunk), then tries to drop halves, quarters, ... down to single steps, then to
// bisect the count of each updates step. Checks and heals stay (without its heal a fault
// stays in force, and a convergence check fails for the wrong reason); dropping an inject
// drops the heals of its name. It stops after maxTrials runs, the first included, or when
// ctx ends, with the smallest failing scenario found so far. log gets a line per run.
func Shrink(ctx context.Context, sc *Scenario, cfg topology.Config, trial Trial, maxTrials int, log func(string)) (Shrunk, error) {
	if log == nil {
		log = func(string) {}
	}
	sc, err := ParseScenario(sc.Name, mustMarshal(sc), cfg) // with line numbers
	if err != nil {
		return Shrunk{}, err
	}
	origin := make([]int, len(sc.Steps)) // best's steps, as indices into sc's
	for i := range origin {
		origin[i] = i
	}
	v, err := trial(ctx, sc)
	if err != nil {
		return Shrunk{}, fmt.Errorf("running the scenario as it is: %w", err)
	}
	want, msg := failure(v, sc, origin)
	if want.check == "" {
		return Shrunk{}, errors.New("the scenario passes every check: there is no failure to shrink")
	}
	best := Shrunk{Scenario: sc, Failure: want.check, Error: msg, Trials: 1}
	log(fmt.Sprintf("shrink: %d steps fail check %s (%s); trying smaller ones", len(sc.Steps), want.check, want.kind))

	// try runs a candidate (its steps: the original's at indices from) and keeps it when
	// it fails the same way.
	try := func(cand *Scenario, from []int, what string) bool {
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
		got, msg := failure(v, cand, from)
		kept := err == nil && got == want
		verdict := "passes: kept the step(s)"
		switch {
		case err != nil:
			verdict = "could not run (" + err.Error() + "): kept the step(s)"
		case kept:
			verdict = "still fails " + want.check + " the same way: dropped"
		case got.check != "":
			verdict = fmt.Sprintf("fails otherwise (%s at step %d: %s): kept the step(s)", got.check, got.step+1, got.kind)
		}
		log(fmt.Sprintf("shrink: trial %d, %s (%d steps): %s", best.Trials, what, len(cand.Steps), verdict))
		if kept {
			best.Scenario, best.Error, origin = cand, msg, from
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
			cand, from := without(best.Scenario, origin, units[start:end])
			if try(cand, from, "without steps "+stepRange(units[start:end])) {
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
			if try(cand, origin, fmt.Sprintf("step %d with %d updates instead of %d", i+1, mid, hi)) {
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

// removable are the indices of the steps Shrink may drop: all but checks and heals.
func removable(sc *Scenario) []int {
	var out []int
	for i, st := range sc.Steps {
		if st.Check == "" && st.Heal == "" {
			out = append(out, i)
		}
	}
	return out
}

// without is sc without the steps at indices drop, and without the heals of the faults
// those steps named; from maps its steps to the original's, as origin maps sc's.
func without(sc *Scenario, origin, drop []int) (*Scenario, []int) {
	gone := map[string]bool{}
	for _, i := range drop {
		if as := sc.Steps[i].As; as != "" {
			gone[as] = true
		}
	}
	out := &Scenario{Name: sc.Name, Seed: sc.Seed}
	var from []int
	for i, st := range sc.Steps {
		if slices.Contains(drop, i) || (st.Heal != "" && gone[st.Heal]) {
			continue
		}
		out.Steps = append(out.Steps, st)
		from = append(from, origin[i])
	}
	return out, from
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

// ShrinkOn shrinks sc, which failed on c, on c's own herd: it heals and settles the herd
// (a run leaves faults and unfinished floods), then runs each trial on a fresh Cluster
// over the same backend, with c's seed, timing and claims, healing and settling after
// each. prefix names the settle updates' clients. It is Shrink as herdctl chaos --shrink
// and the suite's schedule spec use it.
func ShrinkOn(ctx context.Context, c *Cluster, sc *Scenario, prefix string, maxTrials int, log func(string)) (Shrunk, error) {
	n := 0
	whole := func(tc *Cluster) error {
		n++
		return tc.HealAndSettle(ctx, fmt.Sprintf("%s%d-", prefix, n))
	}
	if err := whole(c); err != nil {
		return Shrunk{}, fmt.Errorf("the herd did not settle after the run: %w", err)
	}
	trial := func(ctx context.Context, cand *Scenario) (Verdict, error) {
		tc := NewCluster(c.Backend(), c.Seed)
		tc.Timing, tc.Claims = c.Timing, c.Claims
		v, err := RunScenario(ctx, tc, cand, nil)
		if werr := whole(tc); werr != nil {
			err = errors.Join(err, fmt.Errorf("the herd did not settle after it: %w", werr))
		}
		return v, err
	}
	return Shrink(ctx, sc, c.Config(), trial, maxTrials, log)
}
