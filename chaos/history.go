package chaos

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// History records a run on one monotonic clock, Jepsen style: every client operation
// and every read a checker made (with invoke and complete times and the reply), the fault
// windows as data, the updates the herd accepted and the checks that were asked. The
// checkers judge from it alone (Judge), so a saved history can be checked again
// (herdctl check).
type History struct {
	mu    sync.Mutex
	start time.Time
	// repeat is, per running check, the last read of each request it made: a read with the
	// same reply extends that op instead of adding one.
	repeat map[int]map[string]int
	// byCheck are the ops each check made; updates finds the acceptances of an AT line.
	byCheck map[int][]int
	updates map[string][]int

	Seed     uint64           `json:"seed"`
	Topology *topology.Config `json:"topology,omitempty"`

	Ops     []Op          `json:"ops"`
	Faults  []FaultWindow `json:"faults"`
	Seen    []Seen        `json:"seen"`
	Notes   []Note        `json:"notes"`
	Updates []Accepted    `json:"updates"`
	Checks  []Asked       `json:"checks"`
	// Results are the verdicts a scenario reported, in order: each is the checks asked
	// for it (Asked.Result), judged together.
	Results []ResultSpec `json:"results"`
}

// Op is one client operation, or one read a checker made (Check > 0). A checker's poll
// that got the same reply as its last poll of the same request is folded into that op:
// Repeats counts the extra reads, the last of which ran from LastInvoke to LastComplete.
type Op struct {
	ID       int           `json:"id"`
	Kind     string        `json:"kind"` // iamat, whatsat, raw; places for a read of the Places emulator
	Node     string        `json:"node"`
	Request  string        `json:"request"`
	Invoke   time.Duration `json:"invoke_ns"`
	Complete time.Duration `json:"complete_ns"` // -1 while pending
	Reply    string        `json:"reply"`
	Err      string        `json:"error,omitempty"`
	// Check is the id of the check (Asked.ID) that made this read; 0 for a client's own.
	Check        int           `json:"check,omitempty"`
	Repeats      int           `json:"repeats,omitempty"`
	LastInvoke   time.Duration `json:"last_invoke_ns,omitempty"`
	LastComplete time.Duration `json:"last_complete_ns,omitempty"`
}

// last is when the op's last read began and ended (its only one, unless repeated).
func (op Op) last() (invoke, complete time.Duration) {
	if op.Repeats > 0 {
		return op.LastInvoke, op.LastComplete
	}
	return op.Invoke, op.Complete
}

// FaultWindow is a fault and when it was in force, on the history clock. The oracle
// counts it from Applied (the inject took full effect) until Healing (the heal began);
// from Start to Applied and from Healing to End the faults were changing. Fields still
// to come are -1. A momentary fault (restart) has Applied = Healing = End.
type FaultWindow struct {
	ID      string        `json:"id"`
	Spec    FaultSpec     `json:"spec"`
	Fault   string        `json:"fault"` // Spec as text, for display only: nothing judges by it
	Start   time.Duration `json:"start_ns"`
	Applied time.Duration `json:"applied_ns"`
	Healing time.Duration `json:"healing_ns"`
	End     time.Duration `json:"end_ns"`
}

// Holds reports whether the window's fault kind holds node down or wipes it: a crash,
// stop, pause or restart of node.
func (f FaultWindow) Holds(node string, kinds ...string) bool {
	for _, k := range kinds {
		if f.Spec.Kind == k && len(f.Spec.Nodes) == 1 && f.Spec.Nodes[0] == node {
			return true
		}
	}
	return false
}

// inForce reports whether the oracle counts the fault at t.
func (f FaultWindow) inForce(t time.Duration) bool {
	return f.Applied >= 0 && f.Applied <= t && (f.Healing < 0 || t < f.Healing)
}

// Seen is the first time a checker saw an update (an AT line) at a server.
type Seen struct {
	AT   string        `json:"at"`
	Node string        `json:"node"`
	When time.Duration `json:"when_ns"`
}

// Note is a free-form line in the history (a step of a scenario, a check's verdict).
type Note struct {
	When time.Duration `json:"when_ns"`
	Text string        `json:"text"`
}

// NewHistory starts the clock.
func NewHistory() *History { return &History{start: time.Now(), repeat: map[int]map[string]int{}} }

// Now is the time since the history started, on the monotonic clock.
func (h *History) Now() time.Duration { return time.Since(h.start) }

// Invoke records the start of an operation and returns its id.
func (h *History) Invoke(kind, node, request string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := len(h.Ops)
	h.Ops = append(h.Ops, Op{ID: id, Kind: kind, Node: node, Request: request, Invoke: h.Now(), Complete: -1})
	return id
}

// Complete records the end of operation id.
func (h *History) Complete(id int, reply string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	op := &h.Ops[id]
	op.Complete = h.Now()
	op.Reply = reply
	if err != nil {
		op.Err = err.Error()
	}
}

// Read records a completed read a check made (invoked at invoke, ending now) and returns
// its op id. A read of the same request by the same check with the same reply and error
// as that check's last one extends it (Repeats) instead: a poll that waits records what
// changed, not every look.
func (h *History) Read(check int, kind, node, request string, invoke time.Duration, reply string, err error) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.Now()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if h.repeat == nil {
		h.repeat = map[int]map[string]int{}
	}
	key := kind + " " + node + " " + request
	byKey := h.repeat[check]
	if byKey == nil {
		byKey = map[string]int{}
		h.repeat[check] = byKey
	}
	if i, ok := byKey[key]; ok && h.Ops[i].Reply == reply && h.Ops[i].Err == msg {
		op := &h.Ops[i]
		op.Repeats++
		op.LastInvoke, op.LastComplete = invoke, now
		return i
	}
	id := len(h.Ops)
	h.Ops = append(h.Ops, Op{ID: id, Kind: kind, Node: node, Request: request, Invoke: invoke, Complete: now,
		Reply: reply, Err: msg, Check: check})
	byKey[key] = id
	if h.byCheck == nil {
		h.byCheck = map[int][]int{}
	}
	h.byCheck[check] = append(h.byCheck[check], id)
	return id
}

// Accept records an update the herd accepted (once per AT line and time: a herd may
// answer an IAMAT sent again with the AT line it already holds).
func (h *History) Accept(u Accepted) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.updates == nil {
		h.index()
	}
	for _, i := range h.updates[u.AT] {
		if h.Updates[i].At == u.At {
			return
		}
	}
	h.updates[u.AT] = append(h.updates[u.AT], len(h.Updates))
	h.Updates = append(h.Updates, u)
}

// Ask records a check being asked and returns its id (from 1).
func (h *History) Ask(a Asked) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	a.ID = len(h.Checks) + 1
	h.Checks = append(h.Checks, a)
	return a.ID
}

// Answered records when check id's verdict was taken, and whether the run was stopped
// while it waited.
func (h *History) Answered(id int, end time.Duration, cancelled bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Checks[id-1].End = end
	h.Checks[id-1].Cancelled = cancelled
	delete(h.repeat, id)
}

// AddResult records a verdict a scenario reports and returns its number (from 1).
func (h *History) AddResult(r ResultSpec) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Results = append(h.Results, r)
	return len(h.Results)
}

// view is the part of the history check id is judged from (a copy).
func (h *History) view(id int) view {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byCheck == nil || h.updates == nil {
		h.index()
	}
	a := h.Checks[id-1]
	v := view{asked: a, seed: h.Seed, faults: append([]FaultWindow(nil), h.Faults...), ops: map[int]Op{}}
	if h.Topology != nil {
		v.cfg = *h.Topology
	}
	// The update judged is the latest acceptance of its AT line before the check was asked.
	for _, i := range h.updates[a.Update] {
		if u := h.Updates[i]; !v.found || u.At <= a.At {
			v.update, v.found = u, true
		}
	}
	for _, i := range h.byCheck[id] {
		v.own = append(v.own, h.Ops[i])
	}
	if a.Op >= 0 && a.Op < len(h.Ops) {
		v.ops[a.Op] = h.Ops[a.Op]
	}
	if a.Kind == "fresh" {
		for _, op := range h.Ops {
			if op.Check == 0 {
				v.client = append(v.client, op)
			}
		}
	}
	return v
}

// result is scenario verdict i (from 1).
func (h *History) result(i int) ResultSpec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.Results[i-1]
}

// results is a copy of the scenario verdicts.
func (h *History) results() []ResultSpec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.Results)
}

// asked is a copy of the checks asked.
func (h *History) asked() []Asked {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.Checks)
}

// checksFor are the checks asked for scenario verdict i (from 1), in order.
func (h *History) checksFor(i int) []Asked {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Asked
	for _, a := range h.Checks {
		if a.Result == i {
			out = append(out, a)
		}
	}
	return out
}

// index builds the lookups of a history read from JSON.
func (h *History) index() {
	h.byCheck, h.updates = map[int][]int{}, map[string][]int{}
	for _, op := range h.Ops {
		if op.Check > 0 {
			h.byCheck[op.Check] = append(h.byCheck[op.Check], op.ID)
		}
	}
	for i, u := range h.Updates {
		h.updates[u.AT] = append(h.updates[u.AT], i)
	}
}

// FaultStarted opens a fault window: the inject of spec began at start.
func (h *History) FaultStarted(id string, spec FaultSpec, text string, start time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Faults = append(h.Faults, FaultWindow{ID: id, Spec: spec, Fault: text, Start: start, Applied: -1, Healing: -1, End: -1})
}

// FaultApplied records that fault id took full effect at.
func (h *History) FaultApplied(id string, at time.Duration) {
	h.window(id, func(f *FaultWindow) { f.Applied = at })
}

// FaultHealing records that the heal of fault id began at.
func (h *History) FaultHealing(id string, at time.Duration) {
	h.window(id, func(f *FaultWindow) { f.Healing = at })
}

// FaultEnded closes a fault window: its heal (or its failed inject's undoing) ended at.
func (h *History) FaultEnded(id string, at time.Duration) {
	h.window(id, func(f *FaultWindow) {
		if f.Healing < 0 {
			f.Healing = at
		}
		f.End = at
	})
}

// window changes the open window of fault id.
func (h *History) window(id string, change func(*FaultWindow)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.Faults {
		if h.Faults[i].ID == id && h.Faults[i].End < 0 {
			change(&h.Faults[i])
		}
	}
}

// Saw records the first sighting of at at node (later ones are ignored).
func (h *History) Saw(at, node string, when time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.Seen {
		if s.AT == at && s.Node == node {
			return
		}
	}
	h.Seen = append(h.Seen, Seen{AT: at, Node: node, When: when})
}

// Note adds a line to the history.
func (h *History) Note(text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Notes = append(h.Notes, Note{When: h.Now(), Text: text})
}

// Snapshot is a copy safe to read while the run goes on.
func (h *History) Snapshot() History {
	h.mu.Lock()
	defer h.mu.Unlock()
	return History{
		start:    h.start,
		Seed:     h.Seed,
		Topology: h.Topology,
		Ops:      append([]Op(nil), h.Ops...),
		Faults:   append([]FaultWindow(nil), h.Faults...),
		Seen:     append([]Seen(nil), h.Seen...),
		Notes:    append([]Note(nil), h.Notes...),
		Updates:  append([]Accepted(nil), h.Updates...),
		Checks:   append([]Asked(nil), h.Checks...),
		Results:  append([]ResultSpec(nil), h.Results...),
	}
}

// JSON is the history as indented JSON.
func (h *History) JSON() ([]byte, error) {
	s := h.Snapshot()
	return json.MarshalIndent(&s, "", "  ")
}

// op is a copy of op id.
func (h *History) op(id int) Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.Ops[id]
}

// faults is a copy of the fault windows.
func (h *History) faults() []FaultWindow {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]FaultWindow(nil), h.Faults...)
}

// LoadHistory reads a history saved as JSON (history.json), checking that it holds what
// the checkers need.
func LoadHistory(data []byte) (*History, error) {
	h := &History{}
	if err := json.Unmarshal(data, h); err != nil {
		return nil, fmt.Errorf("not a history: %w", err)
	}
	if h.Topology == nil || len(h.Topology.Servers) == 0 {
		return nil, fmt.Errorf("the history names no topology (saved by an older herdctl?)")
	}
	for i, op := range h.Ops {
		if op.ID != i {
			return nil, fmt.Errorf("op %d has id %d: the ops are out of order", i, op.ID)
		}
	}
	for i, a := range h.Checks {
		switch {
		case a.ID != i+1:
			return nil, fmt.Errorf("check %d has id %d: the checks are out of order", i+1, a.ID)
		case a.Result < 0 || a.Result > len(h.Results):
			return nil, fmt.Errorf("check %d counts toward verdict %d; the history has %d", a.ID, a.Result, len(h.Results))
		case a.Op < -1 || a.Op >= len(h.Ops):
			return nil, fmt.Errorf("check %d judges op %d; the history has %d", a.ID, a.Op, len(h.Ops))
		}
	}
	for _, op := range h.Ops {
		if op.Check < 0 || op.Check > len(h.Checks) {
			return nil, fmt.Errorf("op %d was read by check %d; the history has %d", op.ID, op.Check, len(h.Checks))
		}
	}
	for _, f := range h.Faults {
		if _, err := f.Spec.Fault(); err != nil {
			return nil, fmt.Errorf("fault window %s: %w", f.ID, err)
		}
	}
	return h, nil
}
