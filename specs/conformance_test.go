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

var _ = Describe("Protocol conformance at the edges", Label("quick", "conformance", "replies"), func() {
	const loc = "+34.068930-118.445127"

	It("accepts locations in the common format, with fraction digits, at the limits of the ranges", func(ctx SpecContext) {
		n := graph.at(1)
		for _, l := range []string{"+90.000000-118.000000", "-90.000000+118.000000", "+90.0000000-180.000000", "-90.000+180.0", "+0.0+0.0", "-0.0-0.0", "+0.5-0.5", "+34.068930-118.445127"} {
			iamatAccepted(ctx, n, id("edge"), l, now(), "a location of signed decimal degrees is valid ("+l+")")
		}
	})

	It("accepts locations whose parts have no fraction (ours: short-locations)", func(ctx SpecContext) {
		needs("short-locations", "locations without fraction digits")
		n := graph.at(1)
		for _, l := range []string{"+90-118", "-90+118", "+0+0", "-0-0", "+34-118", "+90+180", "-90-180"} {
			iamatAccepted(ctx, n, id("edge"), l, now(), "each part of a location may have no fraction ("+l+")")
		}
	})

	// rejectsLocations checks each location makes its IAMAT invalid and stores nothing.
	rejectsLocations := func(ctx context.Context, n, why string, locs ...string) {
		GinkgoHelper()
		for _, l := range locs {
			c := id("edge")
			line := "IAMAT " + c + " " + l + " " + now()
			invalid(ctx, n, line+"\n", line, why+" ("+l+")")
			rep, err := cluster.WHATSAT(ctx, n, c, "1", 1)
			check(err)
			Expect(rep.AT).NotTo(HavePrefix("AT "), "an invalid IAMAT stored %s at %s; seed %d; artifacts in %s", c, n, seed, specDir())
		}
	}

	It("rejects locations without explicit signs or with other bytes", func(ctx SpecContext) {
		rejectsLocations(ctx, graph.at(1), "a location without explicit signs, or with other bytes, is invalid",
			"34.068930-118.445127", "+34.068930118.445127", "34.068930+118.445127", "+34.068930", "+-118.000000", "+34.000000-", "++34.000000-118.000000", "+34.068930-118.445127x", "+3a.068930-118.445127")
	})

	It("rejects latitudes and longitudes one step past their limits (ours: range-checks)", func(ctx SpecContext) {
		needs("range-checks", "latitude and longitude ranges")
		rejectsLocations(ctx, graph.at(1), "a latitude outside [-90, 90] or a longitude outside [-180, 180] is invalid",
			"+90.0000001-118.000000", "-90.0000001+0.000000", "+0.000000+180.000001", "+0.000000-180.000001", "+91.000000-118.000000", "+0.000000+181.000000")
	})

	It("accepts radius and bound at their limits and rejects one step past them", func(ctx SpecContext) {
		n := graph.at(4)
		u := iamatAccepted(ctx, n, id("edge"), loc, now(), "a plain IAMAT")
		for _, q := range []struct {
			radius string
			bound  int
		}{{"50", 1}, {"50.0", 20}, {"50.0000000", 5}, {"0.001", 1}, {"0.0000001", 20}, {"10.5871263", 7}, {"1", 20}} {
			line := fmt.Sprintf("WHATSAT %s %s %d", u.Client, q.radius, q.bound)
			out := rawAt(ctx, n, line+"\n")
			checkWhatsatRaw(ctx, n, out, u, q.radius, q.bound, fmt.Sprintf("0 < radius <= 50 and 1 <= bound <= 20 are valid (%q)", line))
		}
		bad := []struct{ radius, bound string }{
			{"50.0000001", "5"}, {"51", "5"}, {"0", "5"}, {"0.0", "5"}, {"0.000", "5"}, {"-1", "5"}, {"-0.5", "5"}, {"1e1", "5"}, {"nan", "5"}, {"inf", "5"}, {"ten", "5"}, {"", "5"},
			{"10", "21"}, {"10", "100"}, {"10", "1e1"}, {"10", "twenty"},
		}
		if claims("bound-at-least-1") {
			bad = append(bad, struct{ radius, bound string }{"10", "0"}, struct{ radius, bound string }{"10", "-1"})
		}
		for _, q := range bad {
			line := "WHATSAT " + u.Client + " " + q.radius + " " + q.bound
			if q.radius == "" {
				line = "WHATSAT " + u.Client + " " + q.bound // a missing field
			}
			invalid(ctx, n, line+"\n", line, fmt.Sprintf("a radius outside (0, 50] or a bound outside [1, 20] is invalid (%q)", line))
		}
	})

	It("parses times exactly: signs and long fractions accepted, exponents and other forms rejected", func(ctx SpecContext) {
		n := graph.at(0)
		good := []string{"1520023934", "1520023934.918963997", "0.000000001",
			now() + "4999999999", now() + "5000000000000000000001", now() + "0", "99999999999999999999.123456789012"}
		if claims("signed-times") {
			good = append(good, "+1520023934.5", "+0")
		}
		for _, tm := range good {
			iamatAccepted(ctx, n, id("time"), loc, tm, "a time with an optional sign and any number of fraction digits is valid, its diff rounded to nine decimals ("+tm+")")
		}
		for _, tm := range []string{"1e9", "1.5e9", "1520023934e0", "1E9", "nan", "NaN", "inf", "-inf", "Infinity", "1_520_023_934", "0x5a", "1,5", "1520023934.5.1",
			"++1", "+-1", "--1", "+", "-", ".", "\uff11\uff15", "\u0661\u0665", "12:00", "1520023934.5s"} {
			c := id("time")
			line := "IAMAT " + c + " " + loc + " " + tm
			invalid(ctx, n, line+"\n", line, "a time that is not [sign]digits[.digits] is invalid ("+tm+")")
		}
	})

	It("gives a negative client time a diff of exactly nine decimals, the receive time minus it (ours: signed-times)", func(ctx SpecContext) {
		needs("signed-times", "negative client times")
		n := graph.at(2)
		for _, tm := range []string{"-1.5", "-1.999999999", "-0.000000001", "-1520023934.5", "-1", "-1.0000000005"} {
			iamatAccepted(ctx, n, id("neg"), loc, tm, "a negative time is valid (ours) and its diff is now minus it, with nine decimals ("+tm+")")
		}
	})

	It("copies client ids, locations and times byte for byte into AT lines and WHATSAT answers", func(ctx SpecContext) {
		n := graph.at(3)
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
				{"-33.868800+151.209300", now()},
			} {
				u := iamatAccepted(ctx, n, c, f.loc, f.tm, "fields are copied byte for byte")
				line := "WHATSAT " + c + " 2 2"
				out := rawAt(ctx, n, line+"\n")
				checkWhatsatRaw(ctx, n, out, u, "2", 2, fmt.Sprintf("WHATSAT answers with the AT line byte for byte (client %q)", truncate(c)))
			}
		}
	})

	It("answers invalid lines with exactly \"? \" and the line as received, without its terminator", func(ctx SpecContext) {
		n := graph.at(1)
		known := update(ctx, n)
		later := now()
		cases := []struct{ text, want string }{
			{"FOO bar\n", "FOO bar"},
			{"FOO bar\r\n", "FOO bar"},
			{"FOO bar\r\r\n", "FOO bar\r"},
			{"FOO  bar \t\n", "FOO  bar \t"},
			{" \tIAMAT a b\n", " \tIAMAT a b"},
			{"IAMAT " + known.Client + " " + loc + "\n", "IAMAT " + known.Client + " " + loc},
			{"IAMAT " + known.Client + " " + loc + " " + later + " extra\n", "IAMAT " + known.Client + " " + loc + " " + later + " extra"},
			{"WHATSAT " + known.Client + " 10\n", "WHATSAT " + known.Client + " 10"},
			{"WHATSAT " + known.Client + " 10 5 5\n", "WHATSAT " + known.Client + " 10 5 5"},
			{"whatsat " + known.Client + " 10 5\n", "whatsat " + known.Client + " 10 5"},
			{"Iamat x " + loc + " 1\n", "Iamat x " + loc + " 1"},
			{"\x00\x01\xff\xfe\n", "\x00\x01\xff\xfe"},
			{"FOO at EOF", "FOO at EOF"},
			{strings.Repeat("x", 4000) + "\n", strings.Repeat("x", 4000)},
		}
		if claims("unknown-client") {
			unknown := "WHATSAT nobody-" + known.Client + " 10 5"
			cases = append(cases, struct{ text, want string }{unknown + "\n", unknown})
		}
		if claims("peer-protocol") {
			// Our herd's peers speak their own verbs: an AT line or a HERD-AT from a client is
			// invalid. (A herd whose peers flood AT lines may take the first from anyone.)
			herdAT := "HERD-AT " + n + " +0.000000000 x +1+1 1"
			cases = append(cases, struct{ text, want string }{known.AT + "\n", known.AT}, struct{ text, want string }{herdAT + "\n", herdAT})
		}
		for _, tc := range cases {
			invalid(ctx, n, tc.text, tc.want, "an invalid line gets \"? \" and the line as received")
		}
		for _, m := range cluster.Nodes() {
			rep, err := cluster.WHATSAT(ctx, m, known.Client, "1", 1)
			check(err)
			Expect(rep.AT).To(Equal(known.AT), "invalid lines changed what %s holds; seed %d; artifacts in %s", m, seed, specDir())
		}
	})
})
