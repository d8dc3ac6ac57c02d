package specs

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// timePairs are an older and a newer client time from every corner of the time space
// PROTOCOL.md allows: negative times (ours), zero, times past 64 bits, more fraction
// digits than nanoseconds, trailing zeros. A comparison through a float, by magnitude,
// by string length or by the first nine decimals gets at least one of them wrong.
var timePairs = []TableEntry{
	Entry("-5 and -1 (negative times: the one nearer zero is newer)", "-5", "-1"),
	Entry("-0.000000001 and 0", "-0.000000001", "0"),
	Entry("-1.5 and -1.25 (negative, with fractions)", "-1.5", "-1.25"),
	Entry("times past 64 bits: 20 digits and 21", "99999999999999999999.5", "100000000000000000000"),
	Entry("ten fraction digits that differ in the tenth", "1520023934.1234567891", "1520023934.1234567892"),
	Entry("trailing zeros: 1520023934.100000000 and 1520023934.2", "1520023934.100000000", "1520023934.2"),
	Entry("leading zeros: 0999 and 1000", "0999", "1000"),
}

var _ = Describe("Newer-wins over the whole time space", Label("conformance"), func() {
	DescribeTable("an older IAMAT never replaces a newer one, at the server that got it or anywhere it floods, and every server ends with the newer",
		func(ctx SpecContext, older, newer string) {
			a, b, _ := farthestPair()
			// The newer first, at a; then the older at b, once the newer is everywhere.
			c1 := id("space")
			n1, err := cluster.Update(ctx, a, c1, "+34.068930-118.445127", newer)
			check(err, "IAMAT at ", a, " with time ", newer)
			_, err = cluster.AwaitDelivery(ctx, n1)
			check(err)
			reply, err := cluster.IAMAT(ctx, b, c1, "-33.868800+151.209300", older)
			check(err, "IAMAT at ", b, " with time ", older)
			Expect(reply).To(HavePrefix("AT "+b+" "), "a stale IAMAT is still answered")
			Expect(reply).To(HaveSuffix(" "+older), "the time is echoed as sent")
			for _, u := range []struct{ at, tm string }{{n1.AT, newer}, {reply, older}} {
				if sign := diffSign(u.tm); sign != "" {
					Expect(strings.Fields(u.at)[2]).To(HavePrefix(sign), fmt.Sprintf(
						"the diff of %q is the server's time minus the client's %s, so its sign is %s; seed %d; artifacts in %s", u.at, u.tm, sign, seed, specDir()))
				}
			}
			// The older first, at a; then the newer at b.
			c2 := id("space")
			o2, err := cluster.Update(ctx, a, c2, "+34.068930-118.445127", older)
			check(err, "IAMAT at ", a, " with time ", older)
			_, err = cluster.AwaitDelivery(ctx, o2)
			check(err)
			n2, err := cluster.Update(ctx, b, c2, "-33.868800+151.209300", newer)
			check(err, "IAMAT at ", b, " with time ", newer)
			_, err = cluster.AwaitDelivery(ctx, n2)
			check(err, "newer-wins: the newer time ", newer, " after ", older)
			// The stale one, had it been flooded or stored, would have arrived by now:
			// links are FIFO and the newer came after it.
			for _, want := range []chaos.Accepted{n1, n2} {
				for n, at := range atEverywhere(ctx, want.Client) {
					Expect(at).To(Equal(want.AT), fmt.Sprintf(
						"newer-wins: %s answers %q, but the newest IAMAT is %q (times %s and %s, sent to %s and %s); seed %d; artifacts in %s",
						n, at, want.AT, older, newer, a, b, seed, specDir()))
				}
			}
		},
		timePairs,
	)

	It("keeps the newer of two IAMATs taken on both sides of a partition, whichever side took the older, after it heals", func(ctx SpecContext) {
		a, b, _ := farthestPair()
		base := now()
		older, newer := base+"1", base+"2" // ten fraction digits
		for _, side := range []struct{ olderAt, newerAt string }{{a, b}, {b, a}} {
			client := id("split-newer")
			f := inject(ctx, chaos.Isolate{Node: a})
			n, err := cluster.Update(ctx, side.newerAt, client, "+34.068930-118.445127", newer)
			check(err, "IAMAT at ", side.newerAt)
			_, err = cluster.Update(ctx, side.olderAt, client, "-33.868800+151.209300", older)
			check(err, "IAMAT at ", side.olderAt)
			check(cluster.Heal(ctx, f))
			check(cluster.AwaitConvergence(ctx, map[string]string{client: n.AT}, 15*time.Second),
				"newer-wins after a partition: ", side.olderAt, " took the older (", older, "), ", side.newerAt, " the newer (", newer, ")")
			for node, at := range atEverywhere(ctx, client) {
				Expect(at).To(Equal(n.AT), fmt.Sprintf(
					"newer-wins after a partition: %s answers %q, but the newest IAMAT is %q; seed %d; artifacts in %s", node, at, n.AT, seed, specDir()))
			}
		}
	})

	It("settles two IAMATs with equal times taken on both sides of a partition on one AT line everywhere after it heals", func(ctx SpecContext) {
		a, b, _ := farthestPair()
		tm := now()
		client := id("tie-split")
		f := inject(ctx, chaos.Isolate{Node: a})
		u1, err := cluster.Update(ctx, a, client, "+34.068930-118.445127", tm)
		check(err, "IAMAT at ", a)
		u2, err := cluster.Update(ctx, b, client, "-33.868800+151.209300", tm)
		check(err, "IAMAT at ", b)
		_, err = cluster.AwaitDelivery(ctx, u2) // the side of b; a is cut off
		check(err)
		check(cluster.Heal(ctx, f))
		var last map[string]string
		Eventually(ctx, func() bool {
			last = atEverywhere(ctx, client)
			first := last[cluster.Nodes()[0]]
			for _, at := range last {
				if at != first || (at != u1.AT && at != u2.AT) {
					return false
				}
			}
			return true
		}).WithTimeout(15*time.Second).WithPolling(50*time.Millisecond).Should(BeTrue(), func() string {
			var s []string
			for _, n := range cluster.Nodes() {
				s = append(s, fmt.Sprintf("%s answers %q", n, last[n]))
			}
			return fmt.Sprintf("tie convergence after a partition: IAMATs with the same time %s at %s (%q, isolated) and %s (%q) must leave every server with one same AT line of the two within 15s of the heal: %s; seed %d; artifacts in %s",
				tm, a, u1.AT, b, u2.AT, strings.Join(s, "; "), seed, specDir())
		})
	})
})

// diffSign is the sign a diff must have for a client time far from now: "+" for a time
// long past (negative, or under ten integer digits), "-" for one far in the future (over
// ten integer digits), "" when it is near now.
func diffSign(tm string) string {
	if strings.HasPrefix(tm, "-") {
		return "+"
	}
	digits := strings.TrimLeft(strings.SplitN(strings.TrimPrefix(tm, "+"), ".", 2)[0], "0")
	switch {
	case len(digits) < 10:
		return "+"
	case len(digits) > 10:
		return "-"
	}
	return ""
}
