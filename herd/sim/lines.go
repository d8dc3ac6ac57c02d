package sim

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// What clients send beyond the generator's valid IAMATs: lines drawn from the whole space
// of input, valid and invalid, with every kind of white space and fields out of range by
// the smallest step (docs/PROTOCOL.md, 1.2 to 1.6). The judge (oracle.go) decides what
// each deserves; nothing here says whether a line is valid.

// Field values at the edges. Valid and invalid ones are mixed on purpose.
var (
	edgeLats = []string{"+90", "-90", "+90.0", "-90.000000", "+90.0000001", "-90.000001", "+91", "-91",
		"+89.9999999", "+0", "-0", "+00090.000", "+090.1", "+34.068930", "-33.8688"}
	edgeLngs = []string{"+180", "-180.000000", "+180.0000001", "-181", "-180.1", "+179.999999", "+0.0", "-0",
		"+000180", "-118.445127", "+151.2093"}
	badLocations = []string{"+34.068930", "34.068930-118.445127", "+34.-118", "+.5+1", "+1e1+1", "+1+1+1",
		"++1+1", "+\u0661+1", "+34.068930,-118.445127", "+1+", "+", "+1.+1.", "-90-180-", "+9E1+1"}
	edgeTimes = []string{"0", "-0", "+0.0", "1795900000.0000000001", "00001", "-1.5", "+1", "1795900000",
		"1e9", "1E9", "1.5e3", "nan", "inf", "+inf", "-", "+", ".5", "5.", "1.2.3", "0x10", "1_000",
		"1,5", "\u0661\u0662", "++1", "+-1", "-+1", "1795900000.123456789\x00"}
	edgeRadii = []string{"50", "50.0000000", "0.0000001", "+1", "001", "0.001", "1",
		"0", "0.0", "+0", "00", "50.0000001", "51", "50.1", "-1", "-0", "5e1", ".5", "5.", "10km", "NaN", "+-1", "++1"}
	edgeBounds = []string{"1", "20", "+20", "020", "+1", "5", "0", "21", "-1", "+0", "1.0", "2e1",
		"200", "+21", "1a", "\u0665", "00", "-20", "++1"}
	// oddBytes are bytes and characters that do not separate fields.
	oddBytes = []string{"\x00", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xc2\xa0", "\xc2\x85",
		"\xe2\x80\xa8", "\xe3\x80\x80", "\x7f", "\xc3\xa9", "\xff", "\x08"}
	// whites are the six white-space bytes but LF (which ends a line).
	whites  = []string{" ", "\t", "\r", "\x0b", "\x0c"}
	oddVerb = []string{"iamat", "Iamat", "IAMAT2", "whatsat", "WHATSAT?", "AT", "HERD-AT", "FOO", "I AMAT", "IAMAT\x1c"}
)

func pick(r *rand.Rand, xs []string) string { return xs[r.IntN(len(xs))] }

// randomLines draws what one client connection sends: one line or, one time in four, two
// or three pipelined, or a line at the length limit. Each ends with "\n", "\r\n",
// "\r\r\n" or "\n\n" (an empty line after it), and the last may end at EOF with none.
func randomLines(r *rand.Rand, clients int) string {
	if r.IntN(30) == 0 {
		return limitLine(r)
	}
	n := 1
	if r.IntN(4) == 0 {
		n = 2 + r.IntN(2)
	}
	var b strings.Builder
	for i := range n {
		b.WriteString(randomLine(r, clients))
		switch t := r.IntN(10); {
		case t == 0 && i == n-1:
			// ends at EOF
		case t == 1:
			b.WriteString("\r\n")
		case t == 2:
			b.WriteString("\r\r\n")
		case t == 3:
			b.WriteString("\n\n")
		default:
			b.WriteString("\n")
		}
	}
	if b.Len() == 0 {
		return "\n"
	}
	return b.String()
}

// randomLine draws one line without its terminator: an IAMAT or a WHATSAT for one of the
// schedule's clients with edge values, odd bytes, a wrong verb or field count, joined by
// runs of any white space; or a blank line.
func randomLine(r *rand.Rand, clients int) string {
	if r.IntN(15) == 0 {
		return strings.Repeat(pick(r, whites), r.IntN(3))
	}
	client := fmt.Sprintf("c%d", r.IntN(clients))
	var f []string
	if r.IntN(2) == 0 {
		loc, t := randomLocation(r), randomTime(r)
		switch r.IntN(4) {
		case 0:
			loc = pick(r, edgeLats) + pick(r, edgeLngs)
		case 1:
			loc = pick(r, badLocations)
		case 2:
			t = pick(r, edgeTimes)
		}
		f = []string{"IAMAT", client, loc, t}
	} else {
		radius, bound := randomRadius(r), randomBound(r)
		switch r.IntN(3) {
		case 0:
			radius = pick(r, edgeRadii)
		case 1:
			bound = pick(r, edgeBounds)
		}
		f = []string{"WHATSAT", client, radius, bound}
	}
	switch r.IntN(8) {
	case 0: // an odd byte in the client's name (a client of its own), or where a space was
		i := 1 + r.IntN(len(f)-1)
		if r.IntN(2) == 0 {
			f[1] += pick(r, oddBytes) + "x"
		} else {
			f[i-1] += pick(r, oddBytes) + f[i]
			f = append(f[:i], f[i+1:]...)
		}
	case 1:
		f[0] = pick(r, oddVerb)
	case 2:
		f = append(f, pick(r, []string{"extra", "5", f[3]}))
	case 3:
		i := r.IntN(len(f))
		f = append(f[:i], f[i+1:]...)
	}
	var b strings.Builder
	if r.IntN(6) == 0 {
		b.WriteString(whiteRun(r))
	}
	for i, x := range f {
		if i > 0 {
			if r.IntN(3) == 0 {
				b.WriteString(whiteRun(r))
			} else {
				b.WriteByte(' ')
			}
		}
		b.WriteString(x)
	}
	if r.IntN(6) == 0 {
		b.WriteString(whiteRun(r))
	}
	return b.String()
}

// whiteRun is one to three white-space bytes.
func whiteRun(r *rand.Rand) string {
	var b strings.Builder
	for range 1 + r.IntN(3) {
		b.WriteString(pick(r, whites))
	}
	return b.String()
}

// limitLine is a line whose length, terminator included, is the limit or one or two bytes
// either side of it: an IAMAT with a long client name, or an invalid line; ending "\n" or
// "\r\n".
func limitLine(r *rand.Rand) string {
	term := "\n"
	if r.IntN(2) == 0 {
		term = "\r\n"
	}
	size := MaxLineBytes - 2 + r.IntN(5)
	head, tail := "IAMAT x", " +1.5-2.5 1795900000.5"
	if r.IntN(2) == 0 {
		head, tail = "FOO x", " bar"
	}
	pad := size - len(head) - len(tail) - len(term)
	return head + strings.Repeat("x", pad) + tail + term
}

// randomRadius draws a valid radius: kilometres in (0, 50], as sent. Most are a
// kilometre or two (a few places, so bounds cut them): the emulator's data set has a
// place every couple of kilometres, and a circle of 50 km makes it look at thousands
// (milliseconds a WHATSAT).
func randomRadius(r *rand.Rand) string {
	switch x := r.IntN(100); {
	case x == 0:
		return pick(r, []string{"50", "50.0000000", "49.9999999", "12.3456789"})
	case x < 16:
		return pick(r, []string{"0.0000001", "+1", "0.001", "+0.5", "1.0000000", "001"})
	case x < 36:
		return fmt.Sprintf("%d.%d", r.IntN(3), 1+r.IntN(9))
	}
	return fmt.Sprintf("%d.%07d", r.IntN(2), 1+r.IntN(9999999))
}

// randomBound draws a valid bound: 1 to 20 (half the time 1 to 4, below the number of
// places a small circle finds), as sent.
func randomBound(r *rand.Rand) string {
	n := 1 + r.IntN(20)
	if r.IntN(2) == 0 {
		n = 1 + r.IntN(4)
	}
	switch r.IntN(6) {
	case 0:
		return fmt.Sprintf("+%d", n)
	case 1:
		return fmt.Sprintf("0%d", n)
	}
	return fmt.Sprint(n)
}
