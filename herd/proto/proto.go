// Package proto is the herd's wire format: it splits and parses client and peer lines and
// formats replies. It is pure: no I/O, no clock, no goroutines. See docs/PROTOCOL.md.
package proto

import (
	"errors"
	"fmt"
	"strings"
)

// IsSpace reports whether b is one of the six bytes that separate fields: space, TAB, CR,
// LF, FF and VT. Nothing else separates fields (not U+0085, not U+2028, not \x1c..\x1f).
func IsSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\r', '\n', '\f', '\v':
		return true
	}
	return false
}

// Fields splits line on runs of the six white-space bytes. It appends to dst (which may be
// nil) so a caller on a hot path can reuse one slice. The fields alias line.
func Fields(dst []string, line string) []string {
	i := 0
	for i < len(line) {
		for i < len(line) && IsSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && !IsSpace(line[j]) {
			j++
		}
		dst = append(dst, line[i:j])
		i = j
	}
	return dst
}

// TrimLine drops the line terminator: a final "\n" and a "\r" before it.
func TrimLine(line string) string {
	line = strings.TrimSuffix(line, "\n")
	return strings.TrimSuffix(line, "\r")
}

// Errors name the field that was wrong; callers reply "? line" whatever the reason.
var (
	ErrFieldCount = errors.New("wrong number of fields")
	ErrVerb       = errors.New("unknown verb")
	ErrLocation   = errors.New("bad location")
	ErrTime       = errors.New("bad time")
	ErrRadius     = errors.New("bad radius")
	ErrBound      = errors.New("bad bound")
	ErrDiff       = errors.New("bad diff")
	ErrName       = errors.New("bad server name")
)

// IAMAT is a parsed "IAMAT client location time" command. Strings alias the input line.
type IAMAT struct {
	Client   string
	Location Location
	Time     Time
}

// WHATSAT is a parsed "WHATSAT client radius bound" command.
type WHATSAT struct {
	Client string
	// RadiusKm is the radius as sent (validated: 0 < r <= 50).
	RadiusKm string
	Bound    int
}

// ParseIAMAT parses the fields of an IAMAT command (fields[0] == "IAMAT").
func ParseIAMAT(fields []string) (IAMAT, error) {
	if len(fields) != 4 {
		return IAMAT{}, ErrFieldCount
	}
	loc, err := ParseLocation(fields[2])
	if err != nil {
		return IAMAT{}, err
	}
	t, err := ParseTime(fields[3])
	if err != nil {
		return IAMAT{}, err
	}
	return IAMAT{Client: fields[1], Location: loc, Time: t}, nil
}

// ParseWHATSAT parses the fields of a WHATSAT command (fields[0] == "WHATSAT").
func ParseWHATSAT(fields []string) (WHATSAT, error) {
	if len(fields) != 4 {
		return WHATSAT{}, ErrFieldCount
	}
	if err := checkRadius(fields[2]); err != nil {
		return WHATSAT{}, err
	}
	n, err := parseBound(fields[3])
	if err != nil {
		return WHATSAT{}, err
	}
	return WHATSAT{Client: fields[1], RadiusKm: fields[2], Bound: n}, nil
}

// decimal is an unsigned decimal "digits[.digits]" split into its two parts.
type decimal struct {
	intPart, fracPart string
}

// parseDecimal reads an unsigned decimal with at least one integer digit and, when a '.'
// is present, at least one fraction digit. It returns the rest of s after the number.
func parseDecimal(s string) (decimal, string, bool) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return decimal{}, s, false
	}
	d := decimal{intPart: s[:i]}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i+1 {
			return decimal{}, s, false
		}
		d.fracPart = s[i+1 : j]
		i = j
	}
	return d, s[i:], true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// atMost reports whether the decimal is <= limit (a small whole number), exactly.
func (d decimal) atMost(limit int) bool {
	n, ok := smallInt(d.intPart)
	if !ok || n > limit {
		return false
	}
	if n < limit {
		return true
	}
	return strings.Trim(d.fracPart, "0") == ""
}

// isZero reports whether every digit is 0.
func (d decimal) isZero() bool {
	return strings.Trim(d.intPart, "0") == "" && strings.Trim(d.fracPart, "0") == ""
}

// smallInt parses a run of digits that must fit comfortably in an int (leading zeros allowed).
func smallInt(digits string) (int, bool) {
	digits = strings.TrimLeft(digits, "0")
	if len(digits) > 6 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(digits); i++ {
		n = n*10 + int(digits[i]-'0')
	}
	return n, true
}

// Location is an ISO 6709 "+lat-lng" pair, validated, kept as sent.
type Location struct {
	Raw string
	// Lat and Lng are the two signed parts as sent, e.g. "+34.068930" and "-118.445127".
	Lat, Lng string
}

// ParseLocation parses "<sign>lat<sign>lng" with explicit signs; each part may have no
// fraction. Latitude must be within [-90, 90] and longitude within [-180, 180], exactly.
func ParseLocation(s string) (Location, error) {
	if len(s) < 4 || (s[0] != '+' && s[0] != '-') {
		return Location{}, ErrLocation
	}
	lat, rest, ok := parseDecimal(s[1:])
	if !ok || len(rest) < 2 || (rest[0] != '+' && rest[0] != '-') {
		return Location{}, ErrLocation
	}
	lng, tail, ok := parseDecimal(rest[1:])
	if !ok || tail != "" {
		return Location{}, ErrLocation
	}
	if !lat.atMost(90) || !lng.atMost(180) {
		return Location{}, ErrLocation
	}
	split := len(s) - len(rest)
	return Location{Raw: s, Lat: s[:split], Lng: s[split:]}, nil
}

// PlacesParam is the location as the Places API takes it: "lat,lng" without '+' signs
// (a '+' in a query string would read as a space).
func (l Location) PlacesParam() string {
	return strings.TrimPrefix(l.Lat, "+") + "," + strings.TrimPrefix(l.Lng, "+")
}

// Time is a POSIX time in seconds as sent, kept exactly: it is never turned into a float.
type Time struct {
	Raw  string
	Neg  bool
	Int  string // integer digits without leading zeros ("" for zero)
	Frac string // fraction digits without trailing zeros ("" for none)
}

// ParseTime parses "[+-]digits[.digits]" (ASCII digits only; no exponent, nan, inf or '_').
func ParseTime(s string) (Time, error) {
	t := Time{Raw: s}
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		t.Neg = body[0] == '-'
		body = body[1:]
	}
	d, rest, ok := parseDecimal(body)
	if !ok || rest != "" {
		return Time{}, ErrTime
	}
	t.Int = strings.TrimLeft(d.intPart, "0")
	t.Frac = strings.TrimRight(d.fracPart, "0")
	if t.Int == "" && t.Frac == "" {
		t.Neg = false // -0 == +0
	}
	return t, nil
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u, exactly.
func (t Time) Compare(u Time) int {
	if t.Neg != u.Neg {
		if t.Neg {
			return -1
		}
		return 1
	}
	c := compareMagnitude(t, u)
	if t.Neg {
		return -c
	}
	return c
}

func compareMagnitude(t, u Time) int {
	if len(t.Int) != len(u.Int) {
		if len(t.Int) < len(u.Int) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(t.Int, u.Int); c != 0 {
		return c
	}
	return strings.Compare(t.Frac, u.Frac) // no trailing zeros, so string order is numeric order
}

func checkRadius(s string) error {
	body := strings.TrimPrefix(s, "+")
	d, rest, ok := parseDecimal(body)
	if !ok || rest != "" || d.isZero() || !d.atMost(50) {
		return ErrRadius
	}
	return nil
}

// RadiusMetres turns a validated radius in km into metres by moving the decimal point,
// exactly: "10.5871263" -> "10587.1263", "50" -> "50000".
func RadiusMetres(km string) string {
	d, _, _ := parseDecimal(strings.TrimPrefix(km, "+"))
	frac := d.fracPart + "000"
	digits := strings.TrimLeft(d.intPart+frac[:3], "0")
	if digits == "" {
		digits = "0"
	}
	rest := strings.TrimRight(frac[3:], "0")
	if rest == "" {
		return digits
	}
	return digits + "." + rest
}

func parseBound(s string) (int, error) {
	body := strings.TrimPrefix(s, "+")
	if body == "" {
		return 0, ErrBound
	}
	for i := 0; i < len(body); i++ {
		if !isDigit(body[i]) {
			return 0, ErrBound
		}
	}
	n, ok := smallInt(body)
	if !ok || n < 1 || n > 20 {
		return 0, ErrBound
	}
	return n, nil
}

// FormatInvalid is the reply to any invalid command: "? " and the line as received
// without its terminator.
func FormatInvalid(line string) string { return "? " + line + "\n" }

// FormatAT formats "AT server diff client location time" (no newline).
func FormatAT(server, diff, client, location, time string) string {
	var b strings.Builder
	b.Grow(8 + len(server) + len(diff) + len(client) + len(location) + len(time))
	b.WriteString("AT ")
	b.WriteString(server)
	b.WriteByte(' ')
	b.WriteString(diff)
	b.WriteByte(' ')
	b.WriteString(client)
	b.WriteByte(' ')
	b.WriteString(location)
	b.WriteByte(' ')
	b.WriteString(time)
	return b.String()
}

// CheckDiff validates a diff as the herd formats it: a sign, digits, '.', nine digits.
func CheckDiff(s string) error {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return ErrDiff
	}
	d, rest, ok := parseDecimal(s[1:])
	if !ok || rest != "" || len(d.fracPart) != 9 {
		return ErrDiff
	}
	return nil
}

// CheckName validates a server name: non-empty, no white space.
func CheckName(s string) error {
	if s == "" {
		return ErrName
	}
	for i := 0; i < len(s); i++ {
		if IsSpace(s[i]) {
			return fmt.Errorf("%w: %q", ErrName, s)
		}
	}
	return nil
}
