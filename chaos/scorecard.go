package chaos

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// A Property is one row of the scorecard: a property of a herd that specs check. Each
// spec carries the label of the property it is mainly about (Label); a failure is
// counted against the property its message names (a convergence or WHATSAT checker's),
// else against the spec's own.
type Property struct {
	Label string
	Name  string
	// Beyond is why the property goes beyond the course's assignment ("" when it does not).
	Beyond string
}

// Properties are the scorecard's rows, in order.
var Properties = []Property{
	{"replies", "replies conform (AT lines, invalid lines, line handling)", ""},
	{"newer-wins", "the newest location wins, times compared exactly", ""},
	{"delivery", "delivery while connected", ""},
	{"latency", "delivery under latency and slow links", ""},
	{"reachable", "exactly the reachable set under partitions and cuts", ""},
	{"convergence", "convergence after heal", "needs a resync after a link or server comes back: beyond the course's assignment"},
	{"survival", "survives crashes and pauses", ""},
	{"whatsat", "WHATSAT correct", ""},
	{"places-faults", "Places faults answered", ""},
	{"economy", "flooding economy (peer messages per update)", "needs the herd's metrics"},
	{"ours", "our herd's own promises (peer protocol, secret, durability, limits)", "extensions of our herd's"},
}

// SpecResult is what the scorecard needs of one spec's run.
type SpecResult struct {
	Name      string   `json:"name"`
	Labels    []string `json:"labels"`
	State     string   `json:"state"` // passed, failed, skipped
	Failure   string   `json:"failure,omitempty"`
	Artifacts string   `json:"artifacts,omitempty"`
}

// Row is one property's verdict.
type Row struct {
	Property
	Verdict string `json:"verdict"` // pass, FAIL, not tested
	Passed  int    `json:"passed"`
	Failed  int    `json:"failed"`
	// FirstFailing is the first spec that failed on this property, Cause the first line
	// of its failure, Artifacts where its logs went.
	FirstFailing string `json:"first_failing,omitempty"`
	Cause        string `json:"cause,omitempty"`
	Artifacts    string `json:"artifacts,omitempty"`
}

// Scorecard is one row per property, and the herd it is about.
type Scorecard struct {
	Herd string `json:"herd"`
	Seed uint64 `json:"seed"`
	Rows []Row  `json:"rows"`
	// SuiteFailure is a failure outside every spec (the herd did not start, say): then no
	// row says much, and the scorecard fails.
	SuiteFailure string `json:"suite_failure,omitempty"`
}

// PropertyOf is the property a spec is mainly about: the last property label it carries
// (an It's label is more specific than its container's), or "" when it has none.
func PropertyOf(labels []string) string {
	for i := len(labels) - 1; i >= 0; i-- {
		for _, p := range Properties {
			if p.Label == labels[i] {
				return p.Label
			}
		}
	}
	return ""
}

// blame is the property a failure counts against: the checker its message names, else
// the spec's own.
func blame(r SpecResult) string {
	switch msg := r.Failure; {
	case strings.Contains(msg, "convergence: not converged"):
		return "convergence"
	case strings.Contains(msg, "WHATSAT correctness"):
		return "whatsat"
	case strings.Contains(msg, "did not settle"):
		// With every fault healed, an update at each server did not reach all the others:
		// the herd did not come back from what the spec did to it.
		return "survival"
	}
	return PropertyOf(r.Labels)
}

// NewScorecard judges each property from the specs' results.
func NewScorecard(herd string, seed uint64, results []SpecResult) Scorecard {
	sc := Scorecard{Herd: herd, Seed: seed}
	for _, p := range Properties {
		row := Row{Property: p}
		for _, r := range results {
			switch {
			case r.State == "failed" && blame(r) == p.Label:
				row.Failed++
				if row.FirstFailing == "" {
					row.FirstFailing, row.Cause, row.Artifacts = r.Name, FirstLine(r.Failure), r.Artifacts
				}
			case r.State == "passed" && PropertyOf(r.Labels) == p.Label:
				row.Passed++
			}
		}
		switch {
		case row.Failed > 0:
			row.Verdict = "FAIL"
		case row.Passed > 0:
			row.Verdict = "pass"
		default:
			row.Verdict = "not tested"
		}
		sc.Rows = append(sc.Rows, row)
	}
	return sc
}

// FirstLine is the first line of a failure message (with an Eventually's own message,
// which follows its timeout), cut to a readable length.
func FirstLine(s string) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", 3)
	line := strings.TrimSpace(lines[0])
	if len(lines) > 1 && strings.HasPrefix(line, "Timed out after") {
		line += " " + strings.TrimSpace(lines[1]) // an Eventually's own message is on the next line
	}
	return clip(line, 300)
}

// Failed says whether any property failed.
func (sc Scorecard) Failed() bool {
	return sc.SuiteFailure != "" || slices.ContainsFunc(sc.Rows, func(r Row) bool { return r.Verdict == "FAIL" })
}

// WriteText prints the scorecard as a table, then each failing row's cause and artifacts.
func (sc Scorecard) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "scorecard of %s (seed %d)\n", sc.Herd, sc.Seed)
	if sc.SuiteFailure != "" {
		fmt.Fprintf(w, "THE SUITE FAILED OUTSIDE ITS SPECS: %s\n", sc.SuiteFailure)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "property\tverdict\tspecs passed\tfailed\tfirst failing spec")
	for _, r := range sc.Rows {
		name := r.Name
		if r.Beyond != "" {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", name, r.Verdict, r.Passed, r.Failed, r.FirstFailing)
	}
	tw.Flush()
	for _, r := range sc.Rows {
		if r.Beyond != "" {
			fmt.Fprintf(w, "* %s: %s\n", r.Label, r.Beyond)
		}
	}
	for _, r := range sc.Rows {
		if r.Verdict == "FAIL" {
			fmt.Fprintf(w, "\n%s: FAIL in %q\n  cause: %s\n", r.Name, r.FirstFailing, r.Cause)
			if r.Artifacts != "" {
				fmt.Fprintf(w, "  artifacts: %s\n", r.Artifacts)
			}
		}
	}
	return nil
}

// JSON is the scorecard as indented JSON.
func (sc Scorecard) JSON() ([]byte, error) { return json.MarshalIndent(sc, "", "  ") }

var scorecardHTML = template.Must(template.New("scorecard").Parse(`<!doctype html>
<meta charset="utf-8"><title>Scorecard: {{.Herd}}</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;vertical-align:top}
.FAIL{color:#b00;font-weight:bold}.pass{color:#070}tr:nth-child(even){background:#f4f4f4}small{color:#666}</style>
<h1>Scorecard: {{.Herd}}</h1><p>seed {{.Seed}}</p>{{if .SuiteFailure}}<p class="FAIL">The suite failed outside its specs: {{.SuiteFailure}}</p>{{end}}
<table><tr><th>property</th><th>verdict</th><th>passed</th><th>failed</th><th>first failing spec, cause, artifacts</th></tr>
{{range .Rows}}<tr><td>{{.Name}}{{if .Beyond}}<br><small>{{.Beyond}}</small>{{end}}</td><td class="{{.Verdict}}">{{.Verdict}}</td>
<td>{{.Passed}}</td><td>{{.Failed}}</td><td>{{if .FirstFailing}}{{.FirstFailing}}<br><small>{{.Cause}}</small><br><small>{{.Artifacts}}</small>{{end}}</td></tr>
{{end}}</table>
`))

// WriteHTML writes the scorecard as a small HTML page.
func (sc Scorecard) WriteHTML(w io.Writer) error { return scorecardHTML.Execute(w, sc) }
