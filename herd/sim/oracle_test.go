package sim

import (
	"strings"
	"testing"
)

// TestTheJudgeReadsClientLinesAsTheProtocolSays checks the simulator's own reading of
// client lines (oracle.go) on lines of docs/PROTOCOL.md, 1.2 to 1.6, and on the edges the
// generator draws.
func TestTheJudgeReadsClientLinesAsTheProtocolSays(t *testing.T) {
	for _, c := range []struct{ raw, kind, echo string }{
		{"IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997\n", refIAMAT, ""},
		{"IAMAT\tk\v+90-180\f-0\r\r\n", refIAMAT, ""},
		{"  IAMAT k +90.0000000+180.0 +1 \n", refIAMAT, ""},
		{"IAMAT k\x1cx +0+0 0", refIAMAT, ""}, // \x1c is a field byte; EOF ends the line
		{"IAMAT k\x00\xc2\xa0 +0+0 0\n", refIAMAT, ""},
		{"IAMAT k +90.0000001-118 1\n", refInvalid, "? IAMAT k +90.0000001-118 1\n"},
		{"IAMAT k +34-180.0000001 1\n", refInvalid, "? IAMAT k +34-180.0000001 1\n"},
		{"IAMAT k +91+1 1\n", refInvalid, "? IAMAT k +91+1 1\n"},
		{"IAMAT d +34.068930-118.445127 1e9\n", refInvalid, "? IAMAT d +34.068930-118.445127 1e9\n"},
		{"IAMAT k +34.-118 1\n", refInvalid, "? IAMAT k +34.-118 1\n"},
		{"IAMAT k\x1c+1+1 1\n", refInvalid, "? IAMAT k\x1c+1+1 1\n"}, // three fields
		{"IAMAT k +1+1 1 extra\n", refInvalid, "? IAMAT k +1+1 1 extra\n"},
		{"FOO bar\r\n", refInvalid, "? FOO bar\n"},
		{"FOO bar\r\r\n", refInvalid, "? FOO bar\r\n"},
		{"iamat k +1+1 1\n", refInvalid, "? iamat k +1+1 1\n"},
		{"WHATSAT kiwi.cs.ucla.edu 10 5\n", refWHATSAT, ""},
		{"WHATSAT k 50.0000000 20\n", refWHATSAT, ""},
		{"WHATSAT k +0.0000001 +1\n", refWHATSAT, ""},
		{"WHATSAT k 007 020\n", refWHATSAT, ""},
		{"WHATSAT k 50.0000001 5\n", refInvalid, "? WHATSAT k 50.0000001 5\n"},
		{"WHATSAT k 0 5\n", refInvalid, "? WHATSAT k 0 5\n"},
		{"WHATSAT k 0.0 5\n", refInvalid, "? WHATSAT k 0.0 5\n"},
		{"WHATSAT kiwi.cs.ucla.edu 10 21\n", refInvalid, "? WHATSAT kiwi.cs.ucla.edu 10 21\n"},
		{"WHATSAT k 10 0\n", refInvalid, "? WHATSAT k 10 0\n"},
		{"WHATSAT k 10 1.0\n", refInvalid, "? WHATSAT k 10 1.0\n"},
		{"WHATSAT k 5e1 5\n", refInvalid, "? WHATSAT k 5e1 5\n"},
		{"\n", refBlank, ""},
		{" \t\v\f\r\n", refBlank, ""},
		{"\x1c\n", refInvalid, "? \x1c\n"},
	} {
		r := readRef(c.raw)
		if r.Kind != c.kind || (c.echo != "" && r.Echo() != c.echo) {
			t.Errorf("%q: read as %s echoing %q, want %s %q", c.raw, r.Kind, r.Echo(), c.kind, c.echo)
		}
	}
	if got := refMetres("10.5871263"); got != "10587.1263" {
		t.Errorf("refMetres(10.5871263) = %s", got)
	}
	for km, m := range map[string]string{"50": "50000", "0.001": "1", "+0.0000001": "0.0001", "007": "7000", "1.5000": "1500"} {
		if got := refMetres(km); got != m {
			t.Errorf("refMetres(%s) = %s, want %s", km, got, m)
		}
	}
	lines, tooLong := splitClientLines("a\r\nb\n\nc", 100)
	if strings.Join(lines, "|") != "a\r\n|b\n|\n|c" || tooLong {
		t.Errorf("split: %q %v", lines, tooLong)
	}
	lines, tooLong = splitClientLines("abcd\nefghijk\nl\n", 5)
	if strings.Join(lines, "|") != "abcd\n|efghi" || !tooLong {
		t.Errorf("split at the limit: %q %v", lines, tooLong)
	}
}

// TestTheJudgeCutsPlacesJSONToTheBound checks refPlacesJSON on an answer with blank lines
// and white space before the list's end.
func TestTheJudgeCutsPlacesJSONToTheBound(t *testing.T) {
	body := "{\n\n \"a\" : 1,\n \"results\" : [ {\"x\": [1,2]},\n\n {\"y\": \"]\"} ,{\"z\":3}\n ],\n \"status\" : \"OK\"\n}\n\n"
	for bound, want := range map[int]string{
		1: "{\n \"a\" : 1,\n \"results\" : [ {\"x\": [1,2]}\n ],\n \"status\" : \"OK\"\n}",
		2: "{\n \"a\" : 1,\n \"results\" : [ {\"x\": [1,2]},\n {\"y\": \"]\"}\n ],\n \"status\" : \"OK\"\n}",
		3: "{\n \"a\" : 1,\n \"results\" : [ {\"x\": [1,2]},\n {\"y\": \"]\"} ,{\"z\":3}\n ],\n \"status\" : \"OK\"\n}",
	} {
		got, err := refPlacesJSON([]byte(body), "results", bound)
		if err != nil || string(got) != want {
			t.Errorf("bound %d: %q %v, want %q", bound, got, err, want)
		}
	}
}
