package specs

import (
	"errors"
	"fmt"
	"os"
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
		// The same schedule, as herdctl runs it, shrinks to the steps its failure needs.
		shrink := fmt.Sprintf("herdctl chaos --seed %d --steps 14 --shrink", seed)
		if d := os.Getenv("HERD_DESCRIPTION"); d != "" {
			shrink += " --herd " + d
		}
		check(err, "schedule from seed (to shrink it: "+shrink+")")
		for _, c := range v.Checks {
			if !c.OK {
				check(errors.New(c.Error), fmt.Sprintf("check %s at line %d of the schedule from seed (to shrink it: %s)", c.Check, c.Line, shrink))
			}
		}
	}, NodeTimeout(5*time.Minute))
})
