package chaos

import (
	"context"
	"strings"
	"testing"

	"github.com/herdchaos/herd/herd/topology"
)

// The bug a fake herd has: a crash of Holiday while Goloman<->Holiday is cut loses what
// at least 3 updates sent after the crash, which the convergence check sees. Every other
// step is noise, except that a pause of Wilkes makes the freshness check fail: a failure,
// but another one, which a shrunk scenario must not trade the first one for.
func fakeTrial(runs *int) Trial {
	return func(_ context.Context, sc *Scenario) (Verdict, error) {
		*runs++
		var v Verdict
		cut, crashed, paused, after := false, false, false, 0
		for _, st := range sc.Steps {
			switch {
			case st.Inject != nil && st.Inject.Kind == "partition":
				cut = true
			case st.Inject != nil && st.Inject.Kind == "crash":
				crashed = cut
			case st.Inject != nil && st.Inject.Kind == "pause":
				paused = true
			case st.Updates > 0:
				if crashed {
					after += st.Updates
				}
				v.Checks = append(v.Checks, CheckResult{Line: st.Line, Check: "delivered", OK: true})
			case st.Check == "converged":
				v.Checks = append(v.Checks, CheckResult{Line: st.Line, Check: "converged", OK: after < 3, Error: "lost"})
			case st.Check == "fresh":
				v.Checks = append(v.Checks, CheckResult{Line: st.Line, Check: "fresh", OK: !paused, Error: "older"})
			}
		}
		return v, nil
	}
}

const noisy = `name: noisy
seed: 7
steps:
  - inject: {kind: latency, links: ["Goloman<->Hands"], latency: 50ms}
    as: slow
  - updates: 4
  - inject: {kind: partition, groups: [[Goloman], [Holiday]]}
    as: cut
  - updates: 2
  - inject: {kind: crash, nodes: [Holiday]}
    as: crash
  - updates: 8
  - heal: slow
  - inject: {kind: pause, nodes: [Wilkes]}
    as: freeze
  - updates: 3
  - heal: freeze
  - heal: crash
  - heal: cut
  - updates: 2
  - heal: all
  - check: converged
  - check: fresh
`

func TestShrinkKeepsOnlyTheStepsTheFailureNeeds(t *testing.T) {
	cfg := topology.Default("127.0.0.1")
	sc, err := ParseScenario("noisy", []byte(noisy), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	var log []string
	got, err := Shrink(context.Background(), sc, cfg, fakeTrial(&runs), 100, func(s string) { log = append(log, s) })
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, st := range got.Scenario.Steps {
		kept = append(kept, st.String())
	}
	want := []string{"inject partition", "inject crash", "3 updates", "heal crash", "heal cut", "heal all", "check converged", "check fresh"}
	if len(kept) != len(want) {
		t.Fatalf("shrunk to %d steps %q, want %d like %q\n%s", len(kept), kept, len(want), want, strings.Join(log, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(kept[i], want[i]) {
			t.Errorf("step %d is %q, want %q...", i+1, kept[i], want[i])
		}
	}
	if got.Failure != "converged" || got.Trials != runs || runs > 40 {
		t.Errorf("failure %q after %d trials (%d runs), want converged within 40 runs", got.Failure, got.Trials, runs)
	}
	// The shrunk scenario is a file that replays: parse it back.
	if _, err := ParseScenario("shrunk", mustMarshal(got.Scenario), cfg); err != nil {
		t.Errorf("the shrunk scenario does not parse back: %v", err)
	}
}

func TestShrinkRefusesAPassingScenario(t *testing.T) {
	cfg := topology.Default("127.0.0.1")
	sc, err := ParseScenario("calm", []byte("steps:\n  - updates: 2\n  - check: converged\n"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	if _, err := Shrink(context.Background(), sc, cfg, fakeTrial(&runs), 10, nil); err == nil || runs != 1 {
		t.Errorf("a passing scenario: err %v after %d runs, want an error after 1", err, runs)
	}
}

// A smaller scenario that fails the same check for another reason (here: the WHATSAT it
// checks, or the IAMAT before it, dropped) is not the same failure, and is not kept.
func TestShrinkKeepsTheFailureNotJustTheCheckName(t *testing.T) {
	cfg := topology.Default("127.0.0.1")
	sc, err := ParseScenario("w", []byte(`steps:
  - inject: {kind: latency, links: ["Goloman<->Hands"], latency: 50ms}
    as: slow
  - iamat: {server: Goloman, client: a}
  - updates: 2
  - whatsat: {server: Hands, client: a}
  - heal: slow
  - check: whatsat
`), cfg)
	if err != nil {
		t.Fatal(err)
	}
	trial := func(_ context.Context, sc *Scenario) (Verdict, error) {
		iamat, whatsat := false, false
		var v Verdict
		for _, st := range sc.Steps {
			switch {
			case st.IAMAT != nil:
				iamat = true
			case st.WHATSAT != nil:
				whatsat = true
			case st.Check == "whatsat":
				msg := "WHATSAT correctness at Hands: 3 results, more than the bound 2"
				switch {
				case !whatsat:
					msg = "whatsat check: no WHATSAT before it"
				case !iamat:
					msg = "whatsat check: no acknowledged IAMAT for a"
				}
				v.Checks = append(v.Checks, CheckResult{Line: st.Line, Check: "whatsat", Error: msg})
			}
		}
		return v, nil
	}
	got, err := Shrink(context.Background(), sc, cfg, trial, 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, st := range got.Scenario.Steps {
		kept = append(kept, st.String())
	}
	if len(kept) != 3 || got.Scenario.Steps[0].IAMAT == nil || got.Scenario.Steps[1].WHATSAT == nil {
		t.Errorf("shrunk to %q, want the IAMAT, the WHATSAT and the check", kept)
	}
	if !strings.HasPrefix(got.Error, "WHATSAT correctness") {
		t.Errorf("the shrunk scenario fails with %q, not the original failure", got.Error)
	}
}
