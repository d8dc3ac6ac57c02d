package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorded is a small history built by hand: an update accepted at Welsh at 0, a
// delivered check asked at once toward scenario verdict 1 (line 3), and per server a poll
// that missed at 10 ms and one that showed the update at 300 ms (Welsh's at 0).
func recorded(t *testing.T) *History {
	t.Helper()
	cfg := five()
	const at = "AT Welsh +0.000100000 phone +34.068930-118.445127 1795000000.000000001"
	h := &History{Seed: 7, Topology: &cfg}
	iamat := Op{ID: 0, Kind: "iamat", Node: "Welsh", Request: "IAMAT phone +34.068930-118.445127 1795000000.000000001", Reply: at + "\n"}
	h.Ops = append(h.Ops, iamat)
	u, err := acceptedFrom(iamat)
	if err != nil {
		t.Fatal(err)
	}
	h.Updates = []Accepted{u}
	h.Results = []ResultSpec{{Line: 3, Check: "delivered", Form: "first"}}
	h.Checks = []Asked{{ID: 1, Kind: "delivered", Result: 1, Group: 1, Update: at, Op: -1, Timing: DefaultTiming, End: time.Second}}
	read := func(node string, when time.Duration, reply string) {
		h.Ops = append(h.Ops, Op{ID: len(h.Ops), Kind: "whatsat", Node: node, Request: "WHATSAT phone 1 1",
			Invoke: when, Complete: when + time.Millisecond, Reply: reply, Check: 1})
	}
	for _, n := range cfg.Names() {
		if n == "Welsh" {
			read(n, 0, at)
			continue
		}
		read(n, 10*time.Millisecond, "? WHATSAT phone 1 1")
		read(n, 300*time.Millisecond, at)
	}
	return reload(t, h)
}

// reload saves a history as JSON and reads it back, as herdctl check does.
func reload(t *testing.T, h *History) *History {
	t.Helper()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// showing is the op of check 1 that showed the update at node.
func showing(h *History, node string) int {
	for _, op := range h.Ops {
		if op.Check == 1 && op.Node == node && strings.HasPrefix(op.Reply, "AT ") {
			return op.ID
		}
	}
	return -1
}

// deleteOp removes op id from a history, renumbering the ops after it.
func deleteOp(h *History, id int) {
	h.Ops = slices.Delete(h.Ops, id, id+1)
	for i := range h.Ops {
		h.Ops[i].ID = i
	}
	for i := range h.Checks {
		if h.Checks[i].Op > id {
			h.Checks[i].Op--
		}
	}
}

func verdictOf(h *History) CheckResult { return Judge(h).Checks[0] }

// The checkers read the record, not a stored verdict: deleting the read that showed the
// update at a server, or moving it past the server's deadline, fails delivery; a crash
// window over that server when the check was asked takes it out of what the oracle asks.
func TestDeliveryIsJudgedFromTheRecordedReads(t *testing.T) {
	if v := verdictOf(recorded(t)); !v.OK || v.Line != 3 || v.Check != "delivered" {
		t.Fatalf("the recorded run: %+v", v)
	}

	h := recorded(t)
	deleteOp(h, showing(h, "Hands"))
	v := verdictOf(reload(t, h))
	if v.OK || !strings.Contains(v.Error, "Hands did not hold it") || !strings.Contains(v.Error, "(seed 7)") {
		t.Fatalf("without the read that showed it at Hands: %+v", v)
	}

	h = recorded(t)
	deadline := h.Updates[0].At + DefaultTiming.Settle + 2*DefaultTiming.PerHop // Welsh-Holiday-Hands... at most 4 hops
	moved := &h.Ops[showing(h, "Hands")]
	moved.Invoke, moved.Complete = deadline+3*time.Second, deadline+3*time.Second+time.Millisecond
	if v := verdictOf(reload(t, h)); v.OK || !strings.Contains(v.Error, "Hands did not hold it") {
		t.Fatalf("with the read that showed it at Hands past the deadline: %+v", v)
	}

	// A crash of Hands in force when the check was asked: the oracle no longer asks it of
	// Hands, so the record without the read passes.
	h = recorded(t)
	deleteOp(h, showing(h, "Hands"))
	h.Faults = []FaultWindow{{ID: "f1", Spec: FaultSpec{Kind: "crash", Nodes: []string{"Hands"}}, Fault: "crash Hands",
		Start: 0, Applied: 0, Healing: -1, End: -1}}
	if v := verdictOf(reload(t, h)); !v.OK {
		t.Fatalf("with Hands crashed when the check was asked: %+v", v)
	}
}

// No delivery across a cut is judged from the reads at the servers cut off: one that
// showed exactly the update fails it.
func TestNoDeliveryAcrossACutIsJudgedFromTheRecordedReads(t *testing.T) {
	h := recorded(t)
	h.Faults = []FaultWindow{{ID: "f1", Spec: FaultSpec{Kind: "isolate", Nodes: []string{"Goloman"}}, Fault: "isolate Goloman",
		Start: 0, Applied: 0, Healing: -1, End: -1}}
	h.Checks = append(h.Checks, Asked{ID: 2, Kind: "not_delivered", Result: 1, Group: 1, Update: h.Updates[0].AT, Op: -1, Timing: DefaultTiming, At: time.Second, End: time.Second})
	h.Ops = append(h.Ops, Op{ID: len(h.Ops), Kind: "whatsat", Node: "Goloman", Request: "WHATSAT phone 1 1",
		Invoke: time.Second, Complete: time.Second, Reply: "? WHATSAT phone 1 1", Check: 2})
	// Goloman's delivery reads are check 1's; the oracle now asks none of it.
	if v := verdictOf(reload(t, h)); !v.OK {
		t.Fatalf("Goloman cut off and ignorant: %+v", v)
	}
	h.Ops[len(h.Ops)-1].Reply = h.Updates[0].AT
	if v := verdictOf(reload(t, h)); v.OK || !strings.Contains(v.Error, "no delivery across a cut: Goloman holds") {
		t.Fatalf("Goloman cut off and holding it: %+v", v)
	}
}

// Convergence is judged from each server's last recorded read of each client.
func TestConvergenceIsJudgedFromTheLastReads(t *testing.T) {
	h := recorded(t)
	at := h.Updates[0].AT
	h.Results = append(h.Results, ResultSpec{Line: 9, Check: "converged", Form: "one"})
	h.Checks = append(h.Checks, Asked{ID: 2, Kind: "converged", Result: 2, Newest: map[string]string{"phone": at}, Within: time.Second, Op: -1, Timing: DefaultTiming, At: 2 * time.Second, End: 3 * time.Second})
	// An earlier sweep found Goloman ignorant; the last found every server holding it.
	h.Ops = append(h.Ops, Op{ID: len(h.Ops), Kind: "whatsat", Node: "Goloman", Request: "WHATSAT phone 1 1",
		Invoke: 1900 * time.Millisecond, Complete: 1900 * time.Millisecond, Reply: "? WHATSAT phone 1 1", Check: 2})
	for _, n := range h.Topology.Names() {
		h.Ops = append(h.Ops, Op{ID: len(h.Ops), Kind: "whatsat", Node: n, Request: "WHATSAT phone 1 1",
			Invoke: 2 * time.Second, Complete: 2 * time.Second, Reply: at, Check: 2})
	}
	if v := Judge(reload(t, h)).Checks[1]; !v.OK {
		t.Fatalf("converged: %+v", v)
	}
	last := &h.Ops[len(h.Ops)-1] // Wilkes's
	last.Reply = "? WHATSAT phone 1 1"
	v := Judge(reload(t, h)).Checks[1]
	if v.OK || !strings.Contains(v.Error, `Wilkes answers "" for phone`) {
		t.Fatalf("Wilkes's last read ignorant: %+v", v)
	}
	// Wilkes crashed when the check was asked: a server down is not asked to hold it.
	h.Faults = []FaultWindow{{ID: "f1", Spec: FaultSpec{Kind: "crash", Nodes: []string{"Wilkes"}}, Fault: "crash Wilkes",
		Start: time.Second, Applied: time.Second, Healing: -1, End: -1}}
	if v := Judge(reload(t, h)).Checks[1]; !v.OK {
		t.Fatalf("Wilkes crashed: %+v", v)
	}
}

// A traffic verdict counts an update as judged only if the faults were calm while it was
// in flight: a fault window opening in between moves it to the in-flight count.
func TestTrafficCountsFromTheFaultWindows(t *testing.T) {
	h := recorded(t)
	h.Results[0].Form = "traffic"
	h.Checks[0].Traffic = true
	v, summary := judgeResult(reload(t, h), 1)
	if !v.OK || !strings.HasPrefix(summary, "1 updates: 1 judged by the oracle, 0 in flight") {
		t.Fatalf("calm: %+v %q", v, summary)
	}
	deleteOp(h, showing(h, "Hands"))
	if v, _ := judgeResult(reload(t, h), 1); v.OK || !strings.Contains(v.Error, "1 failed") {
		t.Fatalf("calm, not delivered: %+v", v)
	}
	h.Faults = []FaultWindow{{ID: "f1", Spec: FaultSpec{Kind: "crash", Nodes: []string{"Holiday"}}, Fault: "crash Holiday",
		Start: 100 * time.Millisecond, Applied: 120 * time.Millisecond, Healing: -1, End: -1}}
	v, summary = judgeResult(reload(t, h), 1)
	if !v.OK || !strings.HasPrefix(summary, "1 updates: 0 judged by the oracle, 1 in flight") {
		t.Fatalf("a crash while it was in flight: %+v %q", v, summary)
	}
}

// A poll that sees the same reply again extends its op; another reply starts a new one.
func TestRepeatedPollsAreRecordedCompactly(t *testing.T) {
	h := NewHistory()
	for range 5 {
		h.Read(1, "whatsat", "Hands", "WHATSAT c 1 1", h.Now(), "? WHATSAT c 1 1", nil)
	}
	h.Read(1, "whatsat", "Hands", "WHATSAT c 1 1", h.Now(), "AT Welsh +0.1 c +1+1 1", nil)
	h.Read(2, "whatsat", "Hands", "WHATSAT c 1 1", h.Now(), "AT Welsh +0.1 c +1+1 1", nil)
	if len(h.Ops) != 3 || h.Ops[0].Repeats != 4 || h.Ops[0].LastComplete < h.Ops[0].Complete || h.Ops[1].Repeats != 0 {
		t.Fatalf("ops %+v", h.Ops)
	}
}

// Freshness is judged over the clients' own operations up to the time it was asked, and
// a crash window of the server between two answers excuses an older one.
func TestFreshnessFromTheRecordExcusesACrash(t *testing.T) {
	h := recorded(t)
	answer := func(when time.Duration, tm string) {
		h.Ops = append(h.Ops, Op{ID: len(h.Ops), Kind: "whatsat", Node: "Hands", Request: "WHATSAT c 10 1",
			Invoke: when, Complete: when + time.Millisecond, Reply: "AT X +0.000000000 c +1+1 " + tm + "\n{}\n\n"})
	}
	answer(time.Second, "11")
	answer(2*time.Second, "10")
	h.Results = append(h.Results, ResultSpec{Line: 12, Check: "fresh", Form: "one"})
	h.Checks = append(h.Checks, Asked{ID: 2, Kind: "fresh", Result: 2, Op: -1, At: 3 * time.Second, End: 3 * time.Second})
	if v := Judge(reload(t, h)).Checks[1]; v.OK || !strings.Contains(v.Error, "freshness: Hands") {
		t.Fatalf("an older answer: %+v", v)
	}
	h.Faults = []FaultWindow{{ID: "f1", Spec: FaultSpec{Kind: "restart", Nodes: []string{"Hands"}}, Fault: "restart Hands",
		Start: 1500 * time.Millisecond, Applied: 1600 * time.Millisecond, Healing: 1600 * time.Millisecond, End: 1600 * time.Millisecond}}
	if v := Judge(reload(t, h)).Checks[1]; !v.OK {
		t.Fatalf("a restart in between: %+v", v)
	}
}

func TestLoadHistoryRefusesWhatItCannotJudge(t *testing.T) {
	for in, want := range map[string]string{
		`{`:           "not a history",
		`{"ops": []}`: "no topology",
		`{"topology": {"servers": [{"name": "A"}]}, "faults": [{"id": "f1", "spec": {"kind": "melt"}}]}`: "unknown fault kind",
		`{"topology": {"servers": [{"name": "A"}]}, "checks": [{"id": 1, "kind": "fresh", "op": 5}]}`:    "judges op 5",
	} {
		if _, err := LoadHistory([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// A cluster's history records its faults as data, with when each took effect and when its
// heal began, and reads back as a history the checkers accept (herdctl check, artifacts);
// the oracle from the windows is the live one.
func TestAClustersHistoryRecordsItsFaultsAsData(t *testing.T) {
	ctx := context.Background()
	c := NewCluster(newFake(), 9)
	crash, err := c.Inject(ctx, Crash{Node: "Hands"})
	if err != nil {
		t.Fatal(err)
	}
	during := c.History.Now()
	if c.Oracle().Up("Hands") || !c.Oracle().Up("Welsh") {
		t.Fatal("the oracle from the history does not see the crash")
	}
	if err := c.Heal(ctx, crash); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inject(ctx, Restart{Node: "Welsh"}); err != nil {
		t.Fatal(err)
	}
	b, err := c.History.JSON()
	if err != nil {
		t.Fatal(err)
	}
	h, err := LoadHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Seed != 9 || len(h.Topology.Servers) != 5 || len(h.Faults) != 2 {
		t.Fatalf("history: seed %d, topology %v, faults %+v", h.Seed, h.Topology, h.Faults)
	}
	f := h.Faults[0]
	if !f.Holds("Hands", "crash") || f.Fault != "crash Hands" || !(f.Start <= f.Applied && f.Applied <= during && during < f.Healing && f.Healing <= f.End) {
		t.Fatalf("crash window %+v (asked at %v)", f, during)
	}
	if r := h.Faults[1]; !r.Holds("Welsh", "restart") || r.Applied != r.End || r.Healing != r.End {
		t.Fatalf("restart window %+v", r)
	}
	o, err := OracleAt(*h.Topology, DefaultTiming, h.Faults, during)
	if err != nil || o.Up("Hands") {
		t.Fatalf("the oracle at %v from the saved windows: Hands up %v (%v)", during, o.Up("Hands"), err)
	}
	if o, _ := OracleAt(*h.Topology, DefaultTiming, h.Faults, h.Faults[0].End); !o.Up("Hands") {
		t.Fatal("the oracle after the heal still holds Hands down")
	}
}

// What a whatsat check records of the query log finds the same queries as the whole log,
// for any place and radius asked, with the answers of the candidates kept.
func TestTheRecordedPartOfTheQueryLogSelectsAsTheWholeLog(t *testing.T) {
	var log []placesQuery
	places := [][2]float64{{34.06893, -118.445127}, {-33.8688, 151.2093}}
	for i := range 3000 {
		p := places[i%7/6] // mostly the first place
		log = append(log, placesQuery{Seq: i + 1, API: "legacy", Lat: p[0], Lng: p[1], Radius: float64(1000 * (1 + i%3)),
			MaxResultCount: i % 5, Answer: fmt.Sprintf(`{"results": [], "n": %d}`, i)})
	}
	for _, p := range append(places, [2]float64{1, 1}) {
		for _, metres := range []float64{1000, 2000, 3000, 4000} {
			for _, bound := range []int{1, 3, 20} {
				want, werr := selectQueries(log, p[0], p[1], metres, bound)
				part := relevantQueries(log, p[0], p[1], metres, bound)
				got, gerr := selectQueries(part, p[0], p[1], metres, bound)
				if fmt.Sprint(werr) != fmt.Sprint(gerr) || !reflect.DeepEqual(want, got) || len(part) > candidates+4 {
					t.Fatalf("%v %g m bound %d: %d recorded of %d; got %v %v, want %v %v", p, metres, bound, len(part), len(log), len(got), gerr, len(want), werr)
				}
			}
		}
	}
}
