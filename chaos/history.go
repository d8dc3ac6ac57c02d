package chaos

import (
	"encoding/json"
	"sync"
	"time"
)

// History records a run on one monotonic clock: client operations with their invoke and
// complete times, fault windows, and when each update was first seen at each server.
type History struct {
	mu     sync.Mutex
	start  time.Time
	Ops    []Op          `json:"ops"`
	Faults []FaultWindow `json:"faults"`
	Seen   []Seen        `json:"seen"`
	Notes  []Note        `json:"notes"`
}

// Op is one client operation.
type Op struct {
	ID       int           `json:"id"`
	Kind     string        `json:"kind"` // iamat, whatsat, raw
	Node     string        `json:"node"`
	Request  string        `json:"request"`
	Invoke   time.Duration `json:"invoke_ns"`
	Complete time.Duration `json:"complete_ns"` // -1 while pending
	Reply    string        `json:"reply"`
	Err      string        `json:"error,omitempty"`
}

// FaultWindow is when a fault was in force. End is -1 while it is.
type FaultWindow struct {
	ID    string        `json:"id"`
	Fault string        `json:"fault"`
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
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
func NewHistory() *History { return &History{start: time.Now()} }

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

// FaultStarted opens a fault window.
func (h *History) FaultStarted(id, fault string, at time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Faults = append(h.Faults, FaultWindow{ID: id, Fault: fault, Start: at, End: -1})
}

// FaultEnded closes a fault window.
func (h *History) FaultEnded(id string, at time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.Faults {
		if h.Faults[i].ID == id && h.Faults[i].End < 0 {
			h.Faults[i].End = at
		}
	}
}

// FaultWindow records a momentary fault.
func (h *History) FaultWindow(id, fault string, start, end time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Faults = append(h.Faults, FaultWindow{ID: id, Fault: fault, Start: start, End: end})
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
		start:  h.start,
		Ops:    append([]Op(nil), h.Ops...),
		Faults: append([]FaultWindow(nil), h.Faults...),
		Seen:   append([]Seen(nil), h.Seen...),
		Notes:  append([]Note(nil), h.Notes...),
	}
}

// JSON is the history as indented JSON.
func (h *History) JSON() ([]byte, error) {
	s := h.Snapshot()
	return json.MarshalIndent(&s, "", "  ")
}
