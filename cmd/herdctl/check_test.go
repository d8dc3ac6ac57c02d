package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herdchaos/herd/chaos"
)

// stdout runs herdctl and returns what it printed on standard output (the verdicts), its
// standard error, and its exit status.
func stdout(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HERDCTL_STATE="+filepath.Join(t.TempDir(), "state.json"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func loadHistory(t *testing.T, path string) *chaos.History {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := chaos.LoadHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func saveHistory(t *testing.T, h *chaos.History, path string) {
	t.Helper()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A run's verdicts, passing and failing, are what 'herdctl check' says of its saved
// history; and check reads the record: without the read that showed an update at a
// server, the delivery check fails.
func TestCheckGivesTheVerdictsOfTheRunFromItsHistory(t *testing.T) {
	bin := buildHerdctl(t)
	dir := t.TempDir()
	failing := filepath.Join(dir, "failing.yaml")
	os.WriteFile(failing, []byte(`name: Welsh cannot know what it was cut off from
steps:
  - inject: {kind: isolate, nodes: [Welsh]}
  - iamat: {server: Goloman, client: far-phone}
  - check: delivered
  - whatsat: {server: Welsh, client: far-phone}
  - check: whatsat
`), 0o644)
	for _, c := range []struct {
		scenario, want string
		code           int
	}{
		{"split-herd", "5 checks: 5 passed, 0 failed\n", 0},
		{failing, "2 checks: 1 passed, 1 failed\n", 1},
	} {
		out := filepath.Join(dir, "out-"+filepath.Base(c.scenario))
		run, errs, code := stdout(t, bin, "run", c.scenario, "--backend", "local", "--out", out)
		if code != c.code || !strings.HasSuffix(run, c.want) {
			t.Fatalf("run %s: exit %d:\n%s\n%s", c.scenario, code, run, errs)
		}
		check, errs, code := stdout(t, bin, "check", filepath.Join(out, "history.json"))
		if code != c.code || check != run {
			t.Fatalf("check of %s: exit %d, printed\n%s\nthe run printed\n%s\n%s", c.scenario, code, check, run, errs)
		}
	}

	// Tampering: the read that showed the update of line 7 at Hands is gone.
	path := filepath.Join(dir, "out-split-herd", "history.json")
	h := loadHistory(t, path)
	var delivered chaos.Asked
	for _, a := range h.Checks {
		if a.Kind == "delivered" && a.Result == 1 {
			delivered = a
		}
	}
	gone := slices.IndexFunc(h.Ops, func(op chaos.Op) bool {
		return op.Check == delivered.ID && op.Node == "Hands" && op.Reply == delivered.Update
	})
	if gone < 0 {
		t.Fatalf("no read showed %q at Hands in check %d", delivered.Update, delivered.ID)
	}
	h.Ops = slices.Delete(h.Ops, gone, gone+1)
	for i := range h.Ops {
		h.Ops[i].ID = i
	}
	for i := range h.Checks {
		if h.Checks[i].Op > gone {
			h.Checks[i].Op--
		}
	}
	tampered := filepath.Join(dir, "tampered.json")
	saveHistory(t, h, tampered)
	check, errs, code := stdout(t, bin, "check", tampered)
	if code != 1 || !strings.Contains(check, "FAILED  line 8  check delivered") || !strings.Contains(check, "Hands ") {
		t.Fatalf("check of the tampered history: exit %d:\n%s\n%s", code, check, errs)
	}

	if _, errs, code := stdout(t, bin, "check", failing); code != 1 || !strings.Contains(errs, "not a history") {
		t.Fatalf("check of a scenario file: exit %d: %s", code, errs)
	}
}

// The shipped crash-during-flood crashes Holiday while updates are in flight, and the
// history shows it: the crash window opened while some accepted update had not yet been
// seen at every server its delivery check's oracle named.
func TestACrashLandsWhileUpdatesAreInFlight(t *testing.T) {
	bin := buildHerdctl(t)
	dir := t.TempDir()
	if run, errs, code := stdout(t, bin, "run", "crash-during-flood", "--backend", "local", "--out", dir); code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, run, errs)
	}
	h := loadHistory(t, filepath.Join(dir, "history.json"))
	crash := slices.IndexFunc(h.Faults, func(f chaos.FaultWindow) bool { return f.Spec.Kind == "crash" })
	if crash < 0 {
		t.Fatalf("no crash window in %+v", h.Faults)
	}
	start := h.Faults[crash].Start
	accepted := map[string]chaos.Accepted{}
	for _, u := range h.Updates {
		accepted[u.AT] = u
	}
	inFlight := 0
	for _, a := range h.Checks {
		u, ok := accepted[a.Update]
		if a.Kind != "delivered" || !ok || u.At >= start {
			continue
		}
		o, err := chaos.OracleAt(*h.Topology, a.Timing, h.Faults, a.At)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]time.Duration{}
		for _, op := range h.Ops {
			if op.Check == a.ID && op.Reply == u.AT {
				seen[op.Node] = op.Complete
			}
		}
		for _, n := range o.MustReach(u.Origin) {
			if when, ok := seen[n]; !ok || when > start {
				inFlight++
				break
			}
		}
	}
	if inFlight == 0 {
		t.Fatalf("no accepted update was still being delivered when the crash began at %v", start)
	}
	t.Logf("%d accepted updates were still being delivered when the crash began at %v", inFlight, start)
}
