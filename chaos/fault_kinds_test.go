package chaos

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// kindExamples is a fault of every registered kind, each field set (not zero), valid on
// the default five.
var kindExamples = map[string]Fault{
	"latency":      Latency{Links: []Link{{"Goloman", "Hands"}, {"Hands", "Goloman"}}, Latency: 120 * time.Millisecond, Jitter: 30 * time.Millisecond},
	"bandwidth":    Bandwidth{Links: []Link{{"Holiday", "Welsh"}}, KBps: 7},
	"slicer":       Slicer{Links: []Link{{"Wilkes", "Hands"}}, AverageBytes: 5, SizeVariation: 2, Delay: 300 * time.Microsecond},
	"slow_close":   SlowClose{Links: []Link{{"Goloman", "Wilkes"}}, Delay: 2 * time.Second},
	"reset_peer":   ResetPeer{Links: []Link{{"Welsh", "Holiday"}}, After: 40 * time.Millisecond},
	"black_hole":   BlackHole{Links: []Link{{"Holiday", "Goloman"}}},
	"cut":          Cut{Links: []Link{{"Hands", "Wilkes"}}},
	"partition":    Partition{Groups: [][]string{{"Goloman", "Hands", "Wilkes"}, {"Holiday", "Welsh"}}},
	"isolate":      Isolate{Node: "Wilkes"},
	"crash":        Crash{Node: "Welsh"},
	"stop":         Stop{Node: "Hands"},
	"pause":        Pause{Node: "Holiday"},
	"restart":      Restart{Node: "Goloman"},
	"places_slow":  PlacesSlow{Nodes: []string{"Welsh", "Hands"}, Latency: 3 * time.Second},
	"places_down":  PlacesDown{Nodes: []string{"Goloman"}},
	"places_error": PlacesError{Status: "OVER_QUERY_LIMIT"},
}

// roundTrip checks that f comes back equal from its spec, and from that spec sent through
// JSON (the state file's form), and that its String starts with its kind's name (the
// history and the timeline name faults by it).
func roundTrip(t *testing.T, name string, f Fault) {
	t.Helper()
	spec := SpecOf(f)
	if spec.Kind != name {
		t.Fatalf("SpecOf(%#v).Kind = %q, want %q", f, spec.Kind, name)
	}
	back, err := spec.Fault()
	if err != nil {
		t.Fatalf("%s: %+v does not parse back: %v", name, spec, err)
	}
	if !reflect.DeepEqual(back, f) {
		t.Fatalf("%s: %#v came back from %+v as %#v", name, f, spec, back)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var decoded FaultSpec
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	if back, err := decoded.Fault(); err != nil || !reflect.DeepEqual(back, f) {
		t.Fatalf("%s: %#v came back through JSON %s as %#v (%v)", name, f, data, back, err)
	}
	if kind, _, _ := strings.Cut(f.String(), " "); kind != name {
		t.Fatalf("%s: String %q does not start with the kind", name, f)
	}
}

func TestEveryKindHasAnExample(t *testing.T) {
	if got, want := slices.Sorted(maps.Keys(kindExamples)), KindNames(); !slices.Equal(got, want) {
		t.Fatalf("examples for %v, registered kinds %v", got, want)
	}
}

func TestEveryKindRoundTrips(t *testing.T) {
	for name, f := range kindExamples {
		t.Run(name, func(t *testing.T) {
			for field, v := range reflect.ValueOf(f).Fields() {
				if v.IsZero() {
					t.Fatalf("the example leaves %s zero: a dropped field would go unseen", field.Name)
				}
			}
			if _, err := f.Effects(five()); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			roundTrip(t, name, f)
		})
	}
}

// drawTopologies are herds to draw on: the default five, grids, a pair, and random
// connected herds from the given seed (printed).
func drawTopologies(t *testing.T, seed uint64) map[string]topology.Config {
	t.Logf("random topologies from seed %d", seed)
	addr := func(n string) string { return "h:" + n }
	out := map[string]topology.Config{
		"five": five(),
		"pair": topology.Build([]string{"A", "B"}, [][2]string{{"A", "B"}}, addr, addr),
	}
	for _, g := range [][2]int{{1, 3}, {3, 3}, {2, 5}} {
		names, links := topology.Grid(g[0], g[1])
		out[fmt.Sprintf("grid%dx%d", g[0], g[1])] = topology.Build(names, links, addr, addr)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range 5 {
		s, n := rng.Uint64(), 2+rng.IntN(14)
		out[fmt.Sprintf("random%d (seed %d, %d servers)", i, s, n)] = randomTopology(s, n)
	}
	return out
}

// TestDrawsAreValid: on many herds and seeds, every drawn kind's draws (directly, with
// some servers held down, and within random schedules) have effects on that herd and
// round-trip through their spec.
func TestDrawsAreValid(t *testing.T) {
	drawn := drawnKinds()
	for name, cfg := range drawTopologies(t, 20261129) {
		seen := map[string]bool{}
		for seed := range uint64(100) {
			d := &Draw{Rand: rand.New(rand.NewPCG(seed, 3)), Config: cfg, held: map[string]string{}}
			for _, n := range cfg.Names() { // hold down some servers
				if d.Rand.IntN(3) == 0 {
					d.held[n] = "x"
				}
			}
			for _, k := range drawn {
				f := k.draw(d)
				got := SpecOf(f).Kind
				if got != k.name && got != "cut" {
					t.Fatalf("%s, seed %d: kind %s drew a %s: %s", name, seed, k.name, got, f)
				}
				if _, err := f.Effects(cfg); err != nil {
					t.Fatalf("%s, seed %d: kind %s drew %s: %v", name, seed, k.name, f, err)
				}
				roundTrip(t, got, f)
				seen[got] = true
			}
			for _, st := range RandomSchedule(seed, cfg, 40).Steps {
				if st.Inject == nil {
					continue
				}
				f, err := st.Inject.Fault()
				if err != nil {
					t.Fatalf("%s, seed %d: %+v: %v", name, seed, *st.Inject, err)
				}
				if _, err := f.Effects(cfg); err != nil {
					t.Fatalf("%s, seed %d: %s: %v", name, seed, f, err)
				}
				roundTrip(t, st.Inject.Kind, f)
			}
		}
		for _, k := range drawn {
			if !seen[k.name] {
				t.Errorf("%s: kind %s was never drawn", name, k.name)
			}
		}
	}
}

func TestDrawSlotsAreDense(t *testing.T) {
	drawn := drawnKinds() // panics on a gap
	if len(drawn) != 13 {
		t.Fatalf("%d drawn kinds; the golden schedules were drawn from 13", len(drawn))
	}
	for _, k := range kinds {
		if (k.draw == nil) != (k.name == "bandwidth" || k.name == "slow_close" || k.name == "places_error") {
			t.Errorf("kind %s: drawn %v", k.name, k.draw != nil)
		}
	}
}

func TestFaultKindsListsEveryKind(t *testing.T) {
	if len(FaultKinds) != len(kinds) || len(KindNames()) != len(kinds) {
		t.Fatalf("FaultKinds has %d, KindNames %d, the registry %d", len(FaultKinds), len(KindNames()), len(kinds))
	}
	cmds := Commands()
	for i, name := range KindNames() {
		if FaultKinds[name] == "" {
			t.Errorf("%s: no help line", name)
		}
		if cmds[i].Kind != name || cmds[i].Name == "" {
			t.Errorf("command %d: %+v, want one for %s", i, cmds[i], name)
		}
	}
}

func TestUnknownKindsListTheKnownOnes(t *testing.T) {
	for _, s := range []FaultSpec{{Kind: "lag"}, {}} {
		_, err := s.Fault()
		if err == nil {
			t.Fatalf("%+v: no error", s)
		}
		for _, name := range KindNames() {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%+v: %q does not list %s", s, err, name)
			}
		}
	}
}

// testFault is a fault type of no kind, for Register's refusals.
type testFault struct{}

func (testFault) String() string                           { return "test" }
func (testFault) Effects(topology.Config) (Effects, error) { return Effects{}, nil }

func TestRegisterRefusesBadKinds(t *testing.T) {
	full := func() Kind[testFault] {
		return Kind[testFault]{
			Name:     "test",
			Takes:    "nothing",
			Parse:    func(FaultSpec) (testFault, error) { return testFault{}, nil },
			Spec:     func(testFault) FaultSpec { return FaultSpec{} },
			NotDrawn: true,
			Command:  Command{Name: "test", Short: "test", Args: ArgsServer},
		}
	}
	drawCut := func(d *Draw) Fault { return Cut{} }
	cases := map[string]func(*Kind[testFault]){
		"registered twice":            func(k *Kind[testFault]) { k.Name = "latency" },
		"no name":                     func(k *Kind[testFault]) { k.Name = "" },
		"no Takes":                    func(k *Kind[testFault]) { k.Takes = "" },
		"no Parse":                    func(k *Kind[testFault]) { k.Parse = nil },
		"no Spec":                     func(k *Kind[testFault]) { k.Spec = nil },
		"no Draw":                     func(k *Kind[testFault]) { k.NotDrawn = false },
		"both a Draw and NotDrawn":    func(k *Kind[testFault]) { k.Draw = drawCut },
		"draw slot 0 already taken":   func(k *Kind[testFault]) { k.NotDrawn, k.Draw = false, drawCut },
		"no herdctl Command":          func(k *Kind[testFault]) { k.Command.Args = "" },
		"herdctl command cut already": func(k *Kind[testFault]) { k.Command.Name = "cut" },
		"a Slot but NotDrawn":         func(k *Kind[testFault]) { k.Slot = 3 },
		"a negative Slot":             func(k *Kind[testFault]) { k.NotDrawn, k.Draw, k.Slot = false, drawCut, -1 },
	}
	for want, spoil := range cases {
		k := full()
		spoil(&k)
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), want) {
					t.Errorf("Register with %s: panic %v, want one saying %q", want, r, want)
				}
			}()
			Register(k)
		}()
	}
	if _, ok := kinds["test"]; ok {
		t.Fatal("a refused kind was registered")
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "already registered as latency") {
			t.Errorf("Register of a type taken: panic %v", r)
		}
	}()
	k := Kind[Latency]{Name: "latency2", Takes: "x", Parse: func(FaultSpec) (Latency, error) { return Latency{}, nil },
		Spec: func(Latency) FaultSpec { return FaultSpec{} }, NotDrawn: true, Command: Command{Name: "latency2", Short: "x", Args: ArgsLinks}}
	Register(k)
}
