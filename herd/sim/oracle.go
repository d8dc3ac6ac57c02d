package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// The simulator's own reading of client lines and of WHATSAT's Places JSON, written from
// docs/PROTOCOL.md (sections 1.2 to 1.6 and the places-errors and json-bytes extensions)
// and sharing no code with herd/proto or herd/places: a bug there must not change what
// the judge expects. It is plain on purpose: fields split by hand, numbers checked by
// their shape and then compared exactly with math/big.

// MaxLineBytes is the server's default --max-line: the longest client line, terminator
// included.
const MaxLineBytes = 64 << 10

// The kinds of client line.
const (
	refBlank   = "blank"
	refInvalid = "invalid"
	refIAMAT   = "IAMAT"
	refWHATSAT = "WHATSAT"
)

// refLine is what the protocol says of one client line.
type refLine struct {
	Kind string
	// Line is the line as received without its terminator (a final "\n" and one "\r"
	// before it); an invalid line is answered "? " + Line + "\n".
	Line string
	// The fields of a valid command, byte for byte as sent.
	Client, Location, Time string // IAMAT
	Radius, Bound          string // WHATSAT
	// Lat and Lng are the location's two parts, signs included (IAMAT).
	Lat, Lng string
}

// Echo is the reply to an invalid line.
func (r refLine) Echo() string { return "? " + r.Line + "\n" }

// splitClientLines cuts what a client sent on one connection into lines as a server reads
// them: each up to and including its "\n"; a last line that ends at EOF without "\n"
// counts. A line over max bytes (terminator included) ends the connection: it is
// returned cut to its first max bytes, with tooLong set, and nothing after it is read.
func splitClientLines(data string, max int) (lines []string, tooLong bool) {
	for data != "" {
		i := strings.IndexByte(data, '\n')
		n := i + 1
		if i < 0 {
			n = len(data)
		}
		if n > max {
			return append(lines, data[:max]), true
		}
		lines = append(lines, data[:n])
		data = data[n:]
	}
	return lines, false
}

// withoutTerminator drops a line's terminator: a final "\n", then one "\r" before it. (A
// line cut at the limit has no "\n"; herd/server drops a final "\r" of it all the same.)
func withoutTerminator(raw string) string {
	raw = strings.TrimSuffix(raw, "\n")
	return strings.TrimSuffix(raw, "\r")
}

// isWhite reports whether b separates fields: SP, TAB, LF, VT, FF or CR, nothing else.
func isWhite(b byte) bool {
	return b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0b || b == 0x0c || b == 0x0d
}

// refFields splits a line on runs of the six white-space bytes.
func refFields(line string) []string {
	var out []string
	start := -1
	for i := 0; i <= len(line); i++ {
		if i == len(line) || isWhite(line[i]) {
			if start >= 0 {
				out = append(out, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	return out
}

// readRef reads one client line (raw, with its terminator if it has one).
func readRef(raw string) refLine {
	r := refLine{Kind: refInvalid, Line: withoutTerminator(raw)}
	f := refFields(r.Line)
	switch {
	case len(f) == 0:
		r.Kind = refBlank
	case len(f) != 4:
	case f[0] == "IAMAT":
		lat, lng, ok := refLocation(f[2])
		if ok && refTime(f[3]) {
			r.Kind, r.Client, r.Location, r.Time, r.Lat, r.Lng = refIAMAT, f[1], f[2], f[3], lat, lng
		}
	case f[0] == "WHATSAT":
		if refRadius(f[2]) && refBound(f[3]) {
			r.Kind, r.Client, r.Radius, r.Bound = refWHATSAT, f[1], f[2], f[3]
		}
	}
	return r
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
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

// unsignedDecimal reports whether s is "D[.D]": digits, and if a '.' follows, digits
// after it.
func unsignedDecimal(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	return digits(whole) && (!dot || digits(frac))
}

// value is a decimal that unsignedDecimal accepted, exactly.
func value(s string) *big.Rat {
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("sim: not a decimal: " + s)
	}
	return v
}

// refLocation checks "S D[.D] S D[.D]" with |lat| <= 90 and |lng| <= 180, exactly, and
// gives its two signed parts.
func refLocation(s string) (lat, lng string, ok bool) {
	if len(s) < 4 || (s[0] != '+' && s[0] != '-') {
		return "", "", false
	}
	i := strings.IndexAny(s[1:], "+-")
	if i < 0 {
		return "", "", false
	}
	lat, lng = s[:i+1], s[i+1:]
	if !unsignedDecimal(lat[1:]) || !unsignedDecimal(lng[1:]) {
		return "", "", false
	}
	if value(lat[1:]).Cmp(big.NewRat(90, 1)) > 0 || value(lng[1:]).Cmp(big.NewRat(180, 1)) > 0 {
		return "", "", false
	}
	return lat, lng, true
}

// refTime checks "[+-]D[.D]".
func refTime(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return unsignedDecimal(s)
}

// refRadius checks "[+]D[.D]" with 0 < r <= 50.
func refRadius(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if !unsignedDecimal(s) {
		return false
	}
	v := value(s)
	return v.Sign() > 0 && v.Cmp(big.NewRat(50, 1)) <= 0
}

// refBound checks "[+]D" with 1 <= n <= 20.
func refBound(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if !digits(s) {
		return false
	}
	v := value(s)
	return v.Cmp(big.NewRat(1, 1)) >= 0 && v.Cmp(big.NewRat(20, 1)) <= 0
}

// refBoundInt is a bound refBound accepted, as a number.
func refBoundInt(s string) int {
	n, _ := new(big.Int).SetString(strings.TrimPrefix(s, "+"), 10)
	return int(n.Int64())
}

// refPlacesLocation is the circle's centre as Places takes it: "LAT,LNG" without '+'.
func refPlacesLocation(lat, lng string) string {
	return strings.TrimPrefix(lat, "+") + "," + strings.TrimPrefix(lng, "+")
}

// refMetres is a radius in km as metres, by moving the decimal point three places:
// "10.5871263" is "10587.1263", "50" is "50000", "0.001" is "1".
func refMetres(km string) string {
	whole, frac, _ := strings.Cut(strings.TrimPrefix(km, "+"), ".")
	frac += "000"
	w := strings.TrimLeft(whole+frac[:3], "0")
	if w == "" {
		w = "0"
	}
	if rest := strings.TrimRight(frac[3:], "0"); rest != "" {
		return w + "." + rest
	}
	return w
}

// squeeze applies the newline rules: a run of "\n" becomes one, trailing ones go.
func squeeze(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && i > 0 && b[i-1] == '\n' {
			continue
		}
		out = append(out, c)
	}
	return bytes.TrimRight(out, "\n")
}

// refPlacesJSON is the JSON a WHATSAT reply must carry when the upstream answered body
// (json-bytes): its bytes up to the end of the bound-th element of its list ("results",
// or "places" for the New API), then every byte after the list's last element, with the
// newline rules applied. It reads body with encoding/json's decoder only to find where
// each element ends.
func refPlacesJSON(body []byte, list string, bound int) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("the upstream's answer is not a JSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if key != list {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return nil, fmt.Errorf("the upstream's %q is not an array", list)
		}
		var ends []int64
		for dec.More() {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			ends = append(ends, dec.InputOffset())
		}
		if len(ends) <= bound {
			return squeeze(body), nil
		}
		cut := append(append([]byte{}, body[:ends[bound-1]]...), body[ends[len(ends)-1]:]...)
		return squeeze(cut), nil
	}
	return squeeze(body), nil // no list: kept whole
}

// refTimedOut checks the JSON of a WHATSAT whose Places request timed out
// (places-errors): legacy, status UNKNOWN_ERROR, the message, no results; New API, an
// error object 504 DEADLINE_EXCEEDED with the message. It returns what is wrong, or "".
func refTimedOut(js []byte, api string) string {
	const msg = "places request timed out"
	if api == "new" {
		var v struct {
			Error struct {
				Code            int
				Message, Status string
			}
		}
		if err := json.Unmarshal(js, &v); err != nil {
			return "not JSON: " + err.Error()
		}
		if e := v.Error; e.Code != 504 || e.Status != "DEADLINE_EXCEEDED" || e.Message != msg {
			return fmt.Sprintf("the error is %+v, want 504 DEADLINE_EXCEEDED %q", e, msg)
		}
		return ""
	}
	var v struct {
		Status       string          `json:"status"`
		ErrorMessage string          `json:"error_message"`
		Results      json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(js, &v); err != nil {
		return "not JSON: " + err.Error()
	}
	if v.Status != "UNKNOWN_ERROR" || v.ErrorMessage != msg || string(v.Results) != "[]" {
		return fmt.Sprintf("status %q, error_message %q, results %s; want UNKNOWN_ERROR, %q, []", v.Status, v.ErrorMessage, v.Results, msg)
	}
	return ""
}

// showDiff shows where got and want differ: both whole when short, else the first
// differing byte and what is around it in each.
func showDiff(got, want string) string {
	if len(got) <= 300 && len(want) <= 300 {
		return fmt.Sprintf("got %q, want %q", got, want)
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-40)
	return fmt.Sprintf("%d and %d bytes, first difference at byte %d: got ...%q..., want ...%q...",
		len(got), len(want), i, got[lo:min(len(got), i+40)], want[lo:min(len(want), i+40)])
}
