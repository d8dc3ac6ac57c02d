package bench

import (
	"testing"
	"time"
)

func TestSummariseUsesNearestRankPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := Summarise(d)
	if s.Count != 100 || s.P50 != 50*time.Millisecond || s.P90 != 90*time.Millisecond ||
		s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Fatalf("%+v", s)
	}
	if one := Summarise([]time.Duration{7}); one.P50 != 7 || one.P99 != 7 || one.Max != 7 {
		t.Fatalf("%+v", one)
	}
	if (Summarise(nil) != Stats{}) {
		t.Fatal("empty input")
	}
}

func TestClientTimesIncrease(t *testing.T) {
	c := newClientTimes()
	a, b := c.next(), c.next()
	if a >= b || len(a) != len(b) {
		t.Fatalf("%s then %s", a, b)
	}
}
