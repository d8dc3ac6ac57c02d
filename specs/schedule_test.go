package specs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herdchaos/herd/chaos"
)

var _ = Describe("A seeded random schedule of every fault, with concurrent clients", Label("schedule", "survival"), func() {
	It("keeps the invariants after every step and loses no acknowledged IAMAT", func(ctx SpecContext) {
		rng := rand.New(rand.NewPCG(seed, 11))
		steps := chaos.RandomSchedule(rng, cluster.Config(), 14)
		var plan strings.Builder
		for i, st := range steps {
			plan.WriteString(st.String())
			if i < len(steps)-1 {
				plan.WriteString("; ")
			}
		}
		AddReportEntry("schedule", plan.String())
		GinkgoWriter.Printf("seed %d schedule: %s\n", seed, plan.String())
		r := &chaos.Runner{C: cluster, Clients: 3, ConvergeWithin: 30 * time.Second,
			Log: func(s string) { GinkgoWriter.Println(s) }}
		// The same schedule, as herdctl runs it, shrinks to the steps its failure needs.
		shrink := fmt.Sprintf("herdctl chaos --seed %d --steps %d --shrink", seed, len(steps))
		if d := os.Getenv("HERD_DESCRIPTION"); d != "" {
			shrink += " --herd " + d
		}
		check(r.Run(ctx, steps), "schedule from seed (to shrink it: "+shrink+")")
	}, NodeTimeout(5*time.Minute))
})
