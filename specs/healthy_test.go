package specs

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("A healthy herd", Label("quick", "delivery"), func() {
	It("floods an IAMAT at each server to all the others, with exact AT fields", func(ctx SpecContext) {
		for _, origin := range names {
			tm := now()
			u, err := cluster.Update(ctx, origin, id("healthy"), here, tm)
			check(err)
			f := strings.Split(u.AT, " ")
			Expect(f).To(HaveLen(6), "AT line %q", u.AT)
			Expect(f[0]).To(Equal("AT"))
			Expect(f[1]).To(Equal(origin), "the AT line names the server that received the IAMAT")
			Expect(f[2]).To(MatchRegexp(`^[+-][0-9]+\.[0-9]{9}$`), "diff has an explicit sign and nine decimals")
			diff, _ := strconv.ParseFloat(f[2], 64)
			Expect(math.Abs(diff)).To(BeNumerically("<", 5), "diff is the server's receive time minus the client's time")
			Expect(f[3:]).To(Equal([]string{u.Client, here, tm}), "fields copied byte for byte")
			got, err := cluster.AwaitDelivery(ctx, u)
			check(err)
			Expect(got).To(HaveLen(len(names)))
		}
	})

	It("answers WHATSAT at each server naming the origin, with the emulator's JSON cut to the bound", Label("whatsat"), func(ctx SpecContext) {
		origin := graph.leaf()
		u := update(ctx, origin)
		queries := []struct {
			radius string
			bound  int
		}{{"10", 1}, {"2.5", 3}, {"50", 20}, {"10.5871263", 7}, {"0.75", 20}}
		for i, n := range names {
			q := queries[i%len(queries)]
			rep, err := cluster.WHATSAT(ctx, n, u.Client, q.radius, q.bound)
			check(err)
			Expect(rep.AT).To(HavePrefix("AT "+origin+" "), "WHATSAT at %s names the origin server", n)
			check(cluster.CheckWhatsat(ctx, n, rep, u, q.radius, q.bound))
		}
		// A crowded query fills the bound exactly.
		rep, err := cluster.WHATSAT(ctx, graph.hub(), u.Client, "50", 20)
		check(err)
		var body struct{ Results, Places []any } // Nearby Search's results, Places API (New)'s places
		check(json.Unmarshal([]byte(rep.JSON), &body))
		Expect(len(body.Results) + len(body.Places)).To(Equal(20))
		Expect(rep.Raw).To(HaveSuffix("}\n\n"), "the answer ends with one blank line")
	})

	It("keeps the newest location per client and answers a stale IAMAT without storing or flooding it", Label("newer-wins"), func(ctx SpecContext) {
		older := now()
		u := update(ctx, graph.hub())
		leaf := graph.leaf()
		reply, err := cluster.IAMAT(ctx, leaf, u.Client, "-33.868800+151.209300", older)
		check(err)
		Expect(reply).To(HavePrefix("AT "+leaf+" "), "a stale IAMAT is still answered")
		// Links are FIFO: had the leaf flooded the stale one, it would arrive before this.
		update(ctx, leaf)
		for _, n := range names {
			rep, err := cluster.WHATSAT(ctx, n, u.Client, "1", 1)
			check(err)
			Expect(rep.AT).To(Equal(u.AT), "%s must still hold the newer location", n)
		}
	})
})
