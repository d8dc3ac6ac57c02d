package main

import "testing"

// A failure message in the table says what failed, without the seed, the folder and
// Gomega's framing.
func TestFailureMessagesLoseTheirBoilerplate(t *testing.T) {
	for in, want := range map[string]string{
		"Unexpected error:\n    <*errors.errorString | 0xc000123>: \n    WHATSAT correctness at Goloman: 20 results\n    {\n        s: \"WHATSAT correctness at Goloman: 20 results\",\n    }\noccurred": "WHATSAT correctness at Goloman: 20 results",
		"Welsh must still hold the newer location; seed 7; artifacts in /tmp/x/y\nExpected\n":                                                                                                            "Welsh must still hold the newer location; Expected",
	} {
		if got := oneLine(boilerplate.ReplaceAllString(in, " ")); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
