package specs

import (
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herdchaos/herd/chaos"
)

// A server that restarts starts a new run: what a neighbour remembers of the old one (how
// far it had got) must not make it skip anything. In a herd of its own, so the restarted
// server's new records are few and its old run's count is far above them.
var _ = Describe("A restarted server and a neighbour that only it reaches", Ordered, Label("crash", "convergence"), func() {
	ownHerdOf := ownHerdIn()

	It("gets everything the restarted server learned, whatever it had sent it before", func(ctx SpecContext) {
		herd := ownHerdOf()
		g := newGraph(herd.Config())
		leaf := g.leaf()
		if g.degree(leaf) != 1 {
			Skip("the herd has no server with a single neighbour")
		}
		hub := g.adj[leaf][0] // the leaf's only way to the herd
		other := g.other(leaf, hub)
		settle(ctx, herd)
		// The hub sends the leaf a long run of updates: the leaf remembers how far the
		// hub's run had got.
		client := id("run")
		var last chaos.Accepted
		for range 2000 {
			u, err := herd.Update(ctx, hub, client, here, now())
			check(err)
			last = u
		}
		_, err := herd.AwaitDelivery(ctx, last)
		check(err)
		crash, err := herd.Inject(ctx, chaos.Crash{Node: hub})
		check(err)
		// While the hub is down the leaf is cut off: these cannot reach it yet.
		newest := map[string]string{}
		var downs []chaos.Accepted
		for range 20 {
			u, err := herd.Update(ctx, other, id("while-down"), here, now())
			check(err)
			newest[u.Client] = u.AT
			downs = append(downs, u)
		}
		// The hub restarts empty and learns them from the others before its link to the
		// leaf comes up: only that link's resync can carry them to the leaf.
		cut, err := herd.Inject(ctx, chaos.Cut{Links: []chaos.Link{{From: hub, To: leaf}}})
		check(err)
		check(herd.Heal(ctx, crash))
		for _, u := range downs {
			_, err := herd.AwaitDelivery(ctx, u) // the hub holds it; the leaf is cut off
			check(err)
		}
		check(herd.Heal(ctx, cut))
		check(herd.AwaitConvergence(ctx, newest, 15*time.Second),
			"a restarted ", hub, " passes on to ", leaf, " what it learned after its restart (a mark from its old run must not count)")
	})
})
