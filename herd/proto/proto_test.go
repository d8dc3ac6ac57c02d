package proto

import (
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestFieldsSplitOnlyOnTheSixWhiteSpaceBytes(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"IAMAT a b c", []string{"IAMAT", "a", "b", "c"}},
		{"  IAMAT\t\ta\r\nb\fc\v ", []string{"IAMAT", "a", "b", "c"}},
		{"", nil},
		{" \t\r\n\f\v", nil},
		// U+0085 (NEL), U+2028 and \x1c..\x1f are not separators.
		{"a\u0085b", []string{"a\u0085b"}},
		{"a\u2028b", []string{"a\u2028b"}},
		{"a\x1cb\x1dc\x1ed\x1fe", []string{"a\x1cb\x1dc\x1ed\x1fe"}},
		{"a\x00b", []string{"a\x00b"}},
		{"\xff\xfe \xc3", []string{"\xff\xfe", "\xc3"}},
	}
	for _, c := range cases {
		got := Fields(nil, c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Fields(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTrimLineDropsNewlineAndOneCarriageReturn(t *testing.T) {
	for in, want := range map[string]string{
		"abc\n": "abc", "abc\r\n": "abc", "abc": "abc", "abc\r": "abc", "abc\r\r\n": "abc\r", "\n": "",
	} {
		if got := TrimLine(in); got != want {
			t.Errorf("TrimLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseLocation(t *testing.T) {
	valid := map[string][2]string{
		"+34.068930-118.445127": {"+34.068930", "-118.445127"},
		"+34-118":               {"+34", "-118"},
		"-90+180":               {"-90", "+180"},
		"+90.000-180.0000":      {"+90.000", "-180.0000"},
		"+0+0":                  {"+0", "+0"},
		"-00.5+000179.99999999": {"-00.5", "+000179.99999999"},
	}
	for in, want := range valid {
		loc, err := ParseLocation(in)
		if err != nil {
			t.Errorf("ParseLocation(%q): %v", in, err)
			continue
		}
		if loc.Raw != in || loc.Lat != want[0] || loc.Lng != want[1] {
			t.Errorf("ParseLocation(%q) = %+v, want %v", in, loc, want)
		}
	}
	invalid := []string{
		"", "34.068930-118.445127", "+34.068930", "+34.068930118.445127", "+34.-118", "+.5-118",
		"+90.0000001+0", "-91+0", "+0+180.000000001", "+0-181", "+34.06-118.44x", "+34.06--118",
		"+1e1+2", "+ 34-118", "+34-118-", "++34-118", "+３４-118", "+34,0-118",
		"+99999999999999999999+0",
	}
	for _, in := range invalid {
		if _, err := ParseLocation(in); !errors.Is(err, ErrLocation) {
			t.Errorf("ParseLocation(%q) = %v, want ErrLocation", in, err)
		}
	}
}

func TestPlacesParamDropsPlusSigns(t *testing.T) {
	loc, _ := ParseLocation("+34.068930-118.445127")
	if got := loc.PlacesParam(); got != "34.068930,-118.445127" {
		t.Fatalf("got %q", got)
	}
	loc, _ = ParseLocation("-1.5+2")
	if got := loc.PlacesParam(); got != "-1.5,2" {
		t.Fatalf("got %q", got)
	}
}

func TestParseTime(t *testing.T) {
	valid := map[string]Time{
		"1520023934.918963997":                 {Int: "1520023934", Frac: "918963997"},
		"1520023934":                           {Int: "1520023934"},
		"+1520023934.5000":                     {Int: "1520023934", Frac: "5"},
		"-12.25":                               {Neg: true, Int: "12", Frac: "25"},
		"-0.000":                               {},
		"000":                                  {},
		"0001.0010":                            {Int: "1", Frac: "001"},
		"99999999999999999999999.123456789123": {Int: "99999999999999999999999", Frac: "123456789123"},
	}
	for in, want := range valid {
		got, err := ParseTime(in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", in, err)
			continue
		}
		want.Raw = in
		if got != want {
			t.Errorf("ParseTime(%q) = %+v, want %+v", in, got, want)
		}
	}
	invalid := []string{"", "+", "-", ".5", "5.", "1e9", "1E9", "nan", "NaN", "inf", "-inf",
		"1_000", "0x10", "1.2.3", "１２", "12 ", "+-1", "1,5", "infinity"}
	for _, in := range invalid {
		if _, err := ParseTime(in); !errors.Is(err, ErrTime) {
			t.Errorf("ParseTime(%q) = %v, want ErrTime", in, err)
		}
	}
}

func TestTimeCompareIsExactBeyondFloatPrecision(t *testing.T) {
	ordered := []string{
		"-100", "-99.999999999999", "-1", "-0.000000001", "0", "0.000000000000001",
		"1520023934.918963997", "1520023934.918963998", "1520023934.9189639980001",
		"1520023935", "99999999999999999999",
	}
	for i := range ordered {
		for j := range ordered {
			a, _ := ParseTime(ordered[i])
			b, _ := ParseTime(ordered[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	a, _ := ParseTime("+0010.50")
	b, _ := ParseTime("10.5")
	if a.Compare(b) != 0 {
		t.Error("equal values with different spellings must compare equal")
	}
}

func TestFormatDiff(t *testing.T) {
	now := time.Unix(1520023935, 182837383)
	cases := map[string]string{
		"1520023934.918963997":   "+0.263873386",
		"1520023935.182837383":   "+0.000000000",
		"1520023935.182837384":   "-0.000000001",
		"1520024034.182837384":   "-99.000000001",
		"0":                      "+1520023935.182837383",
		"-5.5":                   "+1520023940.682837383",
		"1520023934":             "+1.182837383",
		"1520023934.9189639974":  "+0.263873386", // rounds down
		"1520023934.9189639975":  "+0.263873386", // exact half: 0.2638733855 -> away from zero
		"1520023935.1828373835":  "-0.000000001",
		"1520023935.18283738301": "-0.000000000", // tiny negative keeps its sign, like %+.9f
		"99999999999999999999":   "-99999999998479976063.817162617",
	}
	for in, want := range cases {
		tm, err := ParseTime(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatDiff(now, tm); got != want {
			t.Errorf("FormatDiff(now, %s) = %s, want %s", in, got, want)
		}
	}
}

// TestFormatDiffFastAndBigPathsAgree checks the int64 fast path against big.Int arithmetic.
func TestFormatDiffFastAndBigPathsAgree(t *testing.T) {
	now := time.Unix(1764150000, 123456789)
	for _, in := range []string{"0", "1", "-1", "1764150000.123456789", "1764150000.123456790",
		"1764149999.999999999", "-1764150000.5", "12345678901234567.000000001", "-99999999999999999"} {
		tm, _ := ParseTime(in)
		if fast, slow := formatDiffFast(now, tm), formatDiffBig(now, tm); fast != slow {
			t.Errorf("%s: fast %s, big %s", in, fast, slow)
		}
	}
}

// A negative client time whose nanoseconds and now's add up to a second or more carries
// that second: "-1.999999999" once made a diff with ten decimals, one second short.
func TestFormatDiffOfANegativeTimeCarriesTheNanoseconds(t *testing.T) {
	now := time.Unix(1764150000, 500000000)
	tm, _ := ParseTime("-1.999999999")
	if got, want := FormatDiff(now, tm), "+1764150002.499999999"; got != want {
		t.Fatalf("FormatDiff(now, -1.999999999) = %s, want %s", got, want)
	}
	for _, ns := range []int{0, 1, 499999999, 500000000, 999999999} {
		now := time.Unix(1764150000, int64(ns))
		for _, in := range []string{"-1.999999999", "-0.000000001", "-0.5", "-0.999999999", "-1764150000.999999999",
			"-99999999999999999.999999999", "1764150000.999999999", "1764150001", "0.5", "-3"} {
			tm, _ := ParseTime(in)
			fast, slow := formatDiffFast(now, tm), formatDiffBig(now, tm)
			if fast != slow || CheckDiff(fast) != nil {
				t.Errorf("now %d.%09d, time %s: fast %s, big %s", now.Unix(), ns, in, fast, slow)
			}
		}
	}
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		line string
		kind Kind
	}{
		{"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997", IAmAt},
		{"\t IAMAT  kiwi +34-118 1520023934 \r", IAmAt},
		{"IAMAT \xff\xfeclient +34-118 1", IAmAt},
		{"WHATSAT kiwi.cs.ucla.edu 10 5", WhatsAt},
		{"WHATSAT kiwi 10.5871263 20", WhatsAt},
		{"WHATSAT kiwi 50 1", WhatsAt},
		{"WHATSAT kiwi 50.000 +01", WhatsAt},
		{"WHATSAT kiwi 0.001 1", WhatsAt},
		{"", Blank},
		{"  \t ", Blank},
		{"iamat kiwi +34-118 1", Invalid},
		{"IAMAT kiwi +34-118", Invalid},
		{"IAMAT kiwi +34-118 1 extra", Invalid},
		{"IAMAT kiwi 34-118 1", Invalid},
		{"IAMAT kiwi +34-118 1e9", Invalid},
		{"IAMAT\u0085kiwi +34-118 1", Invalid},
		{"WHATSAT kiwi 0 5", Invalid},
		{"WHATSAT kiwi 0.000 5", Invalid},
		{"WHATSAT kiwi 50.0001 5", Invalid},
		{"WHATSAT kiwi 51 5", Invalid},
		{"WHATSAT kiwi -1 5", Invalid},
		{"WHATSAT kiwi 10 0", Invalid},
		{"WHATSAT kiwi 10 21", Invalid},
		{"WHATSAT kiwi 10 5.0", Invalid},
		{"WHATSAT kiwi 10 -5", Invalid},
		{"WHATSAT kiwi 10", Invalid},
		{"AT Goloman +0.1 kiwi +34-118 1", Invalid},
		{"HERD-AT Goloman +0.100000000 kiwi +34-118 1", Invalid},
	}
	for _, c := range cases {
		cmd, _ := ParseCommand(c.line, nil)
		if cmd.Kind != c.kind {
			t.Errorf("ParseCommand(%q).Kind = %v (err %v), want %v", c.line, cmd.Kind, cmd.Err, c.kind)
		}
	}
}

func TestParseCommandKeepsFieldsByteForByte(t *testing.T) {
	cmd, _ := ParseCommand("IAMAT kiwi.cs +034.0689300-118.445127 +1520023934.918963997000", nil)
	if cmd.IAMAT.Client != "kiwi.cs" || cmd.IAMAT.Location.Raw != "+034.0689300-118.445127" ||
		cmd.IAMAT.Time.Raw != "+1520023934.918963997000" {
		t.Fatalf("fields changed: %+v", cmd.IAMAT)
	}
	cmd, _ = ParseCommand("WHATSAT kiwi 10.5871263 07", nil)
	if cmd.WHATSAT.RadiusKm != "10.5871263" || cmd.WHATSAT.Bound != 7 {
		t.Fatalf("got %+v", cmd.WHATSAT)
	}
}

func TestRadiusMetresMovesTheDecimalPointExactly(t *testing.T) {
	for in, want := range map[string]string{
		"10": "10000", "10.5871263": "10587.1263", "50": "50000", "0.001": "1", "0.0001": "0.1",
		"+1.5": "1500", "007.25": "7250", "1.000": "1000", "0.00000001": "0.00001",
	} {
		if got := RadiusMetres(in); got != want {
			t.Errorf("RadiusMetres(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestFormatInvalidEchoesTheLineAsReceived(t *testing.T) {
	if got := FormatInvalid("  FOO \t bar\r"); got != "?   FOO \t bar\r\n" {
		t.Fatalf("got %q", got)
	}
}

func TestPeerATRoundTrip(t *testing.T) {
	line := "HERD-AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"
	u, err := ParsePeerAT(Fields(nil, line))
	if err != nil {
		t.Fatal(err)
	}
	if got := "HERD-" + u.ATLine(); got != line { // what a link writes
		t.Fatalf("peer line = %q", got)
	}
	if got := u.ATLine(); got != strings.TrimPrefix(line, "HERD-") {
		t.Fatalf("ATLine = %q", got)
	}
	for _, bad := range []string{
		"HERD-AT Goloman 0.263873386 kiwi +34-118 1",
		"HERD-AT Goloman +0.26387338 kiwi +34-118 1",
		"HERD-AT Goloman +0.263873386 kiwi 34-118 1",
		"HERD-AT Goloman +0.263873386 kiwi +34-118 x",
		"HERD-AT Goloman +0.263873386 kiwi +34-118",
	} {
		if _, err := ParsePeerAT(Fields(nil, bad)); err == nil {
			t.Errorf("ParsePeerAT(%q) accepted", bad)
		}
	}
}

func TestParsePeerLineKeepsCanonicalLines(t *testing.T) {
	canonical := "HERD-AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997"
	u, err := ParsePeerLine(canonical, Fields(nil, canonical))
	if err != nil {
		t.Fatal(err)
	}
	if want := canonical[len("HERD-"):]; u.AT != want || u.ATLine() != want {
		t.Fatalf("AT = %q, ATLine = %q, want %q", u.AT, u.ATLine(), want)
	}
	if unsafe.StringData(u.AT) != unsafe.StringData(canonical[5:]) {
		t.Error("the AT line of a canonical line is a copy, not a slice of it")
	}
	// Extra white space is accepted, but the AT line is formatted afresh, canonical.
	for _, loose := range []string{
		"HERD-AT  Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997",
		"HERD-AT Goloman\t+0.263873386 kiwi +34.068930-118.445127 1520023934.918963997 ",
		" HERD-AT Goloman +0.263873386 kiwi +34.068930-118.445127 1520023934.918963997",
		// One separator each, but not a space: as long as the canonical line, not it.
		"HERD-AT Goloman\t+0.263873386 kiwi +34.068930-118.445127 1520023934.918963997",
		"HERD-AT Goloman +0.263873386 kiwi\v+34.068930-118.445127\r1520023934.918963997",
	} {
		u, err := ParsePeerLine(loose, Fields(nil, loose))
		if err != nil {
			t.Fatalf("%q: %v", loose, err)
		}
		if u.AT != "" || u.ATLine() != canonical[5:] {
			t.Errorf("%q: AT = %q, ATLine = %q", loose, u.AT, u.ATLine())
		}
	}
	if _, err := ParsePeerLine("HERD-AT Goloman +0.1 kiwi +34-118", Fields(nil, "HERD-AT Goloman +0.1 kiwi +34-118")); err == nil {
		t.Error("a short line was accepted")
	}
}

// FuzzParseCommand checks the parser never panics, that what it accepts round-trips byte
// for byte, and that accepted times agree with an independent big.Rat reading.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997",
		"WHATSAT kiwi.cs.ucla.edu 10 5", "WHATSAT a 50.0 20", "IAMAT a -90+180 -0.5",
		"IAMAT \xff +0+0 0", " \t\v\f\r", "IAMAT a +9.9-1 1.", "IAMAT a\u0085b +1+1 1",
	} {
		f.Add(s)
	}
	now := time.Unix(1764150000, 123456789)
	f.Fuzz(func(t *testing.T, line string) {
		cmd, fields := ParseCommand(line, nil)
		switch cmd.Kind {
		case IAmAt:
			c := cmd.IAMAT
			if fields[1] != c.Client || fields[2] != c.Location.Raw || fields[3] != c.Time.Raw {
				t.Fatalf("fields not kept: %q", line)
			}
			if c.Location.Lat+c.Location.Lng != c.Location.Raw {
				t.Fatalf("location split loses bytes: %q", line)
			}
			r, ok := new(big.Rat).SetString(strings.TrimPrefix(c.Time.Raw, "+"))
			if !ok {
				t.Fatalf("accepted time big.Rat rejects: %q", c.Time.Raw)
			}
			diff := FormatDiff(now, c.Time)
			d, ok := new(big.Rat).SetString(diff)
			if !ok {
				t.Fatalf("diff %q is not a number", diff)
			}
			want := new(big.Rat).Sub(new(big.Rat).SetFrac64(now.UnixNano(), 1e9), r)
			err := new(big.Rat).Sub(want, d)
			if err.Abs(err).Cmp(big.NewRat(1, 2e9)) > 0 {
				t.Fatalf("diff %s is off from %s for %q", diff, want.FloatString(12), c.Time.Raw)
			}
		case WhatsAt:
			if cmd.WHATSAT.Bound < 1 || cmd.WHATSAT.Bound > 20 {
				t.Fatalf("bound out of range: %q", line)
			}
			m, ok := new(big.Rat).SetString(RadiusMetres(cmd.WHATSAT.RadiusKm))
			if !ok || m.Sign() <= 0 || m.Cmp(big.NewRat(50000, 1)) > 0 {
				t.Fatalf("radius out of range: %q -> %s", line, RadiusMetres(cmd.WHATSAT.RadiusKm))
			}
		case Blank:
			if strings.TrimLeft(line, " \t\r\n\f\v") != "" {
				t.Fatalf("non-blank line called blank: %q", line)
			}
		}
	})
}
