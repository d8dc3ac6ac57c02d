package sim

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"
)

var (
	seeds     = flag.Int("seeds", 200, "how many seeds TestSeeds runs")
	firstSeed = flag.Uint64("seed", 1, "the first seed TestSeeds runs")
	first     = flag.Bool("first", false, "TestSeeds stops at the first failing seed")
)

// TestSeeds runs -seeds schedules from -seed; a failure prints its seed, the property,
// the last events, the replay command and the shrunk schedule.
func TestSeeds(t *testing.T) {
	start := time.Now()
	var sim time.Duration
	var st Stats
	for seed := *firstSeed; seed < *firstSeed+uint64(*seeds); seed++ {
		res := RunSeed(seed)
		sim += res.SimTime
		st.Acked += res.Stats.Acked
		st.Judged += res.Stats.Judged
		st.Resyncs += res.Stats.Resyncs
		st.Overflows += res.Stats.Overflows
		st.PeerAT += res.Stats.PeerAT
		if res.Faults < MinFaults || res.SimTime < MinSimTime {
			t.Errorf("seed %d: %d faults over %v, want at least %d over %v", seed, res.Faults, res.SimTime, MinFaults, MinSimTime)
		}
		if res.Failure != nil {
			t.Errorf("%s", Report(res.Failure))
			if *first {
				break
			}
		}
	}
	t.Logf("%d seeds, %v simulated in %v; %+v", *seeds, sim, time.Since(start), st)
}

// TestSameSeedSameRun runs seeds twice and compares the hashes of their whole traces.
func TestSameSeedSameRun(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 10, 20, 7777} {
		a, b := RunSeed(seed), RunSeed(seed)
		if a.Hash != b.Hash || a.Steps != b.Steps {
			t.Errorf("seed %d: two runs differ: hash %x/%x, %d/%d events", seed, a.Hash, b.Hash, a.Steps, b.Steps)
		}
		if c := RunSeed(seed + 1000); c.Hash == a.Hash {
			t.Errorf("seeds %d and %d gave the same trace", seed, seed+1000)
		}
	}
}

func TestCompareTime(t *testing.T) {
	order := []string{"-1000.5", "-3", "-2.9999999999", "-0.0", "0", "+0.0000000001", "0.1", "1", "1.5", "1795900000.123456789", "99999999999999999999.1"}
	for i := range order {
		for j := range order {
			want := cmpInt(i, j)
			if (order[i] == "-0.0" && order[j] == "0") || (order[i] == "0" && order[j] == "-0.0") {
				want = 0
			}
			if got := compareTime(order[i], order[j]); got != want {
				t.Errorf("compareTime(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

func BenchmarkSchedule(b *testing.B) {
	var sim time.Duration
	for i := 0; b.Loop(); i++ {
		res := RunSeed(uint64(i + 1))
		sim += res.SimTime
		if res.Failure != nil {
			b.Fatal(res.Failure)
		}
	}
	b.ReportMetric(sim.Seconds()/float64(b.N), "simsec/op")
}

var _ = fmt.Sprint
var _ = strings.Join
