package specs

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

var _ = Describe("Partitions", Label("partition"), func() {
	DescribeTable("updates reach exactly their side, and everything converges after healing",
		func(ctx SpecContext, groups [][]string) {
			inject(ctx, chaos.Partition{Groups: groups})
			newest := map[string]string{}
			for _, g := range groups {
				u := update(ctx, g[0]) // checks delivery to its side and none across
				Expect(cluster.Oracle().MustReach(g[0])).To(ConsistOf(g))
				newest[u.Client] = u.AT
			}
			check(cluster.HealAll(ctx))
			check(cluster.AwaitConvergence(ctx, newest, 15*time.Second))
		},
		Entry("west | east", [][]string{{"Goloman", "Hands", "Wilkes"}, {"Holiday", "Welsh"}}),
		Entry("Welsh's side holds Goloman", [][]string{{"Hands", "Wilkes"}, {"Goloman", "Holiday", "Welsh"}}),
		Entry("three groups", [][]string{{"Goloman"}, {"Hands", "Wilkes"}, {"Holiday", "Welsh"}}),
	)

	isolations := []TableEntry{}
	for _, n := range names {
		isolations = append(isolations, Entry(n, n))
	}
	DescribeTable("isolating a server keeps its updates in and the others' out, until it heals",
		func(ctx SpecContext, node string) {
			inject(ctx, chaos.Isolate{Node: node})
			inside := update(ctx, node) // reaches only node
			Expect(cluster.Oracle().MustReach(node)).To(Equal([]string{node}))
			other := names[0]
			if other == node {
				other = names[1]
			}
			outside := update(ctx, other) // reaches everyone but node
			check(cluster.HealAll(ctx))
			check(cluster.AwaitConvergence(ctx, map[string]string{inside.Client: inside.AT, outside.Client: outside.AT}, 15*time.Second))
		},
		isolations,
	)
})
