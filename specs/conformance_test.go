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

// iamatAccepted sends one IAMAT line to node and checks the exact reply: the AT line with
// the fields copied byte for byte and a diff that is the receive time minus tm. It
// returns the update, for WHATSAT checks.
func iamatAccepted(ctx context.Context, node, clientID, location, tm, why string) chaos.Accepted {
	GinkgoHelper()
	line := "IAMAT " + clientID + " " + location + " " + tm
	before := time.Now()
	out := rawAt(ctx, node, line+"\n")
	after := time.Now()
	diff, ok := matchAT(out, node, clientID, location, tm)
	Expect(ok).To(BeTrue(), "%s: %s must answer %q with \"AT %s <diff> %s\\n\" (the fields byte for byte), but answered %q; seed %d; artifacts in %s",
		why, node, truncate(line), node, truncate(clientID+" "+location+" "+tm), truncate(out), seed, specDir())
	expectDiff(diff, tm, before, after, why+" at "+node)
	return chaos.Accepted{Origin: node, Client: clientID, Location: location, Time: tm, AT: strings.TrimSuffix(out, "\n")}
}

// invalid sends text to node and checks that the answer is exactly "? " + want + "\n".
func invalid(ctx context.Context, node, text, want, why string) {
	GinkgoHelper()
	out := rawAt(ctx, node, text)
	Expect(out).To(Equal("? "+want+"\n"), "%s: %s must answer %q with \"? \" and the line as received, but answered %q; seed %d; artifacts in %s",
		why, node, truncate(text), truncate(out), seed, specDir())
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

var _ = Describe("Protocol conformance at the edges", Label("quick", "conformance"), func() {
	const loc = "+34.068930-118.445127"

	It("accepts latitudes and longitudes at their limits and rejects one step past them", func(ctx SpecContext) {
		n := "Hands"
		for _, l := range []string{"+90-118", "-90+118", "+90.0000000-180.000000", "-90.000+180.0", "+0+0", "-0-0", "+34-118", "+0.5-0.5", "+90+180", "-90-180"} {
			iamatAccepted(ctx, n, id("edge"), l, now(), "latitude within [-90, 90] and longitude within [-180, 180] are valid ("+l+")")
		}
		for _, l := range []string{"+90.0000001-118", "-90.0000001+0", "+0+180.000001", "+0-180.000001", "+91-118", "+0+181",
			"34.068930-118.445127", "+34.068930118.445127", "34.068930+118.445127", "+34.068930", "+-118", "+34-", "++34-118", "+34-118x", "+3a-118"} {
			c := id("edge")
			line := "IAMAT " + c + " " + l + " " + now()
			invalid(ctx, n, line+"\n", line, "a location out of range or without explicit signs is invalid ("+l+")")
			rep, err := cluster.WHATSAT(ctx, n, c, "1", 1)
			check(err)
			Expect(rep.Invalid).To(BeTrue(), "an invalid IAMAT stored %s at %s; seed %d; artifacts in %s", c, n, seed, specDir())
		}
	})

	It("accepts radius and bound at their limits and rejects one step past them", func(ctx SpecContext) {
		n := "Wilkes"
		u := iamatAccepted(ctx, n, id("edge"), loc, now(), "a plain IAMAT")
		for _, q := range []struct {
			radius string
			bound  int
		}{{"50", 1}, {"50.0", 20}, {"50.0000000", 5}, {"0.001", 1}, {"0.0000001", 20}, {"10.5871263", 7}, {"1", 20}} {
			line := fmt.Sprintf("WHATSAT %s %s %d", u.Client, q.radius, q.bound)
			out := rawAt(ctx, n, line+"\n")
			checkWhatsatRaw(ctx, n, out, u, q.radius, q.bound, fmt.Sprintf("0 < radius <= 50 and 1 <= bound <= 20 are valid (%q)", line))
		}
		for _, q := range []struct{ radius, bound string }{
			{"50.0000001", "5"}, {"51", "5"}, {"0", "5"}, {"0.0", "5"}, {"0.000", "5"}, {"-1", "5"}, {"-0.5", "5"}, {"1e1", "5"}, {"nan", "5"}, {"inf", "5"}, {"ten", "5"}, {"", "5"},
			{"10", "0"}, {"10", "21"}, {"10", "-1"}, {"10", "100"}, {"10", "1e1"}, {"10", "twenty"},
		} {
			line := "WHATSAT " + u.Client + " " + q.radius + " " + q.bound
			if q.radius == "" {
				line = "WHATSAT " + u.Client + " " + q.bound // a missing field
			}
			invalid(ctx, n, line+"\n", line, fmt.Sprintf("a radius outside (0, 50] or a bound outside [1, 20] is invalid (%q)", line))
		}
	})

	It("parses times exactly: signs and long fractions accepted, exponents and other forms rejected", func(ctx SpecContext) {
		n := "Goloman"
		for _, tm := range []string{"+1520023934.5", "1520023934", "1520023934.918963997", "+0", "0.000000001",
			now() + "4999999999", now() + "5000000000000000000001", now() + "0", "99999999999999999999.123456789012"} {
			iamatAccepted(ctx, n, id("time"), loc, tm, "a time with an optional sign and any number of fraction digits is valid, its diff rounded to nine decimals ("+tm+")")
		}
		for _, tm := range []string{"1e9", "1.5e9", "1520023934e0", "1E9", "nan", "NaN", "inf", "-inf", "Infinity", "1_520_023_934", "0x5a", "1,5", "1520023934.5.1",
			"++1", "+-1", "--1", "+", "-", ".", "\uff11\uff15", "\u0661\u0665", "12:00", "1520023934.5s"} {
			c := id("time")
			line := "IAMAT " + c + " " + loc + " " + tm
			invalid(ctx, n, line+"\n", line, "a time that is not [sign]digits[.digits] is invalid ("+tm+")")
		}
	})

	It("gives a negative client time a diff of exactly nine decimals, the receive time minus it", func(ctx SpecContext) {
		n := "Holiday"
		for _, tm := range []string{"-1.5", "-1.999999999", "-0.000000001", "-1520023934.5", "-1", "-1.0000000005"} {
			iamatAccepted(ctx, n, id("neg"), loc, tm, "a negative time is valid (ours) and its diff is now minus it, with nine decimals ("+tm+")")
		}
	})

	It("copies client ids, locations and times byte for byte into AT lines and WHATSAT answers", func(ctx SpecContext) {
		n := "Welsh"
		odd := []string{
			"Zoë-東京-🚀-" + id("utf8"),
			"\xff\xfe\x80-" + id("bytes"),
			"?-" + id("q"),
			"AT",
			"IAMAT",
			"WHATSAT-" + id("v"),
			"HERD-AT-" + id("h"),
			strings.Repeat("long-", 400) + id("long"), // about 2 KB (every spec's clients are resynced over a 4 KB/s link by another spec)
		}
		for _, c := range odd {
			for _, f := range []struct{ loc, tm string }{
				{"+34.0689300-118.4451270", now() + "000"},
				{"-33.8688+151.2093", "+" + now()},
			} {
				u := iamatAccepted(ctx, n, c, f.loc, f.tm, "fields are copied byte for byte")
				line := "WHATSAT " + c + " 2 2"
				out := rawAt(ctx, n, line+"\n")
				checkWhatsatRaw(ctx, n, out, u, "2", 2, fmt.Sprintf("WHATSAT answers with the AT line byte for byte (client %q)", truncate(c)))
			}
		}
	})

	It("answers invalid lines with exactly \"? \" and the line as received, without its terminator", func(ctx SpecContext) {
		n := "Hands"
		known := update(ctx, n)
		later := now()
		for _, tc := range []struct{ text, want string }{
			{"FOO bar\n", "FOO bar"},
			{"FOO bar\r\n", "FOO bar"},
			{"FOO bar\r\r\n", "FOO bar\r"},
			{"FOO  bar \t\n", "FOO  bar \t"},
			{" \tIAMAT a b\n", " \tIAMAT a b"},
			{"IAMAT " + known.Client + " " + loc + "\n", "IAMAT " + known.Client + " " + loc},
			{"IAMAT " + known.Client + " " + loc + " " + later + " extra\n", "IAMAT " + known.Client + " " + loc + " " + later + " extra"},
			{"WHATSAT " + known.Client + " 10\n", "WHATSAT " + known.Client + " 10"},
			{"WHATSAT " + known.Client + " 10 5 5\n", "WHATSAT " + known.Client + " 10 5 5"},
			{"WHATSAT nobody-" + known.Client + " 10 5\n", "WHATSAT nobody-" + known.Client + " 10 5"},
			{"whatsat " + known.Client + " 10 5\n", "whatsat " + known.Client + " 10 5"},
			{"Iamat x +1+1 1\n", "Iamat x +1+1 1"},
			{known.AT + "\n", known.AT},
			{"HERD-AT Hands +0.000000000 x +1+1 1\n", "HERD-AT Hands +0.000000000 x +1+1 1"},
			{"\x00\x01\xff\xfe\n", "\x00\x01\xff\xfe"},
			{"FOO at EOF", "FOO at EOF"},
			{strings.Repeat("x", 4000) + "\n", strings.Repeat("x", 4000)},
		} {
			invalid(ctx, n, tc.text, tc.want, "an invalid line gets \"? \" and the line as received")
		}
		for _, m := range cluster.Nodes() {
			rep, err := cluster.WHATSAT(ctx, m, known.Client, "1", 1)
			check(err)
			Expect(rep.AT).To(Equal(known.AT), "invalid lines changed what %s holds; seed %d; artifacts in %s", m, seed, specDir())
		}
	})
})
