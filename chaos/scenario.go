package chaos

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/herdchaos/herd/herd/proto"
	"github.com/herdchaos/herd/herd/topology"
)

// Scenario is a scenario file: timed steps of faults, heals, client operations, waits and
// checks. herdctl runs them; `herdctl chaos --save` writes one that replays a random
// schedule step for step.
//
//	name: a split herd that heals
//	seed: 7
//	steps:
//	  - inject: {kind: partition, groups: [[Goloman, Hands, Wilkes], [Holiday, Welsh]]}
//	    as: split
//	  - iamat: {server: Welsh, client: phone}
//	  - check: delivered
//	  - heal: split
//	  - check: converged
type Scenario struct {
	Name  string         `yaml:"name,omitempty"`
	Seed  uint64         `yaml:"seed,omitempty"`
	Steps []ScenarioStep `yaml:"steps"`
}

// ScenarioStep is one step: exactly one of its actions.
type ScenarioStep struct {
	Inject  *FaultSpec    `yaml:"inject,omitempty"`
	As      string        `yaml:"as,omitempty"`   // names the injected fault, for heal
	Heal    string        `yaml:"heal,omitempty"` // a name given with as, or "all"
	IAMAT   *IAMATStep    `yaml:"iamat,omitempty"`
	WHATSAT *WHATSATStep  `yaml:"whatsat,omitempty"`
	Updates int           `yaml:"updates,omitempty"` // IAMATs from concurrent clients, each checked
	Traffic *TrafficStep  `yaml:"traffic,omitempty"` // updates alongside the next steps
	Wait    time.Duration `yaml:"wait,omitempty"`
	Check   string        `yaml:"check,omitempty"` // delivered, converged, whatsat or fresh

	Line int `yaml:"-"` // where the step is in its file
}

// IAMATStep is a client's IAMAT (time: now, when left out).
type IAMATStep struct {
	Server   string `yaml:"server"`
	Client   string `yaml:"client"`
	Location string `yaml:"location,omitempty"` // default +34.068930-118.445127
	Time     string `yaml:"time,omitempty"`
}

// WHATSATStep is a client's WHATSAT.
type WHATSATStep struct {
	Server string `yaml:"server"`
	Client string `yaml:"client"`
	Radius string `yaml:"radius,omitempty"` // km, default 10
	Bound  int    `yaml:"bound,omitempty"`  // default 5
}

// Checks a scenario can ask for.
var scenarioChecks = map[string]string{
	"delivered": "every IAMAT since the last such check reached every server the oracle says it must, and none cut off from it",
	"converged": "every running server holds each client's newest acknowledged location",
	"whatsat":   "the last WHATSAT named the newest location its server must hold and its JSON is the emulator's",
	"fresh":     "no server ever answered with an older time than it had answered before",
}

const defaultLocation = "+34.068930-118.445127"

var stepKeys = []string{"inject", "as", "heal", "iamat", "whatsat", "updates", "traffic", "wait", "check"}

// ParseScenario reads a scenario and checks it against the topology; errors name the
// file and line.
func ParseScenario(name string, data []byte, cfg topology.Config) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a scenario is a mapping with name, seed and steps", name)
	}
	doc := root.Content[0]
	sc := &Scenario{}
	var steps *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch k.Value {
		case "name":
			sc.Name = v.Value
		case "seed":
			if err := v.Decode(&sc.Seed); err != nil {
				return nil, fmt.Errorf("%s:%d: seed: %v", name, v.Line, err)
			}
		case "steps":
			steps = v
		default:
			return nil, fmt.Errorf("%s:%d: unknown field %q (want name, seed, steps)", name, k.Line, k.Value)
		}
	}
	if steps == nil || steps.Kind != yaml.SequenceNode || len(steps.Content) == 0 {
		return nil, fmt.Errorf("%s: no steps", name)
	}
	labels := map[string]bool{}
	for _, n := range steps.Content {
		st, err := parseStep(n)
		if err == nil {
			err = st.validate(cfg, labels)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n.Line, err)
		}
		sc.Steps = append(sc.Steps, st)
	}
	return sc, nil
}

func parseStep(n *yaml.Node) (ScenarioStep, error) {
	if n.Kind != yaml.MappingNode {
		return ScenarioStep{}, fmt.Errorf("a step is a mapping (one of %s)", strings.Join(stepKeys, ", "))
	}
	for i := 0; i < len(n.Content); i += 2 {
		if !slices.Contains(stepKeys, n.Content[i].Value) {
			return ScenarioStep{}, fmt.Errorf("unknown step field %q (want one of %s)", n.Content[i].Value, strings.Join(stepKeys, ", "))
		}
	}
	var st ScenarioStep
	if err := n.Decode(&st); err != nil {
		return st, err
	}
	st.Line = n.Line
	return st, nil
}

func (st ScenarioStep) validate(cfg topology.Config, labels map[string]bool) error {
	actions := 0
	for _, set := range []bool{st.Inject != nil, st.Heal != "", st.IAMAT != nil, st.WHATSAT != nil, st.Updates != 0, st.Traffic != nil, st.Wait != 0, st.Check != ""} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		return fmt.Errorf("a step does exactly one thing (inject, heal, iamat, whatsat, updates, traffic, wait or check); this one does %d", actions)
	}
	if st.As != "" && st.Inject == nil {
		return fmt.Errorf("'as' names an injected fault; this step injects none")
	}
	server := func(s string) error {
		if cfg.Server(s) == nil {
			return fmt.Errorf("unknown server %q (the herd has %s)", s, strings.Join(cfg.Names(), ", "))
		}
		return nil
	}
	switch {
	case st.Inject != nil:
		f, err := st.Inject.Fault()
		if err != nil {
			return err
		}
		if _, err := f.Effects(cfg); err != nil {
			return err
		}
		if st.As != "" {
			if labels[st.As] {
				return fmt.Errorf("fault name %q is used twice", st.As)
			}
			labels[st.As] = true
		}
	case st.Heal != "":
		if st.Heal != "all" && !labels[st.Heal] {
			return fmt.Errorf("heal %q: no earlier step injects a fault named %q (name one with 'as')", st.Heal, st.Heal)
		}
	case st.IAMAT != nil:
		if err := server(st.IAMAT.Server); err != nil {
			return err
		}
		if st.IAMAT.Client == "" || strings.ContainsAny(st.IAMAT.Client, " \t\r\n\f\v") {
			return fmt.Errorf("iamat needs a client id without white space")
		}
		if st.IAMAT.Location != "" {
			if _, err := proto.ParseLocation(st.IAMAT.Location); err != nil {
				return fmt.Errorf("iamat location %q: %w", st.IAMAT.Location, err)
			}
		}
		if st.IAMAT.Time != "" {
			if _, err := proto.ParseTime(st.IAMAT.Time); err != nil {
				return fmt.Errorf("iamat time %q: %w", st.IAMAT.Time, err)
			}
		}
	case st.WHATSAT != nil:
		if err := server(st.WHATSAT.Server); err != nil {
			return err
		}
		w := st.WHATSAT
		if _, err := proto.ParseWHATSAT([]string{"WHATSAT", w.Client, orDefault(w.Radius, "10"), fmt.Sprint(orBound(w.Bound))}); err != nil {
			return fmt.Errorf("whatsat: %w", err)
		}
	case st.Updates < 0:
		return fmt.Errorf("updates must be positive")
	case st.Traffic != nil:
		return st.Traffic.validate()
	case st.Wait < 0:
		return fmt.Errorf("wait must be positive")
	case st.Check != "":
		if _, ok := scenarioChecks[st.Check]; !ok {
			return fmt.Errorf("unknown check %q (one of delivered, converged, whatsat, fresh)", st.Check)
		}
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orBound(b int) int {
	if b == 0 {
		return 5
	}
	return b
}

// Marshal writes the scenario as YAML.
func (sc *Scenario) Marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(sc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// CheckResult is the verdict of one check step.
type CheckResult struct {
	Line  int    `json:"line"`
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Verdict is what running a scenario found.
type Verdict struct {
	Checks []CheckResult `json:"checks"`
}

// Failed reports whether any check failed.
func (v Verdict) Failed() bool {
	return slices.ContainsFunc(v.Checks, func(c CheckResult) bool { return !c.OK })
}

// RunScenario runs a scenario's steps against a cluster. A failed check is recorded and
// the run goes on; a step that cannot be carried out (a fault that will not apply) stops
// it with an error. log gets one line per step.
func RunScenario(ctx context.Context, c *Cluster, sc *Scenario, log func(string)) (Verdict, error) {
	return (&Runner{C: c, Log: log}).RunScenario(ctx, sc)
}

// RunScenario is RunScenario with the runner's settings (clients, convergence time).
func (r *Runner) RunScenario(ctx context.Context, sc *Scenario) (Verdict, error) {
	r.init()
	c, log := r.C, r.Log
	// Every verdict is the history's (judgeResult): the checks below poll, record what
	// they read and ask for, and the verdict is taken from the record, once (it depends
	// only on what was recorded before it). reported are the verdicts reported so far, by
	// their number in the history.
	reported := map[int]CheckResult{}
	report := func(res int) (CheckResult, string) {
		cr, summary := judgeResult(c.History, res)
		reported[res] = cr
		return cr, summary
	}
	verdict := func() Verdict {
		var v Verdict
		for _, res := range slices.Sorted(maps.Keys(reported)) {
			v.Checks = append(v.Checks, reported[res])
		}
		return v
	}
	var pending []Accepted
	var last struct {
		step ScenarioStep
		op   int
	}
	last.op = -1
	// Traffic runs alongside the steps after it; a check step (and the end of the
	// scenario, however it ends) waits for it and reports it.
	tctx, stopTraffic := context.WithCancel(ctx)
	var running []*traffic
	join := func() {
		for _, tr := range running {
			<-tr.done
			cr, summary := report(tr.result)
			verdict := "ok (" + summary + ")"
			if !cr.OK {
				verdict = "FAILED: " + cr.Error
			}
			log(fmt.Sprintf("  traffic of line %d: %s", tr.step.Line, verdict))
			c.History.Note(fmt.Sprintf("check delivered (traffic, line %d): %s", tr.step.Line, verdict))
		}
		running = nil
	}
	defer func() {
		stopTraffic()
		for _, tr := range running {
			<-tr.done
		}
	}()
	for i, st := range sc.Steps {
		if st.Check != "" {
			join()
		}
		var checked CheckResult // the verdict this step reported, if any
		desc := st.String()
		log(fmt.Sprintf("step %d (line %d): %s", i+1, st.Line, desc))
		c.History.Note(fmt.Sprintf("step %d: %s", i+1, desc))
		fail := func(err error) error { return fmt.Errorf("step %d (line %d, %s): %w", i+1, st.Line, desc, err) }
		switch {
		case st.Inject != nil:
			f, _ := st.Inject.Fault()
			id, err := c.Inject(ctx, f)
			if err != nil {
				return verdict(), fail(err)
			}
			if st.As != "" {
				r.labels[st.As] = id
			}
			r.forget(f)
		case st.Heal == "all":
			if err := c.HealAll(ctx); err != nil {
				return verdict(), fail(err)
			}
		case st.Heal != "":
			if err := c.Heal(ctx, r.labels[st.Heal]); err != nil {
				return verdict(), fail(err)
			}
		case st.IAMAT != nil:
			tm := st.IAMAT.Time
			if tm == "" {
				tm = ClientTime()
			}
			u, err := c.Update(ctx, st.IAMAT.Server, st.IAMAT.Client, orDefault(st.IAMAT.Location, defaultLocation), tm)
			if err != nil {
				return verdict(), fail(err)
			}
			r.accept(u)
			pending = append(pending, u)
		case st.WHATSAT != nil:
			w := st.WHATSAT
			rep, op, err := c.whatsat(ctx, w.Server, w.Client, orDefault(w.Radius, "10"), orBound(w.Bound))
			if err != nil {
				return verdict(), fail(err)
			}
			last.step, last.op = st, op
			log("  " + strings.SplitN(rep.Raw, "\n", 2)[0])
		case st.Updates > 0:
			res := c.History.AddResult(ResultSpec{Line: st.Line, Check: "delivered", Form: "all"})
			r.updates(ctx, st.Updates, res)
			checked, _ = report(res)
		case st.Traffic != nil:
			res := c.History.AddResult(ResultSpec{Line: st.Line, Check: "delivered", Form: "traffic"})
			running = append(running, r.startTraffic(tctx, st, res))
		case st.Wait > 0:
			t := time.NewTimer(st.Wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return verdict(), ctx.Err()
			case <-t.C:
			}
		case st.Check != "":
			form := map[string]string{"delivered": "first"}[st.Check]
			res := c.History.AddResult(ResultSpec{Line: st.Line, Check: st.Check, Form: orDefault(form, "one")})
			switch st.Check {
			case "delivered":
				for i, u := range pending {
					r.follow(ctx, u, tag{result: res, group: i + 1})
				}
				pending = nil
			case "converged":
				c.awaitConvergence(ctx, r.newest(), r.ConvergeWithin, tag{result: res})
			case "whatsat":
				r.checkLastWhatsat(ctx, last.step, last.op, res)
			case "fresh":
				c.checkFresh(ctx, tag{result: res})
			}
			checked, _ = report(res)
		}
		if checked.Check != "" {
			cr := checked
			verdict := "ok"
			if !cr.OK {
				verdict = "FAILED: " + cr.Error
			}
			log(fmt.Sprintf("  check %s: %s", cr.Check, verdict))
			c.History.Note(fmt.Sprintf("check %s (line %d): %s", cr.Check, cr.Line, verdict))
		}
	}
	join()
	return verdict(), nil
}

// newest is, per client, the newest acknowledged update some server still holds.
func (r *Runner) newest() map[string]string {
	newest := map[string]string{}
	for _, u := range r.acked {
		if !r.held(u) {
			continue
		}
		if old, ok := newest[u.Client]; !ok || newerOrSame(u.AT, old) {
			newest[u.Client] = u.AT
		}
	}
	return newest
}

// checkLastWhatsat asks for the check of the last WHATSAT (op, of step st) against the
// newest update of its client some server still holds, toward scenario verdict res.
func (r *Runner) checkLastWhatsat(ctx context.Context, st ScenarioStep, op, res int) {
	a := Asked{Kind: "whatsat", Op: -1, JSONBytes: r.C.claims(ExtJSONBytes)}
	if w := st.WHATSAT; w != nil {
		a.Op, a.Node, a.Client, a.Radius, a.Bound = op, w.Server, w.Client, orDefault(w.Radius, "10"), orBound(w.Bound)
		a.Update = r.newest()[w.Client]
	}
	r.C.whatsatVerdict(ctx, r.C.ask(a, tag{result: res}))
}

// String says what a step does, in a few words.
func (st ScenarioStep) String() string {
	switch {
	case st.Inject != nil:
		f, _ := st.Inject.Fault()
		s := "inject " + f.String()
		if st.As != "" {
			s += " as " + st.As
		}
		return s
	case st.Heal != "":
		return "heal " + st.Heal
	case st.IAMAT != nil:
		return fmt.Sprintf("IAMAT %s at %s", st.IAMAT.Client, st.IAMAT.Server)
	case st.WHATSAT != nil:
		return fmt.Sprintf("WHATSAT %s at %s", st.WHATSAT.Client, st.WHATSAT.Server)
	case st.Updates > 0:
		return fmt.Sprintf("%d updates from concurrent clients", st.Updates)
	case st.Traffic != nil:
		return st.Traffic.String()
	case st.Wait > 0:
		return "wait " + st.Wait.String()
	}
	return "check " + st.Check + ": " + scenarioChecks[st.Check]
}

// LoadScenario reads a scenario file.
func LoadScenario(path string, cfg topology.Config) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseScenario(path, b, cfg)
}
