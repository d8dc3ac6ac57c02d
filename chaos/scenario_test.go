package chaos

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestScenarioErrorsNameTheLine(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"unknown server": {"steps:\n  - iamat: {server: Nobody, client: c}\n", ":2: unknown server \"Nobody\""},
		"bad link":       {"steps:\n  - check: delivered\n  - inject: {kind: cut, links: [\"Welsh->Hands\"]}\n", ":3: link Welsh->Hands: Welsh and Hands are not neighbours"},
		"malformed link": {"steps:\n  - inject: {kind: cut, links: [\"Welsh\"]}\n", ":2: link \"Welsh\": want A->B or A<->B"},
		"unknown kind":   {"steps:\n  - inject: {kind: meteor}\n", ":2: unknown fault kind \"meteor\""},
		"two actions":    {"steps:\n  - wait: 1s\n    check: fresh\n", ":2: a step does exactly one thing"},
		"unknown field":  {"steps:\n  - iamat: {server: Welsh, client: c}\n  - sleep: 1s\n", ":3: unknown step field \"sleep\""},
		"heal unknown":   {"steps:\n  - heal: later\n", ":2: heal \"later\": no earlier step injects"},
		"bad location":   {"steps:\n  - iamat: {server: Welsh, client: c, location: \"34-118\"}\n", ":2: iamat location"},
		"bad check":      {"steps:\n  - check: everything\n", ":2: unknown check \"everything\""},
		"bad radius":     {"steps:\n  - whatsat: {server: Welsh, client: c, radius: \"99\"}\n", ":2: whatsat: bad radius"},
		"top field":      {"name: x\nstepz: []\n", ":2: unknown field \"stepz\""},
		"no steps":       {"name: x\n", "no steps"},
		"bad yaml":       {"steps: [\n", "scenario.yaml"},
		"as without":     {"steps:\n  - wait: 1s\n    as: w\n", ":2: 'as' names an injected fault"},
		"one node":       {"steps:\n  - inject: {kind: crash, nodes: [Welsh, Hands]}\n", ":2: crash takes exactly one node"},
	}
	for what, c := range cases {
		_, err := ParseScenario("scenario.yaml", []byte(c.body), five())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", what, err, c.want)
		}
	}
}

func TestScenarioParsesEveryStep(t *testing.T) {
	body := `name: all steps
seed: 9
steps:
  - inject: {kind: latency, links: ["Goloman<->Hands"], latency: 100ms, jitter: 10ms}
    as: slow
  - iamat: {server: Welsh, client: phone, location: "+1+1", time: "12.5"}
  - whatsat: {server: Hands, client: phone, radius: "2.5", bound: 3}
  - updates: 4
  - wait: 250ms
  - check: delivered
  - heal: slow
  - heal: all
`
	sc, err := ParseScenario("s.yaml", []byte(body), five())
	if err != nil {
		t.Fatal(err)
	}
	if sc.Seed != 9 || len(sc.Steps) != 8 || sc.Steps[0].Inject.Latency != 100*time.Millisecond ||
		sc.Steps[4].Wait != 250*time.Millisecond || sc.Steps[2].WHATSAT.Bound != 3 || sc.Steps[6].Line != 11 {
		t.Fatalf("%+v", sc.Steps)
	}
}

func TestFaultSpecsRoundTrip(t *testing.T) {
	cfg := five()
	for _, st := range RandomSchedule(3, cfg, 200).Steps {
		if st.Inject == nil {
			continue
		}
		f, err := st.Inject.Fault()
		if err != nil {
			t.Fatalf("%+v: %v", *st.Inject, err)
		}
		back, err := SpecOf(f).Fault()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !reflect.DeepEqual(back, f) {
			t.Fatalf("%#v came back as %#v", f, back)
		}
	}
}

func TestASavedScheduleReplaysTheSameSteps(t *testing.T) {
	cfg := five()
	sc := RandomSchedule(42, cfg, 25)
	if b := RandomSchedule(42, cfg, 25); !reflect.DeepEqual(sc, b) {
		t.Fatal("the same seed drew two schedules")
	}
	if n := len(sc.Steps); n != 2*25+3 || sc.Steps[n-3].Heal != "all" || sc.Steps[n-2].Check != "converged" || sc.Steps[n-1].Check != "fresh" {
		t.Fatalf("25 rounds of a fault or heal and updates, then heal all and the two checks; got %d steps ending %+v", n, sc.Steps[max(0, n-3):])
	}
	data, err := sc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseScenario("saved.yaml", data, cfg)
	if err != nil {
		t.Fatalf("a saved schedule does not parse: %v\n%s", err, data)
	}
	if back.Seed != 42 || len(back.Steps) != len(sc.Steps) {
		t.Fatalf("seed %d, %d steps, want %d", back.Seed, len(back.Steps), len(sc.Steps))
	}
	for i := range sc.Steps {
		want, got := sc.Steps[i], back.Steps[i]
		got.Line = 0
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("step %d: saved %+v, read back %+v", i, want, got)
		}
	}
}

func TestTimelineShowsLanesFaultsAndSightings(t *testing.T) {
	h := NewHistory()
	id := h.Invoke("iamat", "Welsh", "IAMAT c +1+1 1")
	h.Complete(id, "AT Welsh +0.1 c +1+1 1", nil)
	h.FaultStarted("f1", FaultSpec{Kind: "partition", Groups: [][]string{{"Goloman"}, {"Welsh"}}}, "partition Goloman | Welsh", h.Now())
	h.Saw("AT Welsh +0.1 c +1+1 1", "Holiday", h.Now())
	h.FaultEnded("f1", h.Now())
	h.Note("check converged (line 3): FAILED: nope")
	var b strings.Builder
	if err := WriteTimeline(&b, "t", []string{"Goloman", "Holiday", "Welsh"}, h); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"<svg", ">Goloman</text>", ">Welsh</text>", "partition Goloman | Welsh", "first seen at Holiday", "FAILED: nope", "<path"} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
}

func TestTrafficStepsParseAndRefuseNonsense(t *testing.T) {
	cfg := five()
	sc, err := ParseScenario("t", []byte("steps:\n  - traffic: {clients: 3, every: 20ms, for: 4s}\n  - inject: {kind: crash, nodes: [Holiday]}\n  - check: delivered\n"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tr := sc.Steps[0].Traffic; tr == nil || tr.Clients != 3 || tr.Every != 20*time.Millisecond || tr.For != 4*time.Second {
		t.Fatalf("traffic step read as %+v", sc.Steps[0].Traffic)
	}
	for bad, want := range map[string]string{
		"steps:\n  - traffic: {clients: 3}\n":              "needs for",
		"steps:\n  - traffic: {for: 1s, clients: 100}\n":   "clients: 1 to 64",
		"steps:\n  - traffic: {for: 1s}\n    updates: 3\n": "exactly one thing",
		"steps:\n  - traffic: {for: 1s, every: -1s}\n":     "every must be positive",
	} {
		if _, err := ParseScenario("t", []byte(bad), cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error saying %q", bad, err, want)
		}
	}
}
