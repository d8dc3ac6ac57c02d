package specs

import (
	"fmt"
	"slices"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// partitions are cuts of the herd's graph: halves around the hub and around a leaf, and
// three groups (the hub alone, the rest in two).
func partitions() []TableEntry {
	hub, leaf := graph.hub(), graph.leaf()
	var out []TableEntry
	seen := map[string]bool{}
	add := func(what string, groups [][]string) {
		var canon []string // the same cut however its groups and members are ordered
		for _, g := range groups {
			canon = append(canon, fmt.Sprint(slices.Sorted(slices.Values(g))))
		}
		slices.Sort(canon)
		key := fmt.Sprint(canon)
		for _, g := range groups {
			if len(g) == 0 || seen[key] {
				return
			}
		}
		seen[key] = true
		out = append(out, Entry(fmt.Sprintf("%s: %v", what, groups), groups))
	}
	add("halves around the hub", graph.halves(hub))
	add("halves around a leaf", graph.halves(leaf))
	if len(names) >= 3 {
		rest := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == hub })
		sort.SliceStable(rest, func(i, j int) bool { return graph.hops(leaf, rest[i]) < graph.hops(leaf, rest[j]) })
		k := (len(rest) + 1) / 2
		halves := [][]string{rest[:k], rest[k:]}
		add("three groups", [][]string{{hub}, halves[0], halves[1]})
	}
	return out
}

var _ = Describe("Partitions", Label("partition", "reachable"), func() {
	DescribeTable("updates reach exactly their side, and everything converges after healing",
		func(ctx SpecContext, groups [][]string) {
			inject(ctx, chaos.Partition{Groups: groups})
			newest := map[string]string{}
			for _, g := range groups {
				u := update(ctx, g[0]) // checks delivery to its side and none across
				Expect(cluster.Oracle().MustReach(g[0])).To(ConsistOf(graph.reach(g[0], g)))
				newest[u.Client] = u.AT
			}
			check(cluster.HealAll(ctx))
			check(cluster.AwaitConvergence(ctx, newest, 15*time.Second))
		},
		partitions(),
	)

	DescribeTable("isolating a server keeps its updates in and the others' out, until it heals",
		func(ctx SpecContext, node string) {
			inject(ctx, chaos.Isolate{Node: node})
			inside := update(ctx, node) // reaches only node
			Expect(cluster.Oracle().MustReach(node)).To(Equal([]string{node}))
			outside := update(ctx, graph.other(node)) // reaches everyone but node
			check(cluster.HealAll(ctx))
			check(cluster.AwaitConvergence(ctx, map[string]string{inside.Client: inside.AT, outside.Client: outside.AT}, 15*time.Second))
		},
		entries(sample(names, 8)),
	)
})
