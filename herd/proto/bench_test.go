package proto

import (
	"testing"
	"time"
)

func BenchmarkParseIAMAT(b *testing.B) {
	line := "IAMAT kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"
	var scratch []string
	b.ReportAllocs()
	for b.Loop() {
		var cmd Command
		cmd, scratch = ParseCommand(line, scratch)
		if cmd.Kind != IAmAt {
			b.Fatal(cmd.Err)
		}
	}
}

func BenchmarkParseWHATSAT(b *testing.B) {
	line := "WHATSAT kiwi.cs.ucla.edu 10.5871263 20"
	var scratch []string
	b.ReportAllocs()
	for b.Loop() {
		var cmd Command
		cmd, scratch = ParseCommand(line, scratch)
		if cmd.Kind != WhatsAt {
			b.Fatal(cmd.Err)
		}
	}
}

func BenchmarkFormatDiff(b *testing.B) {
	t, _ := ParseTime("1520023934.918963997")
	now := time.Unix(1520023935, 182837383)
	b.ReportAllocs()
	for b.Loop() {
		FormatDiff(now, t)
	}
}
