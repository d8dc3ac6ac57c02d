package chaos

import (
	"bytes"
	"strings"
	"testing"
)

func TestTheScorecardBlamesTheCheckerAFailureNamesElseTheSpecsOwnProperty(t *testing.T) {
	results := []SpecResult{
		{Name: "crash A", Labels: []string{"crash", "survival"}, State: "passed"},
		{Name: "crash B", Labels: []string{"crash", "survival"}, State: "failed",
			Failure: "convergence: not converged 15s after the last heal: B answers \"\"\nmore", Artifacts: "/a/crash-B"},
		{Name: "crash C", Labels: []string{"crash", "survival"}, State: "failed", Failure: "Timed out after 15s.\ndelivery to every reachable server: ...\nExpected"},
		{Name: "healthy WHATSAT", Labels: []string{"quick", "delivery", "whatsat"}, State: "failed", Failure: "WHATSAT correctness at X: JSON differs"},
		{Name: "flood", Labels: []string{"quick", "delivery"}, State: "passed"},
		{Name: "secret", Labels: []string{"ours"}, State: "skipped"},
		{Name: "lines", Labels: []string{"replies"}, State: "failed", Failure: "after the spec, with every fault healed, the herd did not settle (...)"},
	}
	sc := NewScorecard("herd X", 7, results)
	row := map[string]Row{}
	for _, r := range sc.Rows {
		row[r.Label] = r
	}
	want := map[string]string{"convergence": "FAIL", "survival": "FAIL", "whatsat": "FAIL", "delivery": "pass", "ours": "not tested", "replies": "not tested"}
	if r := row["survival"]; r.Failed != 2 {
		t.Errorf("a herd that did not settle after a spec counts for survival: %+v", r)
	}
	for label, v := range want {
		if row[label].Verdict != v {
			t.Errorf("%s: %s, want %s (%+v)", label, row[label].Verdict, v, row[label])
		}
	}
	if r := row["convergence"]; r.FirstFailing != "crash B" || r.Cause != "convergence: not converged 15s after the last heal: B answers \"\"" || r.Artifacts != "/a/crash-B" {
		t.Errorf("convergence row: %+v", r)
	}
	if r := row["survival"]; r.Passed != 1 || r.FirstFailing != "crash C" || r.Cause != "Timed out after 15s. delivery to every reachable server: ..." {
		t.Errorf("survival row: %+v", r)
	}
	if !sc.Failed() {
		t.Error("a scorecard with failing rows says it did not fail")
	}
	var text, page bytes.Buffer
	sc.WriteText(&text)
	sc.WriteHTML(&page)
	for _, s := range []string{"convergence after heal *", "FAIL in \"crash B\"", "artifacts: /a/crash-B", "beyond the course"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("the text scorecard lacks %q:\n%s", s, text.String())
		}
	}
	if !strings.Contains(page.String(), `class="FAIL"`) {
		t.Errorf("the HTML scorecard marks no failure:\n%s", page.String())
	}
}

func TestAScorecardOfASuiteThatFailedOutsideItsSpecsFails(t *testing.T) {
	sc := NewScorecard("herd X", 7, nil)
	if sc.Failed() {
		t.Fatal("an empty scorecard fails")
	}
	sc.SuiteFailure = "BeforeSuite: server Hill: exited"
	var text bytes.Buffer
	sc.WriteText(&text)
	if !sc.Failed() || !strings.Contains(text.String(), "BeforeSuite: server Hill: exited") {
		t.Errorf("a suite that failed outside its specs: failed %v\n%s", sc.Failed(), text.String())
	}
}
