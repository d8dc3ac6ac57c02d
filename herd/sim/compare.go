package sim

import (
	"cmp"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// The simulator's own reading of newer-wins, sharing no code with herd/proto or
// herd/core (a bug there must not corrupt the judge): times compared exactly as decimal
// strings, equal times ordered by the AT line (the greater wins).

// newer reports whether AT line a is newer than AT line b.
func newer(a, b string) bool {
	if c := compareTime(lastField(a), lastField(b)); c != 0 {
		return c > 0
	}
	return a > b
}

func lastField(at string) string { return at[strings.LastIndexByte(at, ' ')+1:] }

// compareTime compares two valid client times ("[+-]digits[.digits]") exactly.
func compareTime(a, b string) int {
	an, ai, af := splitTime(a)
	bn, bi, bf := splitTime(b)
	if an != bn {
		if an {
			return -1
		}
		return 1
	}
	c := 0
	switch {
	case len(ai) != len(bi):
		c = cmp.Compare(len(ai), len(bi))
	case ai != bi:
		c = strings.Compare(ai, bi)
	default:
		c = strings.Compare(af, bf)
	}
	if an {
		return -c
	}
	return c
}

// splitTime gives a time's sign (a zero is never negative), its integer digits without
// leading zeros and its fraction digits without trailing zeros.
func splitTime(t string) (neg bool, integer, frac string) {
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	integer, frac, _ = strings.Cut(t, ".")
	integer = strings.TrimLeft(integer, "0")
	frac = strings.TrimRight(frac, "0")
	if integer == "" && frac == "" {
		neg = false
	}
	return neg, integer, frac
}

// checkDiff checks an AT line's diff against now minus the client's time, computed
// exactly here: nine decimals (rounded, so within half a nanosecond) and the sign of the
// exact difference ("+" for zero). It returns what is wrong, or "".
func checkDiff(diff string, now time.Time, clientTime string) string {
	exact := new(big.Rat).SetFrac(big.NewInt(now.UnixNano()), big.NewInt(1e9))
	t, ok := new(big.Rat).SetString(strings.TrimPrefix(clientTime, "+"))
	if !ok {
		return "the client's time does not parse: " + clientTime
	}
	exact.Sub(exact, t)
	if diff == "" || (diff[0] != '+' && diff[0] != '-') {
		return "the diff has no sign"
	}
	if want := map[bool]byte{true: '-', false: '+'}[exact.Sign() < 0]; diff[0] != want {
		return fmt.Sprintf("the diff's sign is %c, the exact difference is %s", diff[0], exact.FloatString(12))
	}
	d, ok := new(big.Rat).SetString(strings.TrimPrefix(diff, "+"))
	if !ok {
		return "the diff does not parse"
	}
	if _, frac, _ := strings.Cut(diff, "."); len(frac) != 9 {
		return "the diff has not nine decimals"
	}
	d.Sub(d, exact)
	if d.Abs(d).Cmp(big.NewRat(1, 2e9)) > 0 {
		return fmt.Sprintf("the diff is off by %s s", d.FloatString(12))
	}
	return ""
}
