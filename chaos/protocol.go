package chaos

// The checkers' own reading of docs/PROTOCOL.md. A checker that shared the herd's code (its
// time comparison, its radius conversion, its JSON trim) would be wrong exactly when the
// herd is, and agree with it. So this file imports nothing of herd/proto, herd/places or
// herd/core, and where it can it uses another algorithm than they do.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// isWhite reports whether b is one of docs/PROTOCOL.md's six white-space bytes: space, TAB,
// CR, LF, FF, VT. Nothing else separates fields.
func isWhite(b byte) bool {
	switch b {
	case ' ', '\t', '\r', '\n', '\f', '\v':
		return true
	}
	return false
}

// splitATLine splits "AT server diff client location time" into its six fields, which
// runs of white space separate (leading and trailing white space ignored).
func splitATLine(line string) ([6]string, error) {
	var f [6]string
	n := 0
	start := -1
	for i := 0; i <= len(line); i++ {
		if i < len(line) && !isWhite(line[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start < 0 {
			continue
		}
		if n == len(f) {
			return f, fmt.Errorf("AT line %q has more than six fields", line)
		}
		f[n] = line[start:i]
		n++
		start = -1
	}
	if n != len(f) {
		return f, fmt.Errorf("AT line %q has %d fields, not six", line, n)
	}
	if f[0] != "AT" {
		return f, fmt.Errorf("line %q does not start with AT", line)
	}
	return f, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// splitDecimal reads "digits[.digits]" (at least one digit on each side of a '.').
func splitDecimal(s string) (whole, frac string, ok bool) {
	whole, frac, dot := strings.Cut(s, ".")
	if !allDigits(whole) || (dot && !allDigits(frac)) {
		return "", "", false
	}
	return whole, frac, true
}

// compareTimes compares two protocol times "[+-]digits[.digits]" of any length exactly:
// -1, 0 or +1 as a is before, equal to or after b. -0 equals +0; leading and trailing
// zeros do not count. It fails on anything else (exponents, "nan", '_', "1.", ".5").
//
// It lines both magnitudes up on the decimal point (zeros on the left of the whole parts,
// on the right of the fractions) and compares the digit strings.
func compareTimes(a, b string) (int, error) {
	na, wa, fa, err := timeParts(a)
	if err != nil {
		return 0, err
	}
	nb, wb, fb, err := timeParts(b)
	if err != nil {
		return 0, err
	}
	w := max(len(wa), len(wb))
	f := max(len(fa), len(fb))
	da := strings.Repeat("0", w-len(wa)) + wa + fa + strings.Repeat("0", f-len(fa))
	db := strings.Repeat("0", w-len(wb)) + wb + fb + strings.Repeat("0", f-len(fb))
	za := strings.Trim(da, "0") == ""
	zb := strings.Trim(db, "0") == ""
	sa := sign(na, za)
	sb := sign(nb, zb)
	if sa != sb {
		if sa < sb {
			return -1, nil
		}
		return 1, nil
	}
	return sa * strings.Compare(da, db), nil // equal lengths: string order is numeric order
}

func sign(neg, zero bool) int {
	switch {
	case zero:
		return 0
	case neg:
		return -1
	}
	return 1
}

func timeParts(s string) (neg bool, whole, frac string, err error) {
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		neg = body[0] == '-'
		body = body[1:]
	}
	whole, frac, ok := splitDecimal(body)
	if !ok {
		return false, "", "", fmt.Errorf("%q is not a protocol time ([+-]digits[.digits])", s)
	}
	return neg, whole, frac, nil
}

// radiusMetres turns a WHATSAT radius in km ("[+]digits[.digits]") into metres, exactly,
// by shifting the decimal point three places: "10.5871263" -> "10587.1263", "50" ->
// "50000", "0.75" -> "750". The result has no sign, no leading zeros (but "0" before a
// point) and no trailing fraction zeros.
func radiusMetres(km string) (string, error) {
	whole, frac, ok := splitDecimal(strings.TrimPrefix(km, "+"))
	if !ok {
		return "", fmt.Errorf("radius %q is not a decimal number of km", km)
	}
	for len(frac) < 3 {
		frac += "0"
	}
	whole = strings.TrimLeft(whole+frac[:3], "0")
	frac = strings.TrimRight(frac[3:], "0")
	if whole == "" {
		whole = "0"
	}
	if frac == "" {
		return whole, nil
	}
	return whole + "." + frac, nil
}

// sameRadius reports whether two radius strings are the same number ("10000" ==
// "10000.0" == "1e4"), compared as exact rationals.
func sameRadius(a, b string) (bool, error) {
	ra, err := decimalRat(a)
	if err != nil {
		return false, err
	}
	rb, err := decimalRat(b)
	if err != nil {
		return false, err
	}
	return ra.Cmp(rb) == 0, nil
}

// decimalRat reads "[+-]digits[.digits][(e|E)[+-]digits]" exactly (big.Rat alone would
// also read "1/2" and "0x10").
func decimalRat(s string) (*big.Rat, error) {
	bad := fmt.Errorf("radius %q is not a decimal number", s)
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	mant = strings.TrimLeft(mant, "+-")
	exp = strings.TrimPrefix(strings.TrimPrefix(exp, "+"), "-")
	if len(s)-len(strings.TrimLeft(s, "+-")) > 1 {
		return nil, bad
	}
	if _, _, ok := splitDecimal(mant); !ok || (hasExp && !allDigits(exp)) {
		return nil, bad
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, bad
	}
	return r, nil
}

// placesLocation is the location param of a Places query for an ISO 6709 location as a
// client sent it: "+34.068930-118.445127" -> "34.068930,-118.445127" (no '+', which a
// query string would read as a space).
func placesLocation(loc string) (string, error) {
	bad := fmt.Errorf("location %q is not <sign>lat<sign>lng", loc)
	if len(loc) < 4 || (loc[0] != '+' && loc[0] != '-') {
		return "", bad
	}
	cut := strings.IndexAny(loc[1:], "+-")
	if cut < 0 {
		return "", bad
	}
	lat, lng := loc[:cut+1], loc[cut+1:]
	for _, part := range []string{lat, lng} {
		if _, _, ok := splitDecimal(part[1:]); !ok {
			return "", bad
		}
	}
	return strings.TrimPrefix(lat, "+") + "," + strings.TrimPrefix(lng, "+"), nil
}

// errNewlines marks a WHATSAT answer that breaks docs/PROTOCOL.md's newline rules.
var errNewlines = errors.New("newline rules broken")

// splitWhatsatReply splits one whole WHATSAT answer, as a one-shot client reads it, by the
// protocol: the AT line, "\n", the JSON (which has no "\n\n" inside and does not end with
// "\n"), then "\n\n", and nothing after. The AT line is returned whenever the answer has
// a complete first line, even when the rest is wrong.
func splitWhatsatReply(raw string) (at, js string, err error) {
	if strings.HasPrefix(raw, "? ") {
		return "", "", fmt.Errorf("an invalid-command answer %q", raw)
	}
	first, rest, ok := strings.Cut(raw, "\n")
	if !ok {
		return "", "", fmt.Errorf("incomplete: no newline ends the AT line in %q", raw)
	}
	at = first
	end := strings.Index(rest, "\n\n")
	if end < 0 {
		return at, "", fmt.Errorf("incomplete: no blank line (\"\\n\\n\") ends the answer %q", clip(raw, 200))
	}
	js, tail := rest[:end], rest[end+2:]
	switch {
	case tail == "":
		return at, js, nil
	case strings.Trim(tail, "\n") == "":
		return at, js, fmt.Errorf("%w: the answer ends with %d newlines, not two (the JSON's trailing newlines were not removed)", errNewlines, len(tail)+2)
	default:
		return at, js, fmt.Errorf("%w: a blank line (\"\\n\\n\") at byte %d of the answer, %d bytes after it (a run of newlines inside the JSON was not squeezed, or bytes follow the answer): %q",
			errNewlines, len(first)+1+end, len(tail), clip(rest[max(0, end-60):], 160))
	}
}

// squeezeNewlines applies docs/PROTOCOL.md's newline rules to a JSON body: every run of two
// or more '\n' becomes one, and newlines at the end go.
func squeezeNewlines(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		if b[i] != '\n' {
			out = append(out, b[i])
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] == '\n' {
			j++
		}
		if j == len(b) {
			break // a final run: trailing newlines are removed
		}
		out = append(out, '\n')
		i = j
	}
	return out
}

// trimToBound is a WHATSAT answer's JSON from the upstream's body: the elements of the
// top-level "results" array past the bound-th removed, every other byte kept as the
// upstream sent it (the white space before ']' too), then the newline rules applied.
func trimToBound(body []byte, bound int) ([]byte, error) {
	return trimListToBound(body, "results", bound)
}

// trimListToBound is trimToBound for the answer's list named key: "results" (Nearby
// Search) or "places" (Places API (New), whose answer has none when nothing is found).
func trimListToBound(body []byte, key string, bound int) ([]byte, error) {
	if bound < 1 {
		return nil, fmt.Errorf("bound %d: must be at least 1", bound)
	}
	ends, err := listEnds(body, key, key == "results")
	if err != nil {
		return nil, err
	}
	if len(ends) <= bound {
		return squeezeNewlines(body), nil
	}
	// From the end of the bound-th result to the end of the last one: the cut results
	// and the separators before them.
	cutFrom, cutTo := ends[bound-1], ends[len(ends)-1]
	out := make([]byte, 0, len(body)-(cutTo-cutFrom))
	out = append(out, body[:cutFrom]...)
	out = append(out, body[cutTo:]...)
	return squeezeNewlines(out), nil
}

// countResults is how many elements the top-level "results" array of a JSON object has.
func countResults(body []byte) (int, error) {
	ends, err := listEnds(body, "results", true)
	return len(ends), err
}

// countPlaces is how many places a WHATSAT answer's JSON holds, in either API's shape:
// the elements of its top-level "results" or "places" array (none when it has neither,
// as the New API's empty answer and error objects do).
func countPlaces(body []byte) (int, error) {
	n, err := listEnds(body, "results", false)
	if err != nil || len(n) > 0 {
		return len(n), err
	}
	p, err := listEnds(body, "places", false)
	return len(p), err
}

// listEnds scans body as one JSON object and returns, for each element of its top-level
// array named key, the offset just past it; required says the array must be there.
func listEnds(body []byte, key string, required bool) ([]int, error) {
	s := &scanner{b: body}
	s.skipWhite()
	if !s.eat('{') {
		return nil, s.fail("not a JSON object")
	}
	var ends []int
	found := false
	s.skipWhite()
	if !s.eat('}') {
		for {
			s.skipWhite()
			name, err := s.str(true)
			if err != nil {
				return nil, err
			}
			s.skipWhite()
			if !s.eat(':') {
				return nil, s.fail("no ':' after a key")
			}
			s.skipWhite()
			if name == key {
				if found {
					return nil, s.fail(`a second "` + key + `"`)
				}
				found = true
				if ends, err = s.arrayEnds(); err != nil {
					return nil, err
				}
			} else if err := s.value(); err != nil {
				return nil, err
			}
			s.skipWhite()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return nil, s.fail("no ',' or '}' after a member")
		}
	}
	s.skipWhite()
	if s.i != len(s.b) {
		return nil, s.fail("bytes after the object")
	}
	if !found && required {
		return nil, errors.New(`JSON: the object has no "` + key + `"`)
	}
	return ends, nil
}

// validJSON reports whether b is one JSON value with only white space around it.
func validJSON(b []byte) error {
	s := &scanner{b: b}
	if err := s.value(); err != nil {
		return err
	}
	s.skipWhite()
	if s.i != len(s.b) {
		return s.fail("bytes after the value")
	}
	return nil
}

// scanner walks JSON text byte by byte (RFC 8259), keeping offsets.
type scanner struct {
	b     []byte
	i     int
	depth int
}

const maxDepth = 10000 // as encoding/json

func (s *scanner) fail(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("JSON: %s at the end (byte %d)", what, s.i)
	}
	return fmt.Errorf("JSON: %s at byte %d (%q)", what, s.i, clip(string(s.b[s.i:]), 20))
}

func (s *scanner) skipWhite() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) value() error {
	s.skipWhite()
	if s.i >= len(s.b) {
		return s.fail("a value expected")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object()
	case c == '[':
		_, err := s.arrayEnds()
		return err
	case c == '"':
		_, err := s.str(false)
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	for _, lit := range []string{"true", "false", "null"} {
		if strings.HasPrefix(string(s.b[s.i:min(len(s.b), s.i+len(lit))]), lit) {
			s.i += len(lit)
			return nil
		}
	}
	return s.fail("a value expected")
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return s.fail("nested too deep")
	}
	return nil
}

func (s *scanner) object() error {
	s.eat('{')
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	s.skipWhite()
	if s.eat('}') {
		return nil
	}
	for {
		s.skipWhite()
		if _, err := s.str(false); err != nil {
			return err
		}
		s.skipWhite()
		if !s.eat(':') {
			return s.fail("no ':' after a key")
		}
		if err := s.value(); err != nil {
			return err
		}
		s.skipWhite()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return nil
		}
		return s.fail("no ',' or '}' in an object")
	}
}

// arrayEnds scans an array and returns the offset just past each element.
func (s *scanner) arrayEnds() ([]int, error) {
	if !s.eat('[') {
		return nil, s.fail("not an array")
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer func() { s.depth-- }()
	var ends []int
	s.skipWhite()
	if s.eat(']') {
		return ends, nil
	}
	for {
		if err := s.value(); err != nil {
			return nil, err
		}
		ends = append(ends, s.i)
		s.skipWhite()
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			return ends, nil
		}
		return nil, s.fail("no ',' or ']' in an array")
	}
}

// str scans a string; with decode it returns its value (for keys), else "".
func (s *scanner) str(decode bool) (string, error) {
	if !s.eat('"') {
		return "", s.fail("a string expected")
	}
	var val []byte
	for {
		if s.i >= len(s.b) {
			return "", s.fail("unterminated string")
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return string(val), nil
		case c < 0x20:
			return "", s.fail("a control byte in a string")
		case c != '\\':
			if decode {
				val = append(val, c)
			}
			s.i++
			continue
		}
		// An escape.
		if s.i+1 >= len(s.b) {
			return "", s.fail("unterminated escape")
		}
		e := s.b[s.i+1]
		if simple := strings.IndexByte(`"\/bfnrt`, e); simple >= 0 {
			if decode {
				val = append(val, "\"\\/\b\f\n\r\t"[simple])
			}
			s.i += 2
			continue
		}
		if e != 'u' {
			s.i++
			return "", s.fail("a bad escape")
		}
		r, ok := hex4(s.b[s.i+2:])
		if !ok {
			return "", s.fail(`a bad \u escape`)
		}
		s.i += 6
		if decode {
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(s.b[min(len(s.b), s.i+2):]); ok && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						s.i += 6
					}
				}
			}
			val = utf8.AppendRune(val, r)
		}
	}
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// number scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	s.eat('-')
	if s.eat('0') {
		// no more integer digits after a leading 0
	} else if digits() == 0 {
		return s.fail("a bad number")
	}
	if s.eat('.') && digits() == 0 {
		return s.fail("a bad number fraction")
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if digits() == 0 {
			return s.fail("a bad number exponent")
		}
	}
	return nil
}

// sameJSONInOrder reports whether a and b are one JSON value each, equal with every
// object's members in the same order: the answer of a herd that decoded the upstream's
// JSON and encoded it again (other white space, other escapes, other number forms) but
// kept its fields and their order, as docs/PROTOCOL.md asks. Where they differ, it says how.
func sameJSONInOrder(a, b []byte) (bool, string) {
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	for i := 0; ; i++ {
		ta, ea := da.Token()
		tb, eb := db.Token()
		if ea == io.EOF && eb == io.EOF {
			return true, ""
		}
		if ea != nil || eb != nil {
			return false, fmt.Sprintf("at token %d: %v / %v", i, ea, eb)
		}
		if !sameToken(ta, tb) {
			return false, fmt.Sprintf("token %d is %v, the upstream's is %v", i, describeToken(ta), describeToken(tb))
		}
	}
}

func sameToken(a, b json.Token) bool {
	na, aNum := a.(json.Number)
	nb, bNum := b.(json.Number)
	if aNum || bNum {
		if !aNum || !bNum {
			return false
		}
		ra, ok1 := new(big.Rat).SetString(string(na))
		rb, ok2 := new(big.Rat).SetString(string(nb))
		return ok1 && ok2 && ra.Cmp(rb) == 0
	}
	return a == b
}

func describeToken(t json.Token) string {
	switch v := t.(type) {
	case json.Delim:
		return "'" + v.String() + "'"
	case string:
		return strconv.Quote(clip(v, 80))
	case nil:
		return "null"
	}
	return fmt.Sprint(t)
}
