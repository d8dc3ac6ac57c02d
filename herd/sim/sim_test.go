package sim

import (
	"cmp"
	"flag"
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
		st.Lines += res.Stats.Lines
		st.Invalid += res.Stats.Invalid
		st.Whatsat += res.Stats.Whatsat
		st.PlacesTimeouts += res.Stats.PlacesTimeouts
		st.ForgedDropped += res.Stats.ForgedDropped
		if res.Failure == nil && (res.Faults < MinFaults || res.SimTime < MinSimTime) {
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
			want := cmp.Compare(i, j)
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

// TestShrinkFindsTheOneBadOperation plants an invalid IAMAT in a schedule's fourth
// phase: the shrunk schedule is that operation alone.
func TestShrinkFindsTheOneBadOperation(t *testing.T) {
	s := Generate(5)
	bad := Op{Offset: OpsFrom, Server: s.Servers[0], Client: "planted", Location: "+1+1", Time: "not-a-time"}
	s.Phases[3].Ops = append(s.Phases[3].Ops, bad)
	res := Run(s)
	if res.Failure == nil || res.Failure.Property != "schedule" || res.Failure.Phase != 3 {
		t.Fatalf("want the planted operation to fail phase 3, got %v", res.Failure)
	}
	small, f, runs := Shrink(s, res.Failure, 500)
	if len(small.Phases) != 1 || small.Faults() != 0 || small.Ops() != 1 || small.Phases[0].Ops[0] != bad {
		t.Fatalf("shrunk in %d runs to:\n%s", runs, small)
	}
	if f.Property != "schedule" {
		t.Fatalf("the shrunk schedule fails with %v", f)
	}
	t.Logf("%d phases, %d faults, %d operations shrunk to 1 operation in %d runs", len(s.Phases), s.Faults(), s.Ops(), runs)
}

func TestCheckDiff(t *testing.T) {
	now := time.Unix(1795900000, 500_000_000)
	for _, c := range []struct{ diff, time, want string }{
		{"+0.500000000", "1795900000", ""},
		{"-0.500000000", "1795900001", ""},
		{"+0.000000000", "1795900000.5", ""},
		{"-0.000000000", "1795900000.5000000004", ""}, // a tiny negative difference keeps its sign
		{"+0.000000000", "1795900000.5000000004", "sign"},
		{"+1795900001.500000000", "-1", ""},
		{"+0.50000000", "1795900000", "nine decimals"},
		{"+0.500000002", "1795900000", "off by"},
		{"0.500000000", "1795900000", "no sign"},
	} {
		got := checkDiff(c.diff, now, c.time)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("checkDiff(%s, %s) = %q, want %q", c.diff, c.time, got, c.want)
		}
	}
}
