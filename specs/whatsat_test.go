package specs

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("WHATSAT after a client moves", Label("quick", "places", "whatsat"), func() {
	It("queries Places at the newest location: every server answers with the new AT line and the JSON for the new place", func(ctx SpecContext) {
		a, b, _ := farthestPair()
		const radius, bound = "10", 5
		c := id("moved")
		la, err := cluster.Update(ctx, a, c, "+34.068930-118.445127", now()) // Los Angeles
		check(err)
		_, err = cluster.AwaitDelivery(ctx, la)
		check(err)
		before, err := cluster.WHATSAT(ctx, a, c, radius, bound)
		check(err)
		check(cluster.CheckWhatsat(ctx, a, before, la, radius, bound), "WHATSAT before the move")

		sydney, err := cluster.Update(ctx, b, c, "-33.868800+151.209300", now())
		check(err)
		_, err = cluster.AwaitDelivery(ctx, sydney)
		check(err, "the move reaches every server")
		for _, n := range cluster.Nodes() {
			rep, err := cluster.WHATSAT(ctx, n, c, radius, bound)
			check(err)
			Expect(rep.AT).To(Equal(sydney.AT), "WHATSAT after a move answers with the newest AT line: %s answers %q, the newest is %q (from %s; the old one %q from %s); seed %d; artifacts in %s",
				n, rep.AT, sydney.AT, b, la.AT, a, seed, specDir())
			check(cluster.CheckWhatsat(ctx, n, rep, sydney, radius, bound),
				fmt.Sprintf("WHATSAT after a move queries Places at the newest location (%s, stored at %s; the old one %s at %s)", sydney.Location, b, la.Location, a))
			Expect(rep.JSON).NotTo(Equal(before.JSON), "WHATSAT after a move: %s answers the same JSON as for the old location %s, so the check proves nothing (or Places was asked about the old place); seed %d; artifacts in %s",
				n, la.Location, seed, specDir())
		}
	})
})
