package specs

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// timePairs are an older and a newer client time from every corner of the time space
// docs/PROTOCOL.md allows: negative times (ours), zero, times past 64 bits, more fraction
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

var _ = Describe("Newer-wins over the whole time space", Label("conformance", "newer-wins"), func() {
	DescribeTable("an older IAMAT never replaces a newer one, at the server that got it or anywhere it floods, and every server ends with the newer",
		func(ctx SpecContext, older, newer string) {
			if strings.HasPrefix(older, "-") || strings.HasPrefix(newer, "-") {
				needs("signed-times", "negative client times")
			}
			a, b, _ := farthestPair()
			// The newer first, at a; then the older at b, once the newer is everywhere.
			c1 := id("space")
			n1, err := cluster.Update(ctx, a, c1, here, newer)
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
			o2, err := cluster.Update(ctx, a, c2, here, older)
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
