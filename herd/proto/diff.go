package proto

import (
	"math/big"
	"strconv"
	"strings"
	"time"
)

// FormatDiff formats now minus the client's time t in seconds with an explicit sign and
// nine decimals, as "%+.9f" would, but exactly: a client time with more than nine
// fraction digits is rounded half away from zero, and the sign is that of the exact value
// (so a tiny negative difference prints as "-0.000000000", like C and Python do).
func FormatDiff(now time.Time, t Time) string {
	if len(t.Int) <= 17 && len(t.Frac) <= 9 {
		return formatDiffFast(now, t)
	}
	return formatDiffBig(now, t)
}

// formatDiffFast handles every time that fits int64 seconds and nanoseconds.
func formatDiffFast(now time.Time, t Time) string {
	var sec int64
	for i := 0; i < len(t.Int); i++ {
		sec = sec*10 + int64(t.Int[i]-'0')
	}
	var nsec int64
	for i := 0; i < 9; i++ {
		nsec *= 10
		if i < len(t.Frac) {
			nsec += int64(t.Frac[i] - '0')
		}
	}
	if t.Neg {
		sec, nsec = -sec, -nsec
	}
	ds := now.Unix() - sec
	dn := int64(now.Nanosecond()) - nsec
	// dn is within (-1e9, 2e9): a negative client time adds its nanoseconds. Carry a
	// whole second into ds, so dn has nine digits at most.
	if dn >= 1e9 {
		ds++
		dn -= 1e9
	}
	// Bring both parts to the same sign.
	if ds > 0 && dn < 0 {
		ds--
		dn += 1e9
	} else if ds < 0 && dn > 0 {
		ds++
		dn -= 1e9
	}
	neg := ds < 0 || dn < 0
	if neg {
		ds, dn = -ds, -dn
	}
	buf := make([]byte, 0, 32)
	if neg {
		buf = append(buf, '-')
	} else {
		buf = append(buf, '+')
	}
	buf = strconv.AppendInt(buf, ds, 10)
	buf = append(buf, '.')
	frac := strconv.AppendInt(make([]byte, 0, 9), dn, 10)
	for i := len(frac); i < 9; i++ {
		buf = append(buf, '0')
	}
	buf = append(buf, frac...)
	return string(buf)
}

// formatDiffBig is the general case with arbitrary-size integers.
func formatDiffBig(now time.Time, t Time) string {
	scale := len(t.Frac)
	if scale < 9 {
		scale = 9
	}
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)

	// client = (Int . Frac) * 10^scale
	digits := t.Int + t.Frac + strings.Repeat("0", scale-len(t.Frac))
	client, ok := new(big.Int).SetString("0"+digits, 10)
	if !ok {
		client = new(big.Int)
	}
	if t.Neg {
		client.Neg(client)
	}
	// nowScaled = now in ns * 10^(scale-9)
	nowScaled := new(big.Int).Mul(big.NewInt(now.Unix()), pow)
	nsPart := new(big.Int).Mul(big.NewInt(int64(now.Nanosecond())),
		new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-9)), nil))
	nowScaled.Add(nowScaled, nsPart)

	diff := new(big.Int).Sub(nowScaled, client)
	neg := diff.Sign() < 0
	diff.Abs(diff)
	// Round to nine decimals, half away from zero.
	if scale > 9 {
		unit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale-9)), nil)
		half := new(big.Int).Quo(unit, big.NewInt(2))
		diff.Add(diff, half)
		diff.Quo(diff, unit)
	}
	s := diff.String()
	if len(s) < 10 {
		s = strings.Repeat("0", 10-len(s)) + s
	}
	sign := "+"
	if neg {
		sign = "-"
	}
	return sign + s[:len(s)-9] + "." + s[len(s)-9:]
}
