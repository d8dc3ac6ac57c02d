package chaos

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

func five() topology.Config { return topology.Default("h") }

func oracleFor(t *testing.T, faults ...Fault) *Oracle {
	t.Helper()
	var af []ActiveFault
	for i, f := range faults {
		e, err := f.Effects(five())
		if err != nil {
			t.Fatal(err)
		}
		af = append(af, ActiveFault{ID: fmt.Sprint(i), Fault: f, Effects: e})
	}
	return NewOracle(five(), af, DefaultTiming)
}

func TestOracleOneWayCutStillReachesHandsViaWilkes(t *testing.T) {
	o := oracleFor(t, Cut{Links: []Link{{"Goloman", "Hands"}}})
	if got := o.MustReach("Goloman"); len(got) != 5 {
		t.Fatalf("must reach %v", got)
	}
	if h := o.Hops("Goloman", "Hands"); h != 2 {
		t.Fatalf("hops %d, want 2 (via Wilkes)", h)
	}
}

func TestOracleEveryLinkIntoHandsCut(t *testing.T) {
	o := oracleFor(t, Cut{Links: []Link{{"Goloman", "Hands"}, {"Wilkes", "Hands"}}})
	if got := o.MustReach("Welsh"); slices.Contains(got, "Hands") || len(got) != 4 {
		t.Fatalf("must reach %v", got)
	}
	if got := o.MustNotReach("Welsh"); fmt.Sprint(got) != "[Hands]" {
		t.Fatalf("must not reach %v", got)
	}
	if got := o.MustReach("Hands"); len(got) != 5 {
		t.Fatalf("Hands' own updates must still reach all: %v", got)
	}
}

func TestOraclePartitionCrashAndPause(t *testing.T) {
	o := oracleFor(t, Partition{Groups: [][]string{{"Goloman", "Hands", "Wilkes"}, {"Holiday", "Welsh"}}})
	if got := fmt.Sprint(o.MustReach("Welsh")); got != "[Holiday Welsh]" {
		t.Fatal(got)
	}
	o = oracleFor(t, Crash{"Holiday"})
	if got := fmt.Sprint(o.MustReach("Goloman")); got != "[Goloman Hands Wilkes]" {
		t.Fatal(got)
	}
	if got := o.MustReach("Holiday"); got != nil {
		t.Fatal("a crashed origin reaches nothing")
	}
	if got := fmt.Sprint(o.MustNotReach("Goloman")); got != "[Welsh]" {
		t.Fatalf("Welsh is cut off by Holiday's crash, Holiday itself is down: %s", got)
	}
	o = oracleFor(t, Pause{"Wilkes"}, Isolate{"Goloman"})
	if got := fmt.Sprint(o.MustReach("Hands")); got != "[Hands]" {
		t.Fatal(got)
	}
}

func TestOracleResetPeerIsNeitherMustNorMustNot(t *testing.T) {
	o := oracleFor(t, ResetPeer{Links: []Link{{"Holiday", "Welsh"}}})
	if slices.Contains(o.MustReach("Goloman"), "Welsh") || slices.Contains(o.MustNotReach("Goloman"), "Welsh") {
		t.Fatal("an unreliable link neither guarantees nor forbids delivery")
	}
}

func TestOracleDeadlineAndMinDelayFollowLatencies(t *testing.T) {
	var all []Link
	cfg := five()
	for _, l := range cfg.Links() {
		all = append(all, Link{l[0], l[1]}, Link{l[1], l[0]})
	}
	o := oracleFor(t, Latency{Links: all, Latency: 100 * time.Millisecond, Jitter: 20 * time.Millisecond})
	if d := o.MinDelay("Welsh", "Hands"); d != 3*80*time.Millisecond {
		t.Fatalf("min delay %v over three hops", d)
	}
	if d := o.Deadline("Welsh", "Hands"); d != 3*(120+100)*time.Millisecond+DefaultTiming.Settle {
		t.Fatalf("deadline %v", d)
	}
}

func TestFaultsRejectWhatTheTopologyDoesNotHave(t *testing.T) {
	for _, f := range []Fault{
		Cut{Links: []Link{{"Welsh", "Hands"}}}, Crash{"Nobody"}, Partition{Groups: [][]string{{"Welsh"}, {"Welsh"}}},
		Latency{Links: []Link{{"X", "Hands"}}}, PlacesDown{Nodes: []string{"Y"}}, PlacesError{},
	} {
		if _, err := f.Effects(five()); err == nil {
			t.Errorf("%s accepted", f)
		}
	}
}

func TestParseLinks(t *testing.T) {
	l, err := ParseLinks("Goloman<->Hands")
	if err != nil || len(l) != 2 || l[1] != (Link{"Hands", "Goloman"}) {
		t.Fatal(l, err)
	}
	for _, bad := range []string{"Goloman", "->Hands", "A->", "A->B->C", "A-B"} {
		if _, err := ParseLinks(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeBackend records what the cluster asks of it.
type fakeBackend struct {
	calls   []string
	enabled map[Link]bool
	toxics  map[string]bool
	failOn  string
}

func (f *fakeBackend) rec(s string) error {
	f.calls = append(f.calls, s)
	if f.failOn != "" && strings.HasPrefix(s, f.failOn) {
		return fmt.Errorf("injected failure on %s", s)
	}
	return nil
}
func (f *fakeBackend) Config() topology.Config                            { return five() }
func (f *fakeBackend) ClientAddr(context.Context, string) (string, error) { return "", nil }
func (f *fakeBackend) PlacesURL() string                                  { return "" }
func (f *fakeBackend) AddToxic(_ context.Context, l Link, n string, _ Toxic) error {
	f.toxics[l.String()+"/"+n] = true
	return f.rec("add " + l.String() + " " + n)
}
func (f *fakeBackend) RemoveToxic(_ context.Context, l Link, n string) error {
	delete(f.toxics, l.String()+"/"+n)
	return f.rec("remove " + l.String() + " " + n)
}
func (f *fakeBackend) SetLinkEnabled(_ context.Context, l Link, on bool) error {
	f.enabled[l] = on
	return f.rec(fmt.Sprintf("enabled %s %v", l, on))
}
func (f *fakeBackend) SetPlacesStatus(_ context.Context, s string) error { return f.rec("places " + s) }
func (f *fakeBackend) Kill(_ context.Context, n string) error            { return f.rec("kill " + n) }
func (f *fakeBackend) Start(_ context.Context, n string) error           { return f.rec("start " + n) }
func (f *fakeBackend) Stop(_ context.Context, n string) error            { return f.rec("stop " + n) }
func (f *fakeBackend) Pause(_ context.Context, n string) error           { return f.rec("pause " + n) }
func (f *fakeBackend) Resume(_ context.Context, n string) error          { return f.rec("resume " + n) }
func (f *fakeBackend) Logs(context.Context, string) (map[string][]byte, error) {
	return nil, nil
}
func (f *fakeBackend) Close(context.Context) error { return nil }

func newFake() *fakeBackend { return &fakeBackend{enabled: map[Link]bool{}, toxics: map[string]bool{}} }

func TestComposedFaultsHealIndependently(t *testing.T) {
	fb := newFake()
	c := NewCluster(fb, 1)
	ctx := context.Background()
	cut, err := c.Inject(ctx, Cut{Links: []Link{{"Goloman", "Hands"}}})
	if err != nil {
		t.Fatal(err)
	}
	iso, err := c.Inject(ctx, Isolate{"Hands"})
	if err != nil {
		t.Fatal(err)
	}
	lat, _ := c.Inject(ctx, Latency{Links: []Link{{"Goloman", "Hands"}}, Latency: time.Second})
	if err := c.Heal(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if fb.enabled[Link{"Goloman", "Hands"}] {
		t.Fatal("healing the cut re-enabled a link the isolation still cuts")
	}
	if err := c.Heal(ctx, iso); err != nil {
		t.Fatal(err)
	}
	if !fb.enabled[Link{"Goloman", "Hands"}] || !fb.enabled[Link{"Hands", "Wilkes"}] {
		t.Fatal("link not restored once no fault cuts it")
	}
	if len(fb.toxics) != 1 {
		t.Fatalf("the latency toxic must survive other heals: %v", fb.toxics)
	}
	if err := c.Heal(ctx, lat); err != nil || len(fb.toxics) != 0 {
		t.Fatalf("%v %v", err, fb.toxics)
	}
	if len(c.Active()) != 0 {
		t.Fatal("faults left")
	}
}

func TestANodeHeldByAFaultCannotBeTakenByAnother(t *testing.T) {
	c := NewCluster(newFake(), 1)
	ctx := context.Background()
	id, _ := c.Inject(ctx, Pause{"Welsh"})
	if _, err := c.Inject(ctx, Crash{"Welsh"}); err == nil {
		t.Fatal("crash of a paused node accepted")
	}
	if c.State("Welsh") != Paused {
		t.Fatal(c.State("Welsh"))
	}
	c.Heal(ctx, id)
	if c.State("Welsh") != Running {
		t.Fatal(c.State("Welsh"))
	}
}

func TestAFaultThatFailsToApplyLeavesNothingBehind(t *testing.T) {
	fb := newFake()
	fb.failOn = "add Hands->Goloman"
	c := NewCluster(fb, 1)
	if _, err := c.Inject(context.Background(), Latency{Links: []Link{{"Goloman", "Hands"}, {"Hands", "Goloman"}}, Latency: time.Second}); err == nil {
		t.Fatal("no error")
	}
	if len(fb.toxics) != 0 || len(c.Active()) != 0 {
		t.Fatalf("left behind: %v", fb.toxics)
	}
}

func TestCheckFreshnessCatchesAnOlderAnswer(t *testing.T) {
	h := NewHistory()
	answer := func(node, tm string) {
		id := h.Invoke("whatsat", node, "WHATSAT c 1 1")
		h.Complete(id, "AT X +0.000000000 c +1+1 "+tm+"\n{\"results\": []}\n\n", nil)
	}
	answer("Hands", "10")
	answer("Hands", "11")
	answer("Welsh", "5")
	if err := CheckFreshness(h); err != nil {
		t.Fatal(err)
	}
	answer("Hands", "10.5")
	err := CheckFreshness(h)
	if err == nil || !strings.Contains(err.Error(), "freshness: Hands") {
		t.Fatalf("older answer not caught: %v", err)
	}
	// A crash in between excuses it.
	h2 := NewHistory()
	id := h2.Invoke("whatsat", "Hands", "")
	h2.Complete(id, "AT X +0.000000000 c +1+1 11\n{}\n\n", nil)
	now := h2.Now()
	h2.FaultStarted("f1", FaultSpec{Kind: "crash", Nodes: []string{"Hands"}}, "crash Hands", now)
	h2.FaultApplied("f1", now)
	h2.FaultEnded("f1", now)
	id = h2.Invoke("whatsat", "Hands", "")
	h2.Complete(id, "AT X +0.000000000 c +1+1 10\n{}\n\n", nil)
	if err := CheckFreshness(h2); err != nil {
		t.Fatal(err)
	}
}

// Client times the framework makes are far enough apart for any comparison to order them
// (a float64 one too): only the precision specs test exact comparison.
func TestClientTimesAreAMicrosecondApartAtLeast(t *testing.T) {
	// The last time handed out is ahead of the clock (as after a burst): every next one
	// comes from the gap, not from the clock.
	clockMu.Lock()
	lastClock = time.Now().Add(time.Second)
	clockMu.Unlock()
	prev := ClientTime()
	for range 1000 {
		next := ClientTime()
		a, _ := new(big.Rat).SetString(prev)
		b, _ := new(big.Rat).SetString(next)
		if d, _ := new(big.Rat).Sub(b, a).Float64(); d < 1e-6 {
			t.Fatalf("%s then %s: %g s apart", prev, next, d)
		}
		fa, _ := strconv.ParseFloat(prev, 64)
		fb, _ := strconv.ParseFloat(next, 64)
		if !(fb > fa) {
			t.Fatalf("%s then %s: a float64 comparison does not order them", prev, next)
		}
		prev = next
	}
}
