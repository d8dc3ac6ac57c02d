package specs

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// farthestPair are two servers as many hops apart as the topology allows (the first such
// pair in the configuration's order), so that an update takes the longest way between.
func farthestPair() (string, string, int) {
	GinkgoHelper()
	o := cluster.Oracle()
	nodes := cluster.Nodes()
	best, a, b := -1, "", ""
	for i, x := range nodes {
		for _, y := range nodes[i+1:] {
			if h := o.Hops(x, y); h > best {
				best, a, b = h, x, y
			}
		}
	}
	Expect(best).To(BeNumerically(">=", 1), "the herd needs two connected servers")
	return a, b, best
}

// atEverywhere asks every server for client's AT line ("" where it is unknown).
func atEverywhere(ctx context.Context, client string) map[string]string {
	GinkgoHelper()
	out := map[string]string{}
	for _, n := range cluster.Nodes() {
		rep, err := cluster.WHATSAT(ctx, n, client, "1", 1)
		check(err, "WHATSAT at ", n)
		if !strings.HasPrefix(rep.AT, "AT ") { // unknown there
			out[n] = ""
		} else {
			out[n] = rep.AT
		}
	}
	return out
}

// fullPrecisionTimes are two client times a float64 cannot tell apart: they differ only
// in the 26th significant digit.
func fullPrecisionTimes() (older, newer string) {
	base := now() // seconds and nine decimals
	Expect(base).To(MatchRegexp(`^[0-9]+\.[0-9]{9}$`))
	return base + "0000001", base + "0000002"
}

var _ = Describe("Newer-wins at full precision", Label("quick", "newer-wins"), func() {
	DescribeTable("every server ends up answering WHATSAT with the newer of two IAMATs whose times differ only past the 16th significant digit",
		func(ctx SpecContext, newerFirst, waitForFirst bool) {
			a, b, hops := farthestPair()
			older, newer := fullPrecisionTimes()
			client := id("precision")
			first, second := older, newer
			locFirst, locSecond := "+34.068930-118.445127", "-33.868800+151.209300"
			if newerFirst {
				first, second = newer, older
			}
			u1, err := cluster.Update(ctx, a, client, locFirst, first)
			check(err, "IAMAT at ", a)
			if waitForFirst {
				_, err = cluster.AwaitDelivery(ctx, u1)
				check(err, "the first IAMAT spreads")
			}
			u2, err := cluster.Update(ctx, b, client, locSecond, second)
			check(err, "IAMAT at ", b)
			want := u2
			if newerFirst {
				want = u1
			}
			_, err = cluster.AwaitDelivery(ctx, want)
			check(err, "newer-wins at full precision: the newer update (time ", want.Time, ") reaches everyone")
			check(cluster.AwaitConvergence(ctx, map[string]string{client: want.AT}, 15*time.Second),
				"newer-wins at full precision: convergence on the newer update")
			for n, at := range atEverywhere(ctx, client) {
				Expect(at).To(Equal(want.AT), fmt.Sprintf(
					"newer-wins at full precision: %s answers %q, but the newest IAMAT is %q (times %s at %s and %s at %s, %d hops apart, differ only in the 26th digit: compared through a float64?); seed %d; artifacts in %s",
					n, at, want.AT, first, a, second, b, hops, seed, specDir()))
			}
		},
		Entry("newer first, the older at once at the far server", true, false),
		Entry("newer first, the older once the newer has spread", true, true),
		Entry("older first, the newer at once at the far server", false, false),
		Entry("older first, the newer once the older has spread", false, true),
	)

	DescribeTable("all servers converge on one same AT line for two IAMATs with identical times at two servers",
		func(ctx SpecContext, waitForFirst bool) {
			needs("tie-break", "one same AT line for equal times (docs/PROTOCOL.md keeps the newer; equal times need a rule of the herd's own)")
			a, b, _ := farthestPair()
			tm := now() + "0000001"
			client := id("tie")
			u1, err := cluster.Update(ctx, a, client, "+34.068930-118.445127", tm)
			check(err, "IAMAT at ", a)
			if waitForFirst {
				_, err = cluster.AwaitDelivery(ctx, u1)
				check(err, "the first IAMAT spreads")
			}
			u2, err := cluster.Update(ctx, b, client, "-33.868800+151.209300", tm)
			check(err, "IAMAT at ", b)
			var last map[string]string
			Eventually(ctx, func() bool {
				last = atEverywhere(ctx, client)
				for _, at := range last {
					if at != last[cluster.Nodes()[0]] || (at != u1.AT && at != u2.AT) {
						return false
					}
				}
				return true
			}).WithTimeout(15*time.Second).WithPolling(50*time.Millisecond).Should(BeTrue(), func() string {
				var s []string
				for _, n := range cluster.Nodes() {
					s = append(s, fmt.Sprintf("%s answers %q", n, last[n]))
				}
				return fmt.Sprintf("tie convergence: IAMATs with the same time %s at %s (%q) and %s (%q) must leave every server with one same AT line of the two within 15s: %s; seed %d; artifacts in %s",
					tm, a, u1.AT, b, u2.AT, strings.Join(s, "; "), seed, specDir())
			})
		},
		Entry("at once", false),
		Entry("the second once the first has spread", true),
	)
})

var _ = Describe("Newer-wins at full precision across a cut", Label("partition", "newer-wins"), func() {
	DescribeTable("servers that took two IAMATs for one client while cut apart all answer with the newer one once healed, or with one same AT line for equal times",
		func(ctx SpecContext, times func() (atA, atB string), newer int) {
			if newer == 0 {
				needs("tie-break", "one same AT line for equal times")
			}
			a, b, _ := farthestPair()
			tA, tB := times()
			if strings.HasPrefix(tA, "-") {
				needs("signed-times", "negative client times")
			}
			client := id("cut")
			inject(ctx, chaos.Isolate{Node: b})
			// A control: an update at b with a time any comparison orders, sent first, so
			// that b tries to flood it long before the heal. Without a resync after the
			// heal it never leaves b, and that is the convergence property's failure, not
			// newer-wins'.
			control, err := cluster.Update(ctx, b, id("control"), here, now())
			check(err, "IAMAT at ", b)
			uA, err := cluster.Update(ctx, a, client, here, tA)
			check(err, "IAMAT at ", a)
			_, err = cluster.AwaitDelivery(ctx, uA) // everywhere but b
			check(err)
			check(cluster.CheckNotDelivered(ctx, control))
			uB, err := cluster.Update(ctx, b, client, "-33.868800+151.209300", tB)
			check(err, "IAMAT at ", b)
			check(cluster.HealAll(ctx))
			check(cluster.AwaitConvergence(ctx, map[string]string{control.Client: control.AT}, 15*time.Second), "the control update from the cut-off server")
			var last map[string]string
			Eventually(ctx, func() bool {
				last = atEverywhere(ctx, client)
				for _, at := range last {
					switch {
					case newer == 0 && (at != last[a] || (at != uA.AT && at != uB.AT)):
						return false
					case newer < 0 && at != uA.AT, newer > 0 && at != uB.AT:
						return false
					}
				}
				return true
			}).WithTimeout(15*time.Second).WithPolling(50*time.Millisecond).Should(BeTrue(), func() string {
				var s []string
				for _, n := range cluster.Nodes() {
					s = append(s, fmt.Sprintf("%s answers %q", n, last[n]))
				}
				want := "one same AT line of the two"
				switch {
				case newer < 0:
					want = fmt.Sprintf("the newer %q", uA.AT)
				case newer > 0:
					want = fmt.Sprintf("the newer %q", uB.AT)
				}
				return fmt.Sprintf("newer-wins across a cut: %s (time %s) and %s (time %s, cut off from the rest) took IAMATs for %s; 15s after healing every server must answer %s, but %s; seed %d; artifacts in %s",
					a, tA, b, tB, client, want, strings.Join(s, "; "), seed, specDir())
			})
		},
		Entry("times apart only in the 26th digit, the newer at the first", func() (string, string) { o, n := fullPrecisionTimes(); return n, o }, -1),
		Entry("times apart only in the 26th digit, the newer at the cut-off one", func() (string, string) { o, n := fullPrecisionTimes(); return o, n }, +1),
		Entry("negative times apart only in the 20th digit, the newer at the cut-off one", func() (string, string) {
			return "-1.0000000000000000002", "-1.0000000000000000001"
		}, +1),
		Entry("equal times", func() (string, string) { t := now() + "0000001"; return t, t }, 0),
	)
})
