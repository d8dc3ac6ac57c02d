package specs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/client"
)

var diffPattern = regexp.MustCompile(`^[+-][0-9]+\.[0-9]{9}$`)

// matchAT checks that out is exactly the reply to a valid IAMAT received by node: "AT",
// node, an explicit-sign nine-decimal diff, the three fields byte for byte, and "\n". It
// returns the diff. (Byte-wise: client ids need not be UTF-8, so no regexp over them.)
func matchAT(out, node, clientID, location, tm string) (string, bool) {
	prefix, suffix := "AT "+node+" ", " "+clientID+" "+location+" "+tm+"\n"
	if len(out) < len(prefix)+len(suffix) || !strings.HasPrefix(out, prefix) || !strings.HasSuffix(out, suffix) {
		return "", false
	}
	diff := out[len(prefix) : len(out)-len(suffix)]
	return diff, diffPattern.MatchString(diff)
}

// beAT matches the exact reply to a valid IAMAT (see matchAT).
func beAT(node, clientID, location, tm string) OmegaMatcher {
	return WithTransform(func(out string) bool {
		_, ok := matchAT(out, node, clientID, location, tm)
		return ok
	}, BeTrue())
}

// rawAt sends text to node as a grader does (write, half-close, read everything) and
// returns the whole answer.
func rawAt(ctx context.Context, node, text string) string {
	GinkgoHelper()
	out, err := cluster.Raw(ctx, node, text)
	check(err, "sending ", fmt.Sprintf("%q", text), " to ", node)
	return out
}

// bigTime is a decimal client time (optional sign, digits, optional fraction) exactly.
func bigTime(tm string) *big.Rat {
	GinkgoHelper()
	r, ok := new(big.Rat).SetString(strings.TrimPrefix(tm, "+"))
	Expect(ok).To(BeTrue(), "client time %q", tm)
	return r
}

func ratOf(t time.Time) *big.Rat {
	return new(big.Rat).Add(new(big.Rat).SetInt64(t.Unix()), big.NewRat(int64(t.Nanosecond()), 1e9))
}

// expectDiff checks that diff is within a second of now - tm for some now between
// before and after (this machine's clock, which the local servers share).
func expectDiff(diff, tm string, before, after time.Time, what string) {
	GinkgoHelper()
	d, ok := new(big.Rat).SetString(diff)
	Expect(ok).To(BeTrue(), "%s: diff %q does not parse; seed %d; artifacts in %s", what, diff, seed, specDir())
	t := bigTime(tm)
	lo := new(big.Rat).Sub(new(big.Rat).Sub(ratOf(before), t), big.NewRat(1, 1))
	hi := new(big.Rat).Add(new(big.Rat).Sub(ratOf(after), t), big.NewRat(1, 1))
	Expect(d.Cmp(lo) >= 0 && d.Cmp(hi) <= 0).To(BeTrue(),
		"%s: diff %s for client time %s is not the receive time minus the client time (between %s and %s); seed %d; artifacts in %s",
		what, diff, tm, lo.FloatString(9), hi.FloatString(9), seed, specDir())
}

// checkWhatsatRaw checks a whole WHATSAT answer as a grader reads it against the
// emulator's answer for the update the server must hold.
func checkWhatsatRaw(ctx context.Context, node, out string, u chaos.Accepted, radius string, bound int, what string) {
	GinkgoHelper()
	rep, err := client.ParseWhatsat(out)
	check(err, what, ": WHATSAT answer ", fmt.Sprintf("%q", out))
	Expect(out).To(HaveSuffix("}\n\n"), "%s: a WHATSAT answer ends with the JSON and one blank line; seed %d; artifacts in %s", what, seed, specDir())
	check(cluster.CheckWhatsat(ctx, node, rep, u, radius, bound), what)
}

// The six separator bytes that docs/PROTOCOL.md allows around fields and lines.
var separators = []struct{ name, b string }{
	{"space", " "}, {"TAB", "\t"}, {"CR", "\r"}, {"FF", "\f"}, {"VT", "\v"},
}

var _ = Describe("Lines as graders send them", Label("quick", "conformance", "replies"), func() {
	const loc = "+34.068930-118.445127"

	It("answers an IAMAT that ends at EOF without a newline with its AT line and a newline", func(ctx SpecContext) {
		for _, n := range cluster.Nodes() {
			c, tm := id("eof"), now()
			out := rawAt(ctx, n, "IAMAT "+c+" "+loc+" "+tm)
			Expect(out).To(beAT(n, c, loc, tm),
				"the last command of a connection that ends at EOF without a newline is answered: %s answered %q; seed %d; artifacts in %s", n, out, seed, specDir())
		}
	})

	It("answers a WHATSAT that ends at EOF without a newline with the whole answer", func(ctx SpecContext) {
		u := update(ctx, graph.leaf())
		for _, n := range cluster.Nodes() {
			out := rawAt(ctx, n, "WHATSAT "+u.Client+" 10 3")
			checkWhatsatRaw(ctx, n, out, u, "10", 3, fmt.Sprintf("the last WHATSAT of a connection that ends at EOF without a newline is answered (at %s)", n))
		}
	})

	It("accepts CRLF line endings and answers without the CR", func(ctx SpecContext) {
		n := graph.at(1)
		c, tm := id("crlf"), now()
		out := rawAt(ctx, n, "IAMAT "+c+" "+loc+" "+tm+"\r\nWHATSAT "+c+" 5 2\r\n")
		at, rest, _ := strings.Cut(out, "\n")
		Expect(at+"\n").To(beAT(n, c, loc, tm),
			"a CRLF-terminated IAMAT is answered with its AT line (no CR in it): %s answered %q; seed %d; artifacts in %s", n, out, seed, specDir())
		u := chaos.Accepted{Origin: n, Client: c, Location: loc, Time: tm, AT: at}
		checkWhatsatRaw(ctx, n, rest, u, "5", 2, "a CRLF-terminated WHATSAT is answered")
	})

	It("answers several commands sent in one write, in order", func(ctx SpecContext) {
		n := graph.at(0)
		c1, c2 := id("multi"), id("multi")
		t1, t2 := now(), now()
		text := "IAMAT " + c1 + " " + loc + " " + t1 + "\n" +
			"BOGUS line one\n" +
			"IAMAT " + c2 + " -33.868800+151.209300 " + t2 + "\n" +
			"WHATSAT " + c1 + " 10 2\n" +
			"WHATSAT " + c1 + " 51 2\n" +
			"WHATSAT " + c2 + " 1 1\n" +
			"IAMAT " + c1 + " " + loc + " " + t1 // the last at EOF
		out := rawAt(ctx, n, text)
		fail := fmt.Sprintf("several commands in one write are answered in order: %s answered %q; seed %d; artifacts in %s", n, out, seed, specDir())
		lines := strings.SplitAfter(out, "\n")
		Expect(len(lines)).To(BeNumerically(">", 6), fail)
		Expect(lines[0]).To(beAT(n, c1, loc, t1), fail)
		Expect(lines[1]).To(Equal("? BOGUS line one\n"), fail)
		Expect(lines[2]).To(beAT(n, c2, "-33.868800+151.209300", t2), fail)
		rest := strings.Join(lines[3:], "")
		// WHATSAT c1: the AT line, JSON, blank line.
		Expect(rest).To(HavePrefix(strings.TrimSuffix(lines[0], "\n")+"\n"), fail)
		end := strings.Index(rest, "\n\n")
		Expect(end).To(BeNumerically(">", 0), fail)
		checkWhatsatRaw(ctx, n, rest[:end+2], chaos.Accepted{Origin: n, Client: c1, Location: loc, Time: t1, AT: strings.TrimSuffix(lines[0], "\n")}, "10", 2, fail)
		rest = rest[end+2:]
		Expect(rest).To(HavePrefix("? WHATSAT "+c1+" 51 2\n"), fail)
		rest = strings.TrimPrefix(rest, "? WHATSAT "+c1+" 51 2\n")
		end = strings.Index(rest, "\n\n")
		Expect(end).To(BeNumerically(">", 0), fail)
		checkWhatsatRaw(ctx, n, rest[:end+2], chaos.Accepted{Origin: n, Client: c2, Location: "-33.868800+151.209300", Time: t2, AT: strings.TrimSuffix(lines[2], "\n")}, "1", 1, fail)
		Expect(rest[end+2:]).To(beAT(n, c1, loc, t1), fail)
	})

	It("answers a whole line at once though part of the next came with it", func(ctx SpecContext) {
		n := graph.at(4)
		conn, err := chaos.DialNode(ctx, cluster.Backend(), n)
		check(err)
		defer conn.Close()
		c1, c2, tm := id("partial"), id("partial"), now()
		r := bufio.NewReader(conn)
		// A client that waits for each reply: the half line must not hold the whole one's.
		_, err = io.WriteString(conn, "IAMAT "+c1+" "+loc+" "+tm+"\nIAMAT "+c2)
		check(err)
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		first, err := r.ReadString('\n')
		Expect(err).NotTo(HaveOccurred(), "a reply is not held back by a partial line after it: %s sent nothing for \"IAMAT %s ...\\n\" within 3 s while \"IAMAT %s\" waited for its end (got %q); seed %d; artifacts in %s",
			n, c1, c2, first, seed, specDir())
		Expect(first).To(beAT(n, c1, loc, tm))
		_, err = io.WriteString(conn, " "+loc+" "+tm+"\n")
		check(err)
		second, err := r.ReadString('\n')
		check(err, "the reply to the line finished later")
		Expect(second).To(beAT(n, c2, loc, tm))
	})

	It("ignores blank lines: they get no reply", func(ctx SpecContext) {
		needs("blank-lines", "blank lines get no reply")
		n := graph.at(2)
		out := rawAt(ctx, n, "\n \n\t\r\n\f\v \n")
		Expect(out).To(Equal(""), "blank lines are ignored (no reply): %s answered %q; seed %d; artifacts in %s", n, out, seed, specDir())
		c, tm := id("blank"), now()
		out = rawAt(ctx, n, "\n\r\n  \nIAMAT "+c+" "+loc+" "+tm+"\n\n \t\n")
		Expect(out).To(beAT(n, c, loc, tm),
			"blank lines around a command are ignored (no reply): %s answered %q; seed %d; artifacts in %s", n, out, seed, specDir())
	})

	It("accepts each of the six white-space bytes around and between fields", func(ctx SpecContext) {
		n := graph.at(4)
		for _, sep := range separators {
			c, tm := id("ws"), now()
			line := sep.b + "IAMAT" + sep.b + c + sep.b + sep.b + loc + sep.b + tm + sep.b
			out := rawAt(ctx, n, line+"\n")
			Expect(out).To(beAT(n, c, loc, tm),
				"%s separates fields and is ignored at both ends of a line: %s answered %q to %q; seed %d; artifacts in %s", sep.name, n, out, line, seed, specDir())
			// A WHATSAT of that client with every separator in it, at EOF without a newline.
			at := strings.TrimSuffix(out, "\n")
			line = " \t\r\f\vWHATSAT" + sep.b + c + " \t\f\v" + "10" + sep.b + "1" + " \t\f\v"
			out = rawAt(ctx, n, line)
			checkWhatsatRaw(ctx, n, out, chaos.Accepted{Origin: n, Client: c, Location: loc, Time: tm, AT: at}, "10", 1,
				fmt.Sprintf("white space (%s among them) separates the fields of %q", sep.name, line))
		}
		c, tm := id("ws"), now()
		out := rawAt(ctx, n, "\v\f\t IAMAT\v"+c+"\f"+loc+"\t"+tm+"\r \n")
		Expect(out).To(beAT(n, c, loc, tm),
			"VT, FF, TAB, CR and space separate fields: %s answered %q; seed %d; artifacts in %s", n, out, seed, specDir())
	})

	It("makes a command invalid when a field is separated by a byte that is not one of the six", func(ctx SpecContext) {
		n := graph.at(0)
		for _, odd := range []string{"\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u0085", "\u2028", "\u00a0", "\x00", "\u3000"} {
			c, tm := id("odd"), now()
			for _, line := range []string{
				"IAMAT " + c + odd + loc + " " + tm,
				"IAMAT" + odd + c + " " + loc + " " + tm,
				"IAMAT " + c + " " + loc + odd + tm,
			} {
				out := rawAt(ctx, n, line+"\n")
				Expect(out).To(Equal("? "+line+"\n"),
					"%q is not white space, so %q has the wrong fields and is invalid: %s answered %q; seed %d; artifacts in %s", odd, line, n, out, seed, specDir())
			}
			rep, err := cluster.WHATSAT(ctx, n, c, "1", 1)
			check(err)
			Expect(rep.AT).NotTo(HavePrefix("AT "), "an invalid IAMAT stored %s at %s: %q; seed %d; artifacts in %s", c, n, rep.Raw, seed, specDir())
		}
	})
})
