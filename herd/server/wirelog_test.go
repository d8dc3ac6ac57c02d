package server

import (
	"strconv"
	"testing"
	"time"
)

func TestAppendQuotedIsStrconvQuote(t *testing.T) {
	for _, s := range []string{"", "IAMAT kiwi +34-118 1", "a\"b", "back\\slash", "tab\there", "\xff\xfe", "é", "\x00", "~ok~", "\x7f"} {
		if got, want := string(appendQuoted(nil, s)), strconv.Quote(s); got != want {
			t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestLogTimestampsAreRFC3339WithNanoseconds(t *testing.T) {
	l := &wireLog{}
	now := time.Now().UTC()
	l.prefix = now.AppendFormat(nil, "2006-01-02T15:04:05.")
	l.sec = now.Unix()
	b := appendNanos(append([]byte(nil), l.prefix...), 42)
	b = append(b, 'Z')
	if _, err := time.Parse(time.RFC3339Nano, string(b)); err != nil || string(b[len(b)-10:]) != "000000042Z" {
		t.Fatalf("%s: %v", b, err)
	}
}
