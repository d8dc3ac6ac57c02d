// Command herdsim runs the deterministic simulator of the herd protocol (herd/sim) over
// many seeds on every core, and prints each failing seed with its replay command and a
// shrunk schedule.
//
//	herdsim -seeds 100000                 seeds 1..100000, in parallel (make sim SEEDS=100000)
//	herdsim -seed 42                      one seed: its failure, last events and shrunk schedule
//	herdsim -seed 42 -scenario out.yaml   and the shrunk schedule as a scenario for herdctl run
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/sim"
	"github.com/herdchaos/herd/herd/topology"
)

func main() {
	var (
		seeds    = flag.Int("seeds", 1000, "how many seeds to run")
		from     = flag.Uint64("from", 1, "the first seed")
		one      = flag.Uint64("seed", 0, "run this one seed only, with its trace's end and a shrunk schedule when it fails")
		workers  = flag.Int("workers", runtime.NumCPU(), "seeds run in parallel")
		budget   = flag.Int("shrink", 500, "most runs to shrink a failure (0: do not shrink)")
		scenario = flag.String("scenario", "", "with -seed: write the shrunk schedule as a scenario file for herdctl run")
	)
	flag.Parse()
	var err error
	switch {
	case *seeds < 1 || *workers < 1 || *budget < 0:
		err = errors.New("-seeds and -workers must be at least 1, -shrink at least 0")
	case *scenario != "" && *one == 0:
		err = errors.New("-scenario needs -seed")
	case *one != 0:
		err = runOne(*one, *budget, *scenario)
	default:
		err = runMany(*from, *seeds, *workers, *budget)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "herdsim:", err)
		os.Exit(1)
	}
}

// runMany runs seeds from..from+n-1 on workers goroutines (each run is single-threaded
// and deterministic; only their order of completion varies).
func runMany(from uint64, n, workers, budget int) error {
	start := time.Now()
	next := make(chan uint64)
	go func() {
		for s := from; s < from+uint64(n); s++ {
			next <- s
		}
		close(next)
	}()
	var (
		mu      sync.Mutex
		simTime time.Duration
		failed  []uint64
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				res := sim.RunSeed(seed)
				mu.Lock()
				simTime += res.SimTime
				if res.Failure != nil {
					failed = append(failed, seed)
					fmt.Printf("FAIL %s\n  replay: %s\n", res.Failure.Error(), sim.ReplayCommand(seed))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	fmt.Printf("%d schedules in %v on %d workers: %.0f schedules/min, %v simulated (%.0f simulated seconds per wall second); %d failed\n",
		n, took.Round(time.Millisecond), workers, float64(n)/took.Minutes(), simTime.Round(time.Second), simTime.Seconds()/took.Seconds(), len(failed))
	if len(failed) > 0 {
		slices.Sort(failed)
		for _, seed := range failed[:min(len(failed), 3)] {
			if budget == 0 {
				break
			}
			sched := sim.Generate(seed)
			res := sim.Run(sched)
			small, f, runs := sim.Shrink(sched, res.Failure, budget)
			fmt.Printf("\nseed %d shrunk in %d runs (from %d faults, %d operations); it fails with: %s\n%s",
				seed, runs, sched.Faults(), sched.Ops(), f.Error(), small)
		}
		return fmt.Errorf("%d of %d seeds failed", len(failed), n)
	}
	return nil
}

// runOne runs one seed; when it fails, prints its last events and a shrunk schedule.
func runOne(seed uint64, budget int, scenario string) error {
	sched := sim.Generate(seed)
	res := sim.Run(sched)
	fmt.Printf("seed %d: %d servers, %d phases, %d faults, %d client operations, %v simulated, %d events, trace %016x\n",
		seed, len(sched.Servers), len(sched.Phases), res.Faults, res.Ops, res.SimTime.Round(time.Millisecond), res.Steps, res.Hash)
	if res.Failure == nil {
		fmt.Println("every property held")
		return nil
	}
	fmt.Print(sim.Report(res.Failure))
	if budget > 0 {
		small, f, runs := sim.Shrink(sched, res.Failure, budget)
		fmt.Printf("\nshrunk in %d runs to %d phases, %d faults, %d operations (from %d, %d, %d); it fails with: %s\n%s",
			runs, len(small.Phases), small.Faults(), small.Ops(), len(sched.Phases), sched.Faults(), sched.Ops(), f.Error(), small)
		if scenario != "" {
			if err := writeScenario(small, scenario); err != nil {
				return err
			}
			fmt.Printf("scenario: %s (herdctl run %s)\n", scenario, scenario)
		}
	}
	return fmt.Errorf("seed %d fails: %s", seed, res.Failure.Property)
}

// writeScenario writes s as a chaos scenario (cmd/herdctl/scenarios' format) and checks
// that it parses. Only the default five servers can be written: herdctl's herds are
// described elsewhere.
func writeScenario(s *sim.Schedule, path string) error {
	cfg := topology.Default("127.0.0.1")
	if strings.Join(s.Servers, ",") != strings.Join(cfg.Names(), ",") {
		return errors.New("only a schedule of the default five servers can be written as a scenario")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: herdsim seed %d, shrunk\nseed: %d\nsteps:\n", s.Seed, s.Seed)
	for i, p := range s.Phases {
		fmt.Fprintf(&b, "  # phase %d\n", i)
		for _, f := range p.Faults {
			if line := faultStep(f); line != "" {
				fmt.Fprintf(&b, "  - inject: %s\n", line)
			}
		}
		var at time.Duration
		for _, o := range p.Ops {
			if o.Forge != "" || o.Line != "" {
				continue // a scenario has no man in the middle, and sends only valid commands
			}
			if o.Offset > at {
				fmt.Fprintf(&b, "  - wait: %v\n", o.Offset-at)
				at = o.Offset
			}
			if o.Read {
				bound, _ := strconv.Atoi(strings.TrimPrefix(o.Bound, "+"))
				fmt.Fprintf(&b, "  - whatsat: {server: %s, client: %s, radius: %q, bound: %d}\n", o.Server, o.Client, o.Radius, bound)
			} else {
				fmt.Fprintf(&b, "  - iamat: {server: %s, client: %s, location: %q, time: %q}\n", o.Server, o.Client, o.Location, o.Time)
			}
		}
		if p.Window > at {
			fmt.Fprintf(&b, "  - wait: %v\n", p.Window-at)
		}
		fmt.Fprintf(&b, "  - check: delivered\n  - heal: all\n  - check: converged\n")
	}
	fmt.Fprintf(&b, "  - check: fresh\n")
	if _, err := chaos.ParseScenario(path, []byte(b.String()), cfg); err != nil {
		return fmt.Errorf("the scenario written does not parse: %w\n%s", err, b.String())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// faultStep is f as a scenario's inject step ("" for a partition that splits nothing).
func faultStep(f sim.Fault) string {
	link := fmt.Sprintf("links: [%q]", f.A+"->"+f.B)
	switch f.Kind {
	case sim.Latency:
		return fmt.Sprintf("{kind: latency, %s, latency: %v, jitter: %v}", link, f.Latency, f.Jitter)
	case sim.Cut:
		return "{kind: cut, " + link + "}"
	case sim.BlackHole:
		return "{kind: black_hole, " + link + "}"
	case sim.Reset:
		return "{kind: reset_peer, " + link + "}"
	case sim.SlowPlaces:
		return fmt.Sprintf("{kind: places_slow, nodes: [%s], latency: 3s}", f.A)
	case sim.Partition:
		var gs []string
		for _, g := range f.Groups {
			if len(g) > 0 {
				gs = append(gs, "["+strings.Join(g, ", ")+"]")
			}
		}
		if len(gs) < 2 {
			return ""
		}
		return "{kind: partition, groups: [" + strings.Join(gs, ", ") + "]}"
	}
	return fmt.Sprintf("{kind: %s, nodes: [%s]}", f.Kind, f.A)
}
