package chaos

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

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

// view is the part of a history one check is judged from.
type view struct {
	asked  Asked
	cfg    topology.Config
	seed   uint64
	faults []FaultWindow
	update Accepted // the update judged, if found
	found  bool
	own    []Op       // the reads the check made, in id order
	ops    map[int]Op // the op it judges (Asked.Op)
	client []Op       // fresh: the clients' own operations
}

func (v view) oracle(t time.Duration) (*Oracle, error) {
	return OracleAt(v.cfg, v.asked.Timing, v.faults, t)
}

// errNeedPlaces is a whatsat check that has not read the Places emulator yet.
var errNeedPlaces = errors.New("the check has not read the Places emulator")

// judge is the verdict on one asked check, from the history alone; a delivered check
// also says when each server was first seen holding the update.
func judge(v view) (Delivery, error) {
	a := v.asked
	if (a.Kind == "delivered" || a.Kind == "not_delivered") && !v.found {
		return nil, fmt.Errorf("%s: the history has no accepted update %q", a.Kind, a.Update)
	}
	switch a.Kind {
	case "accepted":
		op, ok := v.ops[a.Op]
		if !ok {
			return nil, fmt.Errorf("accepted: the history has no op %d", a.Op)
		}
		_, err := acceptedFrom(op)
		return nil, err
	case "delivered":
		return judgeDelivered(v)
	case "not_delivered":
		return nil, judgeNotDelivered(v)
	case "converged":
		return nil, judgeConverged(v)
	case "whatsat":
		return nil, judgeWhatsat(v)
	case "fresh":
		return nil, freshness(v.client, v.faults, a.At)
	}
	return nil, fmt.Errorf("unknown check kind %q", a.Kind)
}

// acceptedFrom is the update an IAMAT op made, or why the herd did not accept it: the
// reply must be an AT line naming the server and copying the client's fields.
func acceptedFrom(op Op) (Accepted, error) {
	f := strings.Fields(op.Request)
	if len(f) != 4 || f[0] != "IAMAT" {
		return Accepted{}, fmt.Errorf("IAMAT at %s: op %d's request %q is not an IAMAT", op.Node, op.ID, op.Request)
	}
	origin, clientID, location, tm := op.Node, f[1], f[2], f[3]
	if op.Err != "" {
		return Accepted{}, fmt.Errorf("IAMAT at %s: %s", origin, op.Err)
	}
	reply := strings.TrimSuffix(op.Reply, "\n")
	want := " " + clientID + " " + location + " " + tm
	if !strings.HasPrefix(reply, "AT "+origin+" ") || !strings.HasSuffix(reply, want) {
		return Accepted{}, fmt.Errorf("IAMAT at %s: reply %q is not an AT line naming %s and copying %q", origin, reply, origin, want[1:])
	}
	return Accepted{Origin: origin, Client: clientID, Location: location, Time: tm, AT: reply, At: op.Invoke, Op: op.ID}, nil
}

// pollAT is the AT line a checker's read of a client saw ("" for an unknown client).
func pollAT(op Op) (string, error) {
	if op.Err != "" {
		return "", errors.New(op.Err)
	}
	if strings.HasPrefix(op.Reply, "? ") {
		return "", nil
	}
	return op.Reply, nil
}

// ownReads are the check's reads of a client at node, in order.
func ownReads(own []Op, node, clientID string) []Op {
	var out []Op
	for _, op := range own {
		if f := strings.Fields(op.Request); op.Kind == "whatsat" && op.Node == node && len(f) > 1 && f[1] == clientID {
			out = append(out, op)
		}
	}
	return out
}

// judgeDelivered: every server the oracle in force when the check was asked says the
// update must reach was seen holding it (or a newer one) by a read invoked by its
// deadline (or by the check's first read there, for a check asked after the deadline).
func judgeDelivered(v view) (Delivery, error) {
	u := v.update
	o, err := v.oracle(v.asked.At)
	if err != nil {
		return nil, err
	}
	must := o.MustReach(u.Origin)
	got := Delivery{}
	var errs []error
	for _, n := range must {
		deadline := u.At + o.Deadline(u.Origin, n)
		reads := ownReads(v.own, n, u.Client)
		// A check asked after the deadline can only see whether the server holds it by its
		// first read.
		by := deadline
		if len(reads) > 0 {
			by = max(by, reads[0].Invoke)
		}
		held := false
		for _, op := range reads {
			at, err := pollAT(op)
			if err != nil || !newerOrSame(at, u.AT) {
				continue
			}
			if _, ok := got[n]; !ok {
				got[n] = op.Complete
			}
			if op.Invoke <= by {
				held = true
				break
			}
		}
		if held {
			continue
		}
		if len(reads) == 0 {
			errs = append(errs, fmt.Errorf("%s was never asked for it (oracle deadline %v)", n, (deadline-u.At).Round(time.Millisecond)))
			continue
		}
		last := reads[len(reads)-1]
		_, done := last.last()
		at, err := pollAT(last)
		what := describeAnswer(at, u.AT)
		if err != nil {
			what = "errs: " + err.Error()
		}
		errs = append(errs, fmt.Errorf("%s did not hold it %v after it was accepted (oracle deadline %v); it %s",
			n, (done-u.At).Round(time.Millisecond), (deadline-u.At).Round(time.Millisecond), what))
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return got, fmt.Errorf("delivery to every reachable server: update %q from %s must reach %v: %w; %s (seed %d)",
			u.AT, u.Origin, must, errors.Join(errs...), describeFaultsAt(v.faults, v.asked.At), v.seed)
	}
	return got, nil
}

// judgeNotDelivered: no running server the faults in force cut off from the update's
// origin was read holding exactly it.
func judgeNotDelivered(v view) error {
	u := v.update
	o, err := v.oracle(v.asked.At)
	if err != nil {
		return err
	}
	for _, n := range o.MustNotReach(u.Origin) {
		reads := ownReads(v.own, n, u.Client)
		if len(reads) == 0 {
			return fmt.Errorf("no delivery across a cut: %s was never asked", n)
		}
		for _, op := range reads {
			at, err := pollAT(op)
			if err != nil {
				return fmt.Errorf("no delivery across a cut: asking %s: %w", n, err)
			}
			// Exactly this update: the server may hold a newer one from its own side of the cut.
			if at == u.AT {
				return fmt.Errorf("no delivery across a cut: %s holds %q although the faults cut it off from %s; %s (seed %d)",
					n, at, u.Origin, describeFaultsAt(v.faults, v.asked.At), v.seed)
			}
		}
	}
	return nil
}

// judgeConverged: the last read of each client at each server up (by the oracle when
// the check was asked) shows its newest acknowledged update, or a newer one.
func judgeConverged(v view) error {
	a := v.asked
	o, err := v.oracle(a.At)
	if err != nil {
		return err
	}
	var miss error
check:
	for _, n := range v.cfg.Names() {
		if !o.Up(n) {
			continue
		}
		for _, cl := range sortedKeys(a.Newest) {
			reads := ownReads(v.own, n, cl)
			if len(reads) == 0 {
				miss = fmt.Errorf("%s was never asked for %s", n, cl)
				break check
			}
			at, err := pollAT(reads[len(reads)-1])
			if err != nil {
				miss = fmt.Errorf("asking %s for %s: %w", n, cl, err)
				break check
			}
			if !newerOrSame(at, a.Newest[cl]) {
				miss = fmt.Errorf("%s answers %q for %s; the newest acknowledged is %q", n, at, cl, a.Newest[cl])
				break check
			}
		}
	}
	if miss != nil {
		return fmt.Errorf("convergence: not converged %v after the last heal: %w; %s (seed %d)", a.Within, miss, describeFaultsAt(v.faults, a.End), v.seed)
	}
	return nil
}

// judgeWhatsat judges a WHATSAT answer (see CheckWhatsat) by the recorded answer and the
// recorded read of the Places emulator.
func judgeWhatsat(v view) error {
	a := v.asked
	answer, ok := v.ops[a.Op]
	var places *Op
	for i, op := range v.own {
		switch op.Kind {
		case "whatsat":
			if !ok {
				answer, ok = op, true
			}
		case "places":
			places = &v.own[i]
		}
	}
	if !ok {
		return fmt.Errorf("whatsat check: no WHATSAT before it")
	}
	if !v.found {
		return fmt.Errorf("whatsat check: no acknowledged IAMAT for %s", a.Client)
	}
	return whatsatVerdict(a.Node, answer.Reply, v.update, a.Radius, a.Bound, a.JSONBytes, places)
}

// judgeResult is a scenario's verdict number i (from 1) from the checks asked for it,
// and for a traffic step its counts.
func judgeResult(h *History, i int) (CheckResult, string) {
	rs := h.result(i)
	asked := h.checksFor(i)
	cr := CheckResult{Line: rs.Line, Check: rs.Check, OK: true}
	errOf := func(a Asked) error {
		_, err := judge(h.view(a.ID))
		return err
	}
	// groups are the updates, in the order they were first asked about.
	var groups []int
	byGroup := map[int][]Asked{}
	var rest []Asked
	for _, a := range asked {
		if a.Group == 0 {
			rest = append(rest, a)
			continue
		}
		if _, ok := byGroup[a.Group]; !ok {
			groups = append(groups, a.Group)
		}
		byGroup[a.Group] = append(byGroup[a.Group], a)
	}
	groupErr := func(g int) error {
		for _, a := range byGroup[g] {
			if err := errOf(a); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	summary := ""
	switch rs.Form {
	case "first":
		for _, g := range groups {
			if err = groupErr(g); err != nil {
				break
			}
		}
	case "all":
		var errs []error
		for _, g := range groups {
			if e := groupErr(g); e != nil {
				errs = append(errs, e)
			}
		}
		err = errors.Join(errs...)
		if err == nil {
			for _, a := range rest {
				if err = errOf(a); err != nil {
					break
				}
			}
		}
	case "traffic":
		var judged, inflight int
		var errs []error
		faults := h.faults()
		for _, g := range groups {
			as := byGroup[g]
			first, last := as[0], as[len(as)-1]
			if slices.ContainsFunc(as, func(a Asked) bool { return a.Cancelled }) || !calm(faults, first.From, last.End) {
				inflight++
				continue
			}
			judged++
			if e := groupErr(g); e != nil {
				errs = append(errs, e)
			}
		}
		summary = fmt.Sprintf("%d updates: %d judged by the oracle, %d in flight while the faults changed (left to the convergence check)",
			len(groups), judged, inflight)
		if len(errs) > 0 {
			err = fmt.Errorf("%s; %d failed: %w", summary, len(errs), errors.Join(errs[:min(3, len(errs))]...))
		}
	default:
		for _, a := range asked {
			if err = errOf(a); err != nil {
				break
			}
		}
	}
	if err != nil {
		cr.OK, cr.Error = false, err.Error()
	}
	return cr, summary
}

// Judge is a run's verdict from its history alone: each check a scenario reported,
// judged again from the recorded reads, fault windows, topology and timing. A run
// reports what Judge says of its history, so a saved history checks the same.
func Judge(h *History) Verdict {
	var v Verdict
	for i := range h.results() {
		cr, _ := judgeResult(h, i+1)
		v.Checks = append(v.Checks, cr)
	}
	return v
}

// AskedVerdict is the verdict on one check a history asked.
type AskedVerdict struct {
	ID     int    `json:"id"`
	Kind   string `json:"kind"`
	Update string `json:"update,omitempty"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
}

// JudgeEach is the verdict on every check the history asked, one by one (a history from
// the suite or a go test reports no scenario verdicts).
func JudgeEach(h *History) []AskedVerdict {
	var out []AskedVerdict
	for _, a := range h.asked() {
		_, err := judge(h.view(a.ID))
		av := AskedVerdict{ID: a.ID, Kind: a.Kind, Update: a.Update, OK: err == nil}
		if err != nil {
			av.Error = err.Error()
		}
		out = append(out, av)
	}
	return out
}
