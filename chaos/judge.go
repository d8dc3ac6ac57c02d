package chaos

import "time"

// Asked is one check a run asked for, with what it needs to be judged again from the
// history alone: which update, when (the oracle in force at At judges it), when its
// verdict was taken (End), and its reads (the ops whose Check is its ID).
type Asked struct {
	ID   int    `json:"id"`
	Kind string `json:"kind"` // accepted, delivered, not_delivered, converged, whatsat, fresh
	// Result is the scenario verdict it counts toward (an index into History.Results,
	// from 1); Group numbers the updates within that verdict.
	Result int `json:"result,omitempty"`
	Group  int `json:"group,omitempty"`
	// Update is the AT line of the accepted update judged (History.Updates has it).
	Update string `json:"update,omitempty"`
	// Op is the op judged: the IAMAT (accepted), the WHATSAT answer (whatsat); -1 none.
	Op int `json:"op"`
	// Node and Client say what a whatsat check asked about.
	Node   string            `json:"node,omitempty"`
	Client string            `json:"client,omitempty"`
	Newest map[string]string `json:"newest,omitempty"` // converged: client -> newest AT line
	Within time.Duration     `json:"within_ns,omitempty"`
	Radius string            `json:"radius,omitempty"`
	Bound  int               `json:"bound,omitempty"`
	// JSONBytes is whether the herd claimed json-bytes (whatsat).
	JSONBytes bool   `json:"json_bytes,omitempty"`
	Timing    Timing `json:"timing"`
	// From is when the update's send began (traffic: before the oracle); At when the check
	// was asked; End when its verdict was taken.
	From      time.Duration `json:"from_ns"`
	At        time.Duration `json:"at_ns"`
	End       time.Duration `json:"end_ns"`
	Cancelled bool          `json:"cancelled,omitempty"` // the run was stopped while it waited
	// Traffic checks count only if the faults were calm from From to End (else the update
	// was in flight while they changed).
	Traffic bool `json:"traffic,omitempty"`
}

// ResultSpec is a verdict a scenario reported: its line, its check, and how the checks
// asked for it (Asked.Result) combine: "first" (a delivered step: the first failure),
// "all" (an updates step: every failure, then freshness), "traffic" (counts, and the
// failures of the updates judged), "one" (converged, whatsat, fresh).
type ResultSpec struct {
	Line  int    `json:"line"`
	Check string `json:"check"`
	Form  string `json:"form"`
}
