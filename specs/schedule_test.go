package specs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herdchaos/herd/chaos"
)

var _ = Describe("A seeded random schedule of every fault, with concurrent clients", Label("schedule", "survival"), func() {
	It("keeps the invariants after every step and loses no acknowledged IAMAT", func(ctx SpecContext) {
		// As herdctl chaos saves and runs it: checks name the line of the saved schedule.
		data, err := chaos.RandomSchedule(seed, cluster.Config(), 14).Marshal()
		check(err)
		sc, err := chaos.ParseScenario("schedule", data, cluster.Config())
		check(err)
		var plan []string
		for _, st := range sc.Steps {
			plan = append(plan, st.String())
		}
		AddReportEntry("schedule", strings.Join(plan, "; "))
		GinkgoWriter.Printf("seed %d schedule: %s\n", seed, strings.Join(plan, "; "))
		r := &chaos.Runner{C: cluster, Clients: 3, ConvergeWithin: 30 * time.Second,
			Log: func(s string) { GinkgoWriter.Println(s) }}
		v, err := r.RunScenario(ctx, sc)
		if err == nil && !v.Failed() {
			return
		}
		// The same schedule, as herdctl runs it, shrinks to the steps its failure needs:
		// here, on this herd, unless the run stops at its first failure (the mutation
		// campaign) or HERD_SHRINK=0; and by hand with herdctl chaos --shrink.
		shrink := fmt.Sprintf("herdctl chaos --seed %d --steps 14 --shrink", seed) + herdFlag()
		if err == nil {
			shrink = shrinkHere(ctx, sc, shrink)
		}
		check(err, "schedule from seed (to shrink it: "+shrink+")")
		for _, c := range v.Checks {
			if !c.OK {
				check(errors.New(c.Error), fmt.Sprintf("check %s at line %d of the schedule from seed (%s)", c.Check, c.Line, shrink))
			}
		}
	}, NodeTimeout(20*time.Minute))
})

// shrinkHere shrinks a failed schedule on the suite's herd, in at most HERD_SHRINK runs
// (default 20) and 12 minutes, and saves the smallest failing scenario in the spec's
// artifacts as shrunk.yaml. It returns what the failure message should say about it: the
// file and its replay command, or how to shrink by hand.
func shrinkHere(ctx context.Context, sc *chaos.Scenario, byHand string) string {
	trials := 20
	if s := os.Getenv("HERD_SHRINK"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			Fail(fmt.Sprintf("HERD_SHRINK=%q: want a number of runs (0: do not shrink)", s))
		}
		trials = n
	}
	if suite, _ := GinkgoConfiguration(); suite.FailFast || trials == 0 {
		return "to shrink it: " + byHand
	}
	sctx, cancel := context.WithTimeout(ctx, 12*time.Minute)
	defer cancel()
	got, err := chaos.ShrinkOn(sctx, cluster, sc, id("shrink")+"-", trials, func(s string) { GinkgoWriter.Println(s) })
	if err != nil {
		return fmt.Sprintf("shrinking it here: %v; to shrink it: %s", err, byHand)
	}
	out, err := got.Scenario.Marshal()
	check(err)
	dir := specDir()
	check(os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "shrunk.yaml")
	check(os.WriteFile(path, out, 0o644))
	replay := "herdctl run " + path + herdFlag()
	AddReportEntry("shrunk", fmt.Sprintf("%d of %d steps still fail check %s (%d runs): %s", len(got.Scenario.Steps), len(sc.Steps), got.Failure, got.Trials, path))
	return fmt.Sprintf("shrunk in %d runs to %d of %d steps that still fail check %s: %s; replay: %s", got.Trials, len(got.Scenario.Steps), len(sc.Steps), got.Failure, path, replay)
}

// herdFlag is the herdctl flag that names the herd under test, if it is not ours.
func herdFlag() string {
	if d := os.Getenv("HERD_DESCRIPTION"); d != "" {
		return " --herd " + d
	}
	return ""
}
