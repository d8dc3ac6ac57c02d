package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/proto"
)

// Every randomised test here uses a fixed seed and names it when it fails.
const protocolSeed = 20261128

func newRand(t *testing.T, stream uint64) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(protocolSeed, stream))
}

func TestCompareTimesGolden(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1700000000.0000000000000000001", "1700000000.0000000000000000002", -1},
		{"1700000000.0000000000000000002", "1700000000.0000000000000000001", 1},
		{"-0", "+0", 0},
		{"-0.000", "0", 0},
		{"+0", "-0.0", 0},
		{"007", "7.000", 0},
		{"1520023934.918963997", "1520023934.9189639970", 0},
		{"1520023934.918963997", "1520023934.918963998", -1},
		{"1520023934.918963997", "1520023934.91896399", 1},
		{"9", "10", -1},
		{"-9", "-10", 1},
		{"-1", "0", -1},
		{"-0.0000001", "-0", -1},
		{"0.5", "0.49999999999999999999999999", 1},
		{"0.5", "0.51", -1},
		{"+1", "1", 0},
		{"99999999999999999999999999999999.9", "100000000000000000000000000000000", -1},
		{"-99999999999999999999999999999999.9", "-100000000000000000000000000000000", 1},
	}
	for _, c := range cases {
		got, err := compareTimes(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("compareTimes(%q, %q) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "+", "-", "1e3", "1.", ".5", "1..2", "1.2.3", "nan", "inf", "1_000", " 1", "1 ", "++1", "+-1", "0x10", "１", "1,5", "1.5e", "\u0661"} {
		if _, err := compareTimes(bad, "1"); err == nil {
			t.Errorf("compareTimes(%q, 1) accepted an invalid time", bad)
		}
		if _, err := compareTimes("1", bad); err == nil {
			t.Errorf("compareTimes(1, %q) accepted an invalid time", bad)
		}
	}
}

func randomDigits(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		if r.IntN(3) == 0 {
			b[i] = '0'
		} else {
			b[i] = byte('0' + r.IntN(10))
		}
	}
	return string(b)
}

// randomTime is a protocol time with the lengths and zeros that break naive comparisons.
func randomTime(r *rand.Rand) string {
	s := []string{"", "+", "-"}[r.IntN(3)] + randomDigits(r, 1+r.IntN(25))
	if r.IntN(4) != 0 {
		s += "." + randomDigits(r, 1+r.IntN(30))
	}
	return s
}

// rewritten is the same time written otherwise: zeros added on either side, '+' dropped
// or added, the sign of a zero flipped.
func rewritten(r *rand.Rand, s string) string {
	sign := ""
	if s[0] == '+' || s[0] == '-' {
		sign, s = s[:1], s[1:]
	}
	if sign != "-" {
		sign = []string{"", "+"}[r.IntN(2)]
	}
	if strings.Trim(s, "0.") == "" {
		sign = []string{"", "+", "-"}[r.IntN(3)]
	}
	s = strings.Repeat("0", r.IntN(3)) + s
	if !strings.Contains(s, ".") && r.IntN(2) == 0 {
		s += "."
		s += strings.Repeat("0", 1+r.IntN(3))
	} else if strings.Contains(s, ".") {
		s += strings.Repeat("0", r.IntN(3))
	}
	return sign + s
}

func TestCompareTimesAgreesWithBigRat(t *testing.T) {
	r := newRand(t, 1)
	var pool []string
	for range 5000 {
		a := randomTime(r)
		var b string
		switch r.IntN(4) {
		case 0:
			b = rewritten(r, a)
		case 1:
			if len(pool) > 0 {
				b = pool[r.IntN(len(pool))]
			} else {
				b = randomTime(r)
			}
		default:
			b = randomTime(r)
		}
		pool = append(pool, a)
		got, err := compareTimes(a, b)
		if err != nil {
			t.Fatalf("seed %d: compareTimes(%q, %q): %v", protocolSeed, a, b, err)
		}
		ra, ok1 := new(big.Rat).SetString(a)
		rb, ok2 := new(big.Rat).SetString(b)
		if !ok1 || !ok2 {
			t.Fatalf("seed %d: big.Rat cannot read %q or %q", protocolSeed, a, b)
		}
		if want := ra.Cmp(rb); got != want {
			t.Fatalf("seed %d: compareTimes(%q, %q) = %d, big.Rat says %d", protocolSeed, a, b, got, want)
		}
		if back, _ := compareTimes(b, a); back != -got {
			t.Fatalf("seed %d: compareTimes is not antisymmetric on %q, %q", protocolSeed, a, b)
		}
	}
}

func TestSplitATLine(t *testing.T) {
	f, err := splitATLine("AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997")
	if err != nil || f != [6]string{"AT", "Goloman", "+0.263873386", "kiwi.cs.ucla.edu", "+34.068930-118.445127", "1520023934.918963997"} {
		t.Fatalf("%q %v", f, err)
	}
	// Runs of the six white-space bytes separate fields; leading and trailing ones go.
	f, err = splitATLine(" \t\vAT\fA\r\n+1 \t c\v+1+1\f\f7\r\n")
	if err != nil || f != [6]string{"AT", "A", "+1", "c", "+1+1", "7"} {
		t.Fatalf("%q %v", f, err)
	}
	// Nothing else separates: NEL, U+2028, \x1c..\x1f and NUL are part of a field.
	for _, sep := range []string{"\u0085", "\u2028", "\x1c", "\x1d", "\x1e", "\x1f", "\x00", "\u00a0"} {
		f, err := splitATLine("AT A +1 c" + sep + "d +1+1 7")
		if err != nil || f[3] != "c"+sep+"d" {
			t.Errorf("%q split the client id: %q %v", sep, f, err)
		}
	}
	for _, bad := range []string{"", "AT A +1 c +1+1", "AT A +1 c +1+1 7 8", "at A +1 c +1+1 7", "IAMAT A +1 c +1+1", "? AT A +1 c +1+1 7"} {
		if _, err := splitATLine(bad); err == nil {
			t.Errorf("splitATLine(%q) accepted", bad)
		}
	}
}

func TestRadiusMetresGolden(t *testing.T) {
	for km, want := range map[string]string{
		"10": "10000", "50": "50000", "10.5871263": "10587.1263", "0.75": "750", "2.5": "2500",
		"0.001": "1", "0.0001": "0.1", "0.0000000001": "0.0000001", "+10": "10000", "010.500": "10500",
		"1.234": "1234", "1.2345": "1234.5", "0.000": "0", "49.99999999999999999999": "49999.99999999999999999",
	} {
		got, err := radiusMetres(km)
		if err != nil || got != want {
			t.Errorf("radiusMetres(%q) = %q, %v; want %q", km, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1e1", "1.", ".5", "ten", "1,5", "++1", " 1"} {
		if _, err := radiusMetres(bad); err == nil {
			t.Errorf("radiusMetres(%q) accepted", bad)
		}
	}
}

func TestRadiusMetresIsKmTimesAThousandExactly(t *testing.T) {
	r := newRand(t, 2)
	thousand := big.NewRat(1000, 1)
	for range 3000 {
		km := fmt.Sprintf("%s%d", strings.Repeat("0", r.IntN(2)), r.IntN(51))
		if r.IntN(3) != 0 {
			km += "." + randomDigits(r, 1+r.IntN(25))
		}
		m, err := radiusMetres(km)
		if err != nil {
			t.Fatalf("seed %d: radiusMetres(%q): %v", protocolSeed, km, err)
		}
		k, ok := new(big.Rat).SetString(km)
		if !ok {
			t.Fatalf("seed %d: big.Rat cannot read %q", protocolSeed, km)
		}
		want := new(big.Rat).Mul(k, thousand)
		if same, err := sameRadius(m, want.FloatString(40)); err != nil || !same {
			t.Fatalf("seed %d: radiusMetres(%q) = %q, but km x 1000 = %s (%v)", protocolSeed, km, m, want.FloatString(40), err)
		}
		// Canonical: no leading zeros, no trailing fraction zeros, no sign.
		if (len(m) > 1 && m[0] == '0' && m[1] != '.') || strings.HasSuffix(m, "0") && strings.Contains(m, ".") || strings.HasSuffix(m, ".") || strings.ContainsAny(m, "+-") {
			t.Fatalf("seed %d: radiusMetres(%q) = %q is not canonical", protocolSeed, km, m)
		}
	}
}

func TestSameRadius(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"10000", "10000.0", true}, {"10000", "1e4", true}, {"10587.1263", "10587.12630", true},
		{"0750", "750", true}, {"10000", "10000.0000000000000000000001", false}, {"750", "75", false},
	} {
		got, err := sameRadius(c.a, c.b)
		if err != nil || got != c.same {
			t.Errorf("sameRadius(%q, %q) = %v, %v", c.a, c.b, got, err)
		}
	}
	for _, bad := range []string{"", "1/2", "ten", "0x10", "--1", "1e", "1e+-5", "1.", ".5", "0b1"} {
		if _, err := sameRadius(bad, "1"); err == nil {
			t.Errorf("sameRadius(%q) accepted", bad)
		}
	}
}

func TestPlacesLocation(t *testing.T) {
	for loc, want := range map[string]string{
		"+34.068930-118.445127": "34.068930,-118.445127",
		"-33.868800+151.209300": "-33.868800,151.209300",
		"+1+1":                  "1,1",
		"-90-180":               "-90,-180",
		"+00.5+000":             "00.5,000",
	} {
		got, err := placesLocation(loc)
		if err != nil || got != want {
			t.Errorf("placesLocation(%q) = %q, %v; want %q", loc, got, err, want)
		}
	}
	for _, bad := range []string{"", "34.1-118.2", "+34.1", "+34.1,-118.2", "+34.-118", "+34+-118", "+a+b", "+1+1+1"} {
		if _, err := placesLocation(bad); err == nil {
			t.Errorf("placesLocation(%q) accepted", bad)
		}
	}
}

func TestSplitWhatsatReply(t *testing.T) {
	at, js, err := splitWhatsatReply("AT A +0.1 c +1+1 7\n{\n   \"results\" : []\n}\n\n")
	if err != nil || at != "AT A +0.1 c +1+1 7" || js != "{\n   \"results\" : []\n}" {
		t.Fatalf("%q %q %v", at, js, err)
	}
	for _, c := range []struct {
		raw, at, err string
	}{
		{"? WHATSAT c 10 1\n", "", "invalid-command"},
		{"AT A +0.1 c +1+1 7", "", "incomplete"},
		{"AT A +0.1 c +1+1 7\n{}\n", "AT A +0.1 c +1+1 7", "incomplete"},
		{"AT A +0.1 c +1+1 7\n{}\n\n\n", "AT A +0.1 c +1+1 7", "trailing newlines"},
		{"AT A +0.1 c +1+1 7\n{\n\n}\n\n", "AT A +0.1 c +1+1 7", "newline rules broken: a blank line"},
		{"AT A +0.1 c +1+1 7\n{}\n\nAT A +0.1 c +1+1 7\n", "AT A +0.1 c +1+1 7", "newline rules broken"},
	} {
		at, _, err := splitWhatsatReply(c.raw)
		if at != c.at || err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("splitWhatsatReply(%q) = %q, %v; want %q and an error with %q", c.raw, at, err, c.at, c.err)
		}
	}
}

func TestSqueezeNewlinesGoldenAndAgainstARegexp(t *testing.T) {
	for in, want := range map[string]string{
		"":               "",
		"\n":             "",
		"\n\n\n":         "",
		"a\n\nb":         "a\nb",
		"\n\na\n\n\nb\n": "\na\nb",
		"a\n \nb\n\n":    "a\n \nb",
		"a\r\n\r\nb":     "a\r\n\r\nb",
		"a\nb\n":         "a\nb",
	} {
		if got := string(squeezeNewlines([]byte(in))); got != want {
			t.Errorf("squeezeNewlines(%q) = %q, want %q", in, got, want)
		}
	}
	runs := regexp.MustCompile("\n{2,}")
	r := newRand(t, 3)
	for range 2000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = "\n\n\nab \r"[r.IntN(7)]
		}
		want := bytes.TrimRight(runs.ReplaceAll(b, []byte("\n")), "\n")
		if got := squeezeNewlines(b); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: squeezeNewlines(%q) = %q, want %q", protocolSeed, b, got, want)
		}
	}
}

func TestTrimToBoundGolden(t *testing.T) {
	body := "{\"a\" :1,\n\n\n\"results\":[ {\"x\":1,\"z\":2,\"y\":3} ,\n{\"x\":2},{\"x\":3}\n ],\"status\":\"OK\"}\n\n\n"
	for bound, want := range map[int]string{
		1: "{\"a\" :1,\n\"results\":[ {\"x\":1,\"z\":2,\"y\":3}\n ],\"status\":\"OK\"}",
		2: "{\"a\" :1,\n\"results\":[ {\"x\":1,\"z\":2,\"y\":3} ,\n{\"x\":2}\n ],\"status\":\"OK\"}",
		3: "{\"a\" :1,\n\"results\":[ {\"x\":1,\"z\":2,\"y\":3} ,\n{\"x\":2},{\"x\":3}\n ],\"status\":\"OK\"}",
		9: "{\"a\" :1,\n\"results\":[ {\"x\":1,\"z\":2,\"y\":3} ,\n{\"x\":2},{\"x\":3}\n ],\"status\":\"OK\"}",
	} {
		got, err := trimToBound([]byte(body), bound)
		if err != nil || string(got) != want {
			t.Errorf("bound %d: got %q, %v\nwant %q", bound, got, err, want)
		}
	}
	// Strings that look like structure, escapes, nesting, a "results" key inside a result
	// and a key written with an escape; the Google layout with a blank line before ']'.
	tricky := `{
   "html_attributions" : [ "]\"results\" : [", "\\" ],
   "result\u0073" : [
      {
         "name" : "Fish & Chips <Bay>",
         "results" : [ 1, 2, 3 ],
         "x" : { "y" : [ [], {}, [ { "z" : "}\"]" } ] ] }
      },

      {
         "name" : "I <3 \"Oak\"\\ \u00e9 \ud83d\ude00",
         "n" : -0.5e+10
      },
      {
         "name" : "third",
         "ok" : [ true, false, null ]
      }

   ],
   "status" : "OK"
}
`
	want := `{
   "html_attributions" : [ "]\"results\" : [", "\\" ],
   "result\u0073" : [
      {
         "name" : "Fish & Chips <Bay>",
         "results" : [ 1, 2, 3 ],
         "x" : { "y" : [ [], {}, [ { "z" : "}\"]" } ] ] }
      }
   ],
   "status" : "OK"
}`
	got, err := trimToBound([]byte(tricky), 1)
	if err != nil || string(got) != want {
		t.Fatalf("got %s, %v\nwant %s", got, err, want)
	}
	if n, err := countResults([]byte(tricky)); n != 3 || err != nil {
		t.Fatalf("countResults = %d, %v", n, err)
	}
	got, _ = trimToBound([]byte(tricky), 2)
	if !bytes.HasSuffix(got, []byte("\"n\" : -0.5e+10\n      }\n   ],\n   \"status\" : \"OK\"\n}")) || bytes.Contains(got, []byte("third")) {
		t.Fatalf("bound 2: %s", got)
	}
}

func TestTrimToBoundRejectsWhatIsNotAnAnswer(t *testing.T) {
	for _, b := range []string{"", "[]", "{", `{"status":"OK"}`, `{"results":{}}`, `{"results":[1,}`, "<html>",
		`{"results":[],"results":[]}`, `{"results":[]} x`, `{"results":[01]}`, `{"results":["a` + "\x01" + `"]}`,
		`{"results":["\x"]}`, `{"results":["\u12"]}`, `{"results":[tru]}`, `{"results":[1.]}`, `{"results" [1]}`,
		`{"results":[1] "a":2}`, `{results:[]}`, `{"results":[-]}`, `{"results":[1e]}`} {
		if _, err := trimToBound([]byte(b), 5); err == nil {
			t.Errorf("trimToBound(%q) accepted", b)
		}
	}
	if _, err := trimToBound([]byte(`{"results":[]}`), 0); err == nil {
		t.Error("bound 0 accepted")
	}
}

// randomJSON writes a random JSON value with random white space (newline runs among it).
func randomJSON(r *rand.Rand, b *bytes.Buffer, depth int) {
	ws := func() {
		for range r.IntN(3) {
			b.WriteByte(" \t\n\n\r"[r.IntN(5)])
		}
	}
	ws()
	k := r.IntN(9)
	if depth > 3 {
		k = 2 + r.IntN(7)
	}
	switch k {
	case 0:
		b.WriteByte('{')
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			randomString(r, b)
			ws()
			b.WriteByte(':')
			randomJSON(r, b, depth+1)
		}
		ws()
		b.WriteByte('}')
	case 1:
		b.WriteByte('[')
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			randomJSON(r, b, depth+1)
		}
		ws()
		b.WriteByte(']')
	case 2, 3:
		randomString(r, b)
	case 4:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	default:
		b.WriteString([]string{"0", "-0", "12", "-3.25", "1e9", "2.5E-3", "4.50", "1.0e2", "123456789012345678901234567890"}[r.IntN(9)])
	}
	ws()
}

func randomString(r *rand.Rand, b *bytes.Buffer) {
	parts := []string{"a", "results", "&", "<", ">", "]", "}", "[", "{", ",", ":", " ", `\"`, `\\`, `\/`, `\n`, `\u0026`, `\u00e9`, `\ud83d\ude00`, "é", "😀"}
	b.WriteByte('"')
	for range r.IntN(5) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	b.WriteByte('"')
}

// randomAnswer is a random JSON object with a "results" array among other members, and
// the offset just past each element of that array, as the generator wrote them.
func randomAnswer(r *rand.Rand) ([]byte, []int) {
	var b bytes.Buffer
	var ends []int
	ws := func() {
		for range r.IntN(4) {
			b.WriteByte(" \n\n\t"[r.IntN(4)])
		}
	}
	ws()
	b.WriteByte('{')
	members := r.IntN(4)
	at := r.IntN(members + 1)
	for i := range members + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		ws()
		if i == at {
			b.WriteString(`"results"`)
			ws()
			b.WriteByte(':')
			ws()
			b.WriteByte('[')
			for j := range r.IntN(8) {
				if j > 0 {
					ws()
					b.WriteByte(',')
				}
				ws()
				var v bytes.Buffer
				randomJSON(r, &v, 1)
				b.Write(bytes.TrimRight(v.Bytes(), " \t\n\r"))
				ends = append(ends, b.Len())
			}
			ws()
			b.WriteByte(']')
		} else {
			fmt.Fprintf(&b, `"k%d"`, i)
			ws()
			b.WriteByte(':')
			randomJSON(r, &b, 1)
		}
		ws()
	}
	b.WriteByte('}')
	ws()
	return b.Bytes(), ends
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	r := newRand(t, 4)
	for i := range 20000 {
		var b bytes.Buffer
		randomJSON(r, &b, 0)
		in := b.Bytes()
		if i%2 == 1 && len(in) > 0 { // break it somewhere
			in = bytes.Clone(in)
			switch r.IntN(3) {
			case 0:
				in = in[:r.IntN(len(in))]
			case 1:
				const junk = "{}[],:\"\\x0e-+.\x01"
				in[r.IntN(len(in))] = junk[r.IntN(len(junk))]
			default:
				j := r.IntN(len(in))
				in = append(in[:j], in[j+1:]...)
			}
		}
		mine := validJSON(in) == nil
		if theirs := json.Valid(in); mine != theirs {
			t.Fatalf("seed %d, case %d: validJSON says %v (%v), encoding/json says %v, for %q", protocolSeed, i, mine, validJSON(in), theirs, in)
		}
	}
}

// TestTrimToBoundAgainstEncodingJSON checks the trim on random answers against the
// definition (the bytes from the end of the bound-th result to the end of the last one
// removed, newlines squeezed; the offsets from the generator, not from a scanner) and
// against encoding/json (the value is the input's with results cut to the bound).
func TestTrimToBoundAgainstEncodingJSON(t *testing.T) {
	r := newRand(t, 5)
	for i := range 5000 {
		in, ends := randomAnswer(r)
		bound := 1 + r.IntN(6)
		got, err := trimToBound(in, bound)
		if err != nil {
			t.Fatalf("seed %d, case %d: trimToBound(%q): %v", protocolSeed, i, in, err)
		}
		want := squeezeNewlines(in)
		if len(ends) > bound {
			want = squeezeNewlines(append(bytes.Clone(in[:ends[bound-1]]), in[ends[len(ends)-1]:]...))
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("seed %d, case %d, bound %d: %q trimmed to\n%q, want\n%q", protocolSeed, i, bound, in, got, want)
		}
		var whole, cut map[string]any
		if err := json.Unmarshal(in, &whole); err != nil {
			t.Fatalf("seed %d, case %d: the generator made bad JSON %q: %v", protocolSeed, i, in, err)
		}
		if err := json.Unmarshal(got, &cut); err != nil {
			t.Fatalf("seed %d, case %d: trimmed %q is not JSON: %v", protocolSeed, i, got, err)
		}
		res := whole["results"].([]any)
		whole["results"] = res[:min(bound, len(res))]
		if !reflect.DeepEqual(whole, cut) {
			t.Fatalf("seed %d, case %d, bound %d: %q trimmed to %q", protocolSeed, i, bound, in, got)
		}
		if n, err := countResults(in); err != nil || n != len(ends) {
			t.Fatalf("seed %d, case %d: countResults = %d, %v; the generator wrote %d", protocolSeed, i, n, err, len(ends))
		}
	}
}

// randomClientLocation is a location as a client writes it: explicit signs, any number
// of decimals (none too).
func randomClientLocation(r *rand.Rand) string {
	part := func(limit float64) string {
		v := (r.Float64()*2 - 1) * limit
		s := fmt.Sprintf("%+.*f", r.IntN(9), v)
		if s[1:] == "0" || strings.Trim(s[1:], "0.") == "" {
			s = "+0"
		}
		return s
	}
	return part(90) + part(180)
}

// randomRadius is a radius in km as a client writes it: 0 < r <= 50, any decimals.
func randomRadius(r *rand.Rand) string {
	for {
		km := fmt.Sprint(r.IntN(51))
		if r.IntN(2) == 0 {
			km += "." + randomDigits(r, 1+r.IntN(8))
		}
		if v, _ := new(big.Rat).SetString(km); v.Sign() > 0 && v.Cmp(big.NewRat(50, 1)) <= 0 {
			return km
		}
	}
}

// TestOwnTrimAgreesWithTheHerdsOnTheEmulator runs the herd's places.Trim and the
// checkers' trimToBound over the emulator's answers to random queries: they must give the
// same bytes. The emulator's answers are formatted as Google's, with blank lines in some:
// the test counts that it met them.
func TestOwnTrimAgreesWithTheHerdsOnTheEmulator(t *testing.T) {
	r := newRand(t, 6)
	met := map[string]int{}
	for i := range 200 {
		loc, km, bound := randomClientLocation(r), randomRadius(r), 1+r.IntN(20)
		param, err := placesLocation(loc)
		if err != nil {
			t.Fatalf("seed %d, query %d: %v", protocolSeed, i, err)
		}
		metres, err := radiusMetres(km)
		if err != nil {
			t.Fatalf("seed %d, query %d: %v", protocolSeed, i, err)
		}
		body := places.Answer(param, metres, "")
		mine, err1 := trimToBound(body, bound)
		theirs, err2 := places.Trim(body, bound)
		if err1 != nil || err2 != nil || !bytes.Equal(mine, theirs) {
			t.Fatalf("seed %d, query %d (location %s, radius %s km, bound %d): the trims disagree (%v, %v):\nours:  %q\nherd's: %q",
				protocolSeed, i, loc, km, bound, err1, err2, clip(string(mine), 2000), clip(string(theirs), 2000))
		}
		n, _ := countResults(body)
		for what, ok := range map[string]bool{
			"a blank line":           bytes.Contains(body, []byte("\n\n")),
			"'&'":                    bytes.Contains(mine, []byte("&")),
			"'<'":                    bytes.Contains(mine, []byte("<")),
			`an escaped '"'`:         bytes.Contains(mine, []byte(`\"`)),
			"results cut":            n > bound,
			"no results cut":         n <= bound && n > 0,
			"ZERO_RESULTS":           n == 0,
			"Google's spacing ' : '": bytes.Contains(mine, []byte(`"status" : "`)),
		} {
			if ok {
				met[what]++
			}
		}
	}
	t.Logf("seed %d: met %v", protocolSeed, met)
	for _, what := range []string{"a blank line", "'&'", "'<'", `an escaped '"'`, "results cut", "no results cut", "ZERO_RESULTS"} {
		if met[what] < 3 {
			t.Errorf("seed %d: only %d of 200 queries had %s: the cross-check does not exercise it", protocolSeed, met[what], what)
		}
	}
	if met["Google's spacing ' : '"] != 200 {
		t.Errorf("the emulator does not format every answer as Google does")
	}
}

// emulatorBackend is a fake backend whose Places URL is a real emulator on loopback.
type emulatorBackend struct {
	*fakeBackend
	url string
}

func (b emulatorBackend) PlacesURL() string { return b.url }

// TestCheckWhatsatRejectsWhatBreaksTheProtocol shows CheckWhatsat failing on each defect it
// guards against, with hand-made replies, and passing a right one.
func TestCheckWhatsatRejectsWhatBreaksTheProtocol(t *testing.T) {
	srv := httptest.NewServer((&places.Emulator{}).Handler())
	defer srv.Close()
	c := NewCluster(emulatorBackend{newFake(), srv.URL}, 1)
	ctx := context.Background()

	// A query whose answer has more than bound results, an '&' and a blank line, so that
	// every way to get it wrong shows. Found deterministically.
	const radius, bound = "10", 3
	var want Accepted
	var body, right []byte
	r := newRand(t, 7)
	for i := 0; ; i++ {
		loc := randomClientLocation(r)
		param, _ := placesLocation(loc)
		body = places.Answer(param, "10000", "")
		right, _ = places.Trim(body, bound)
		n, _ := countResults(body)
		if n > bound && bytes.Contains(right, []byte(" & ")) && bytes.Contains(body, []byte("\n\n")) {
			want = Accepted{Origin: "Welsh", Client: "kiwi.cs.ucla.edu", Location: loc, Time: "1520023934.918963997",
				AT: "AT Welsh +0.263873386 kiwi.cs.ucla.edu " + loc + " 1520023934.918963997"}
			break
		}
		if i > 5000 {
			t.Fatalf("seed %d: no query with all the features", protocolSeed)
		}
	}
	reply := func(at string, js []byte) client.WhatsatReply {
		raw := at + "\n" + string(js) + "\n\n"
		rep, _ := client.ParseWhatsat(raw)
		rep.Raw = raw
		return rep
	}
	// The herd's own query, as it makes it for the WHATSAT: the checkers find it in the
	// emulator's query log.
	param, _ := placesLocation(want.Location)
	herdQuery(t, srv.URL+emulatorPath+"?"+url.Values{"location": {param}, "radius": {"10000"}, "key": {"k"}}.Encode(), nil)
	var value any
	if err := json.Unmarshal(right, &value); err != nil {
		t.Fatal(err)
	}
	goIndented, _ := json.MarshalIndent(value, "", "   ")
	goCompact, _ := json.Marshal(value)
	older := strings.Replace(want.AT, "1520023934.918963997", "1520023934.918963996", 1)
	otherOrigin := strings.Replace(want.AT, "AT Welsh ", "AT Hands ", 1)
	more, _ := places.Trim(body, bound+1)
	fewer, _ := places.Trim(body, bound-1)
	unsqueezed := bytes.Replace(right, []byte("\n"), []byte("\n\n"), 1)
	escapedAmp := bytes.Replace(right, []byte(" & "), []byte(` \u0026 `), 1)
	goSpacing := bytes.Replace(right, []byte(`"status" : `), []byte(`"status": `), 1)
	otherRating := regexp.MustCompile(`"rating" : [0-9.]+`).ReplaceAll(right, []byte(`"rating" : 9.9`))

	for _, c2 := range []struct {
		name string
		rep  client.WhatsatReply
		want []string // substrings of the error; none: it must pass
	}{
		{"the herd's right answer", reply(want.AT, right), nil},
		{"a result past the bound", reply(want.AT, more), []string{"more results than the bound"}},
		{"re-encoded by Go, indented", reply(want.AT, goIndented), []string{"not the upstream's bytes", "decodes to the same value"}},
		{"re-encoded by Go, compact", reply(want.AT, goCompact), []string{"not the upstream's bytes", "decodes to the same value"}},
		{"'&' escaped", reply(want.AT, escapedAmp), []string{"not the upstream's bytes", "decodes to the same value"}},
		{"Go's spacing once", reply(want.AT, goSpacing), []string{"not the upstream's bytes", "decodes to the same value"}},
		{"a value changed", reply(want.AT, otherRating), []string{"not the upstream's bytes", "value differs"}},
		{"fewer results than there are", reply(want.AT, fewer), []string{"not the upstream's bytes", "value differs"}},
		{"a blank line inside the JSON", reply(want.AT, unsqueezed), []string{"newline rules broken", "blank line"}},
		{"a trailing newline", reply(want.AT, append(bytes.Clone(right), '\n')), []string{"newline rules broken", "trailing newlines"}},
		{"no blank line at the end", client.WhatsatReply{Raw: want.AT + "\n" + string(right) + "\n"}, []string{"incomplete"}},
		{"an older AT line", reply(older, right), []string{"AT line", "but the newest it must hold is"}},
		{"another origin", reply(otherOrigin, right), []string{"AT line", "but the newest it must hold is"}},
		{"JSON cut short", reply(want.AT, right[:len(right)/2]), []string{"JSON does not parse"}},
		{"an invalid-command answer", client.WhatsatReply{Raw: "? WHATSAT kiwi.cs.ucla.edu 10 3\n", Invalid: true}, []string{"for a client it must know"}},
	} {
		err := c.CheckWhatsat(ctx, "Hands", c2.rep, want, radius, bound)
		t.Logf("%s: %v", c2.name, err)
		if c2.want == nil {
			if err != nil {
				t.Errorf("%s: rejected: %v", c2.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", c2.name)
			continue
		}
		for _, w := range c2.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the error does not say %q: %v", c2.name, w, err)
			}
		}
	}
	// The query behind the answer must be at the client's location, with radius km x 1000.
	if err := c.CheckWhatsat(ctx, "Hands", reply(want.AT, right), want, "5", bound); err == nil || !strings.Contains(err.Error(), "radius of 10000 m, not the WHATSAT's 5000 m") {
		t.Errorf("a WHATSAT of 5 km answered from a query of 10 km: %v", err)
	}
	elsewhere := want
	elsewhere.Location = "+1.000000+1.000000"
	elsewhere.AT = strings.Replace(want.AT, " "+want.Location+" ", " "+elsewhere.Location+" ", 1)
	if err := c.CheckWhatsat(ctx, "Hands", reply(elsewhere.AT, right), elsewhere, radius, bound); err == nil || !strings.Contains(err.Error(), "never asked Places about the client's location") {
		t.Errorf("an answer for a location the herd never asked about: %v", err)
	}
	// A herd that does not claim json-bytes may re-encode, keeping fields and their order.
	values := NewCluster(emulatorBackend{newFake(), srv.URL}, 1)
	values.Claims = func(string) bool { return false }
	for _, js := range [][]byte{right, goIndented, escapedAmp, goSpacing} {
		if err := values.CheckWhatsat(ctx, "Hands", reply(want.AT, js), want, radius, bound); err != nil {
			t.Errorf("a re-encoded answer was rejected: %v", err)
		}
	}
	for _, js := range [][]byte{otherRating, fewer} {
		if err := values.CheckWhatsat(ctx, "Hands", reply(want.AT, js), want, radius, bound); err == nil || !strings.Contains(err.Error(), "its fields in their order") {
			t.Errorf("a wrong answer re-encoded: %v", err)
		}
	}
	// A herd on Places API (New): its answer is judged against its own query's answer.
	newAPI := NewCluster(emulatorBackend{newFake(), srv.URL}, 1)
	newWant := want
	newWant.Location = "+34.068930-118.445127"
	newWant.AT = strings.Replace(want.AT, " "+want.Location+" ", " "+newWant.Location+" ", 1)
	newParam, _ := placesLocation(newWant.Location)
	answer := herdQuery(t, srv.URL+places.NewPath, places.NewRequestBody(newParam, "10000", bound))
	if err := newAPI.CheckWhatsat(ctx, "Hands", reply(newWant.AT, squeezeNewlines(answer)), newWant, radius, bound); err != nil {
		t.Errorf("a Places API (New) answer: %v", err)
	}
	if err := newAPI.CheckWhatsat(ctx, "Hands", reply(newWant.AT, []byte(`{"places": []}`)), newWant, radius, bound); err == nil {
		t.Errorf("an empty Places API (New) answer was accepted for a query that found places")
	}
	// The checkers' split is the judge, not the client's: a reply whose JSON field the
	// client split differently is judged by its raw bytes.
	rep := reply(want.AT, right)
	rep.JSON = string(more)
	if err := c.CheckWhatsat(ctx, "Hands", rep, want, radius, bound); err != nil {
		t.Errorf("CheckWhatsat judged the client's split instead of the raw answer: %v", err)
	}
	// EmulatorAnswer (the exported form) gives the same expected bytes.
	loc, _ := placesLocation(want.Location)
	if got, err := c.EmulatorAnswer(ctx, proto.Location{Raw: want.Location}, radius, bound); err != nil || !bytes.Equal(got, right) {
		t.Errorf("EmulatorAnswer(%s) = %q, %v", loc, clip(string(got), 200), err)
	}
}

// The checkers that follow updates compare client times exactly, with their own code.
func TestNewerOrSameAndFreshnessCompareTimesExactly(t *testing.T) {
	at := func(server, tm string) string { return "AT " + server + " +0.000000001 c +1+1 " + tm }
	for _, c := range []struct {
		got, want string
		ok        bool
	}{
		{at("A", "1700000000.0000000000000000002"), at("B", "1700000000.0000000000000000001"), true},
		{at("A", "1700000000.0000000000000000001"), at("B", "1700000000.0000000000000000002"), false},
		{at("A", "1700000000.00000000000000000010"), at("B", "1700000000.0000000000000000001"), false}, // equal, not the same line
		{at("A", "10"), at("A", "10"), true},
		{at("A", "+0"), at("B", "-0"), false},
		{at("A", "0.1"), at("B", "-0"), true},
		{at("A", "1e9"), at("B", "1"), false},
		{"AT A +0.1 d +1+1 9", at("B", "1"), false}, // another client
		{"", at("B", "1"), false},
	} {
		if got := newerOrSame(c.got, c.want); got != c.ok {
			t.Errorf("newerOrSame(%q, %q) = %v", c.got, c.want, got)
		}
	}
	if d := describeAnswer(at("A", "1700000000.0000000000000000001"), at("A", "1700000000.0000000000000000002")); !strings.Contains(d, "older than the update") {
		t.Errorf("describeAnswer: %s", d)
	}
	if d := describeAnswer(at("B", "5"), at("A", "5")); !strings.Contains(d, "names B as its origin, not A") {
		t.Errorf("describeAnswer: %s", d)
	}

	h := NewHistory()
	answer := func(tm string) {
		id := h.Invoke("whatsat", "Hands", "WHATSAT c 1 1")
		h.Complete(id, at("X", tm)+"\n{\n   \"results\" : []\n}\n\n", nil)
	}
	answer("1700000000.0000000000000000002")
	answer("1700000000.00000000000000000020") // the same time
	answer("+1700000000.0000000000000000002")
	if err := CheckFreshness(h); err != nil {
		t.Fatal(err)
	}
	answer("1700000000.0000000000000000001")
	if err := CheckFreshness(h); err == nil || !strings.Contains(err.Error(), "freshness: Hands") {
		t.Fatalf("an answer older by 1e-22 s not caught: %v", err)
	}
	// Freshness judges the AT line even when the rest of the answer is broken.
	h2 := NewHistory()
	id := h2.Invoke("whatsat", "Hands", "")
	h2.Complete(id, at("X", "11")+"\n{\n\n}\n\n", nil)
	id = h2.Invoke("whatsat", "Hands", "")
	h2.Complete(id, at("X", "10")+"\n{}\n\n\n", nil)
	if err := CheckFreshness(h2); err == nil {
		t.Fatal("an older AT line in an answer that breaks the newline rules not caught")
	}
}

func TestAReEncodedAnswerIsTheSameJSONOnlyWithItsFieldsInTheirOrder(t *testing.T) {
	upstream := `{
   "html_attributions" : [],
   "results" : [
      { "name" : "Caf\u00e9 \u0026 Bar", "rating" : 4.50, "types" : [ "cafe", "food" ] }
   ],
   "status" : "OK"
}`
	same := []string{
		"{\n   \"html_attributions\": [],\n   \"results\": [\n      {\n         \"name\": \"Café & Bar\",\n         \"rating\": 4.5,\n         \"types\": [\n            \"cafe\",\n            \"food\"\n         ]\n      }\n   ],\n   \"status\": \"OK\"\n}",
		`{"html_attributions":[],"results":[{"name":"Caf\u00e9 & Bar","rating":45e-1,"types":["cafe","food"]}],"status":"OK"}`,
	}
	for _, s := range same {
		if ok, how := sameJSONInOrder([]byte(s), []byte(upstream)); !ok {
			t.Errorf("%s: not the same: %s", s, how)
		}
	}
	differ := []string{
		`{"results":[{"name":"Café & Bar","rating":4.5,"types":["cafe","food"]}],"html_attributions":[],"status":"OK"}`,  // fields reordered
		`{"html_attributions":[],"results":[{"name":"Café & Bar","types":["cafe","food"]}],"status":"OK"}`,               // a field dropped
		`{"html_attributions":[],"results":[{"name":"Café & Bar","rating":4.51,"types":["cafe","food"]}],"status":"OK"}`, // a value changed
		`{"html_attributions":[],"results":[{"name":"Café & Bar","rating":"4.5","types":["cafe","food"]}],"status":"OK"}`,
		`{"html_attributions":[],"results":[{"name":"Café & Bar","rating":4.5,"types":["food","cafe"]}],"status":"OK"}`,
		`{"html_attributions":[],"results":[],"status":"OK"}`,
		`{"html_attributions":[],"results":[{"name":"Café & Bar","rating":4.5,"types":["cafe","food"]}],"status":"OK"} {}`,
	}
	for _, s := range differ {
		if ok, _ := sameJSONInOrder([]byte(s), []byte(upstream)); ok {
			t.Errorf("%s: the same as the upstream's", s)
		}
	}
}

// herdQuery makes a query of the emulator as a herd would (GET, or POST of body to the
// New API), and returns the answer.
func herdQuery(t *testing.T, u string, body []byte) []byte {
	t.Helper()
	var resp *http.Response
	var err error
	if body == nil {
		resp, err = http.Get(u)
	} else {
		req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
		req.Header.Set("X-Goog-Api-Key", "k")
		req.Header.Set("X-Goog-FieldMask", "*")
		resp, err = http.DefaultClient.Do(req)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the herd's query %s: HTTP %d %v: %s", u, resp.StatusCode, err, b)
	}
	return b
}
