package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herdchaos/herd/chaos"
)

// These run the real herdctl binary against real herds under Docker.

func buildHerdctl(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Fatalf("docker does not answer: %v\n%s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "herdctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func herdctl(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HERDCTL_STATE="+filepath.Join(t.TempDir(), "state.json"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestRunAShippedScenarioWritesItsVerdictHistoryAndTimeline(t *testing.T) {
	bin := buildHerdctl(t)
	dir := t.TempDir()
	out, code := herdctl(t, bin, "run", "split-herd", "--out", dir)
	if code != 0 || !strings.Contains(out, "5 checks: 5 passed, 0 failed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var h chaos.History
	b, err := os.ReadFile(filepath.Join(dir, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) == 0 || len(h.Faults) != 1 || h.Faults[0].End < 0 || len(h.Seen) == 0 {
		t.Fatalf("history: %d ops, faults %+v, %d sightings", len(h.Ops), h.Faults, len(h.Seen))
	}
	if h.Faults[0].Spec.Kind != "partition" || !strings.Contains(h.Faults[0].Fault, "partition") {
		t.Fatalf("fault window %+v", h.Faults[0])
	}
	page, err := os.ReadFile(filepath.Join(dir, "timeline.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", ">Welsh</text>", "partition", "first seen at", "check converged"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("timeline lacks %q", want)
		}
	}
}

func TestAFailedCheckExitsNonZeroAndABadFileStartsNothing(t *testing.T) {
	bin := buildHerdctl(t)
	dir := t.TempDir()
	failing := filepath.Join(dir, "failing.yaml")
	os.WriteFile(failing, []byte(`name: Welsh cannot know what it was cut off from
steps:
  - inject: {kind: isolate, nodes: [Welsh]}
  - iamat: {server: Goloman, client: far-phone}
  - whatsat: {server: Welsh, client: far-phone}
  - check: whatsat
`), 0o644)
	out, code := herdctl(t, bin, "run", failing, "--out", filepath.Join(dir, "out"))
	if code != 1 || !strings.Contains(out, "FAILED  line 6  check whatsat") || !strings.Contains(out, "1 checks: 0 passed, 1 failed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("steps:\n  - iamat: {server: Welsh, client: a}\n  - inject: {kind: cut, links: [\"Welsh->Hands\"]}\n"), 0o644)
	out, code = herdctl(t, bin, "run", bad)
	if code != 1 || !strings.Contains(out, "bad.yaml:3: link Welsh->Hands: Welsh and Hands are not neighbours") || strings.Contains(out, "starting") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, code = herdctl(t, bin, "latency", "Goloman->Hands")
	if code != 1 || !strings.Contains(out, "no herd is up") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestRunOnTheLocalBackend(t *testing.T) {
	bin := buildHerdctl(t)
	dir := t.TempDir()
	out, code := herdctl(t, bin, "run", "crash-during-flood", "--backend", "local", "--out", dir)
	if code != 0 || !strings.Contains(out, "local backend") || !strings.Contains(out, "5 checks: 5 passed, 0 failed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "timeline.html")); err != nil {
		t.Fatal(err)
	}
}

func TestBenchMeasuresThroughputPropagationAndMessages(t *testing.T) {
	bin := buildHerdctl(t)
	out, code := herdctl(t, bin, "bench", "--backend", "local", "--duration", "500ms", "--samples", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Throughput) != 2 || len(rep.Propagation) != 20 || rep.Messages == nil {
		t.Fatalf("%+v", rep)
	}
	for _, tp := range rep.Throughput {
		if tp.Ops == 0 || tp.Errors != 0 || tp.Latency.P99 <= 0 {
			t.Errorf("%s: %+v", tp.Mode, tp)
		}
	}
	for _, p := range rep.Propagation {
		if p.Latency.Count != 2 || p.Hops < 1 || p.Hops > 3 {
			t.Errorf("%+v", p)
		}
	}
	if m := rep.Messages; m.PerUpd > float64(m.Limit) || m.Updates != 40 {
		t.Errorf("messages %+v", m)
	}
}

// bench --netns runs again in a network namespace of its own and measures a direct herd
// (no proxies) there, reporting the herd's processor time per IAMAT.
func TestBenchInItsOwnNetworkNamespaceOnADirectHerd(t *testing.T) {
	bin := buildHerdctl(t)
	out, code := herdctl(t, bin, "bench", "--backend", "direct", "--netns", "--only", "oneshot,pipelined", "--duration", "500ms", "--json")
	if code != 0 && strings.Contains(out, "operation not permitted") {
		t.Skipf("no network namespaces here (needs root or unprivileged user namespaces):\n%s", out)
	}
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "network namespace of its own") {
		t.Errorf("no word of the namespace:\n%s", out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Throughput) != 2 || len(rep.Propagation) != 0 {
		t.Fatalf("--only oneshot,pipelined: %+v", rep)
	}
	for _, tp := range rep.Throughput {
		if tp.Ops == 0 || tp.Errors != 0 || tp.HerdCPUPerOp <= 0 || tp.Steal < 0 {
			t.Errorf("%s: %+v", tp.Mode, tp)
		}
	}
	// Without a herd of its own to start, --netns says what it needs.
	if out, code := herdctl(t, bin, "bench", "--netns", "--servers", "A=127.0.0.1:1"); code == 0 || !strings.Contains(out, "--backend local or direct") {
		t.Errorf("--netns with --servers: exit %d\n%s", code, out)
	}
}

func TestBenchGridAndMemory(t *testing.T) {
	bin := buildHerdctl(t)
	out, code := herdctl(t, bin, "bench", "--backend", "local", "--grid", "2x3", "--latency", "50ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if g := rep.Grid; g == nil || g.Updates != 6 || !g.WithinBudget || g.DelayMedian < 50e6 {
		t.Fatalf("grid %+v", rep.Grid)
	}
	if m := rep.Messages; m == nil || m.Limit != 2*7-6+1 || m.PerUpd > float64(m.Limit) {
		t.Fatalf("messages %+v", rep.Messages)
	}
	out, code = herdctl(t, bin, "bench", "--memory", "20000", "--json")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	rep = benchReport{}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{\n"):]), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if m := rep.Memory; m == nil || m.Clients != 20000 || m.ResidentBytes <= m.BaseBytes {
		t.Fatalf("memory %+v", rep.Memory)
	}
}

func TestUpOnTheLocalBackendIsDrivenFromOtherCommandsAndStopsWithDown(t *testing.T) {
	bin := buildHerdctl(t)
	state := filepath.Join(t.TempDir(), "state.json")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HERDCTL_STATE="+state)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	owner := exec.Command(bin, "up", "--backend", "local")
	owner.Env = append(os.Environ(), "HERDCTL_STATE="+state)
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- owner.Wait() }()
	defer owner.Process.Kill()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(state); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("herdctl up --backend local never wrote its state file")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, code := run("crash", "Welsh"); code != 0 || !strings.Contains(out, "f1  crash Welsh") {
		t.Fatalf("crash: %d %s", code, out)
	}
	out, code := run("status", "--json")
	var rep statusReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("status: %d %s", code, out)
	}
	for _, s := range rep.Servers {
		if (s.Name == "Welsh") != (s.State == "crashed") {
			t.Fatalf("status %+v", rep.Servers)
		}
	}
	if out, code := run("heal", "all"); code != 0 {
		t.Fatalf("heal: %d %s", code, out)
	}
	if out, code := run("iamat", "Welsh", "back", "+1+1"); code != 0 || !strings.HasPrefix(out, "AT Welsh ") {
		t.Fatalf("Welsh did not come back: %d %s", code, out)
	}
	if out, code := run("down"); code != 0 || !strings.Contains(out, "is down") {
		t.Fatalf("down: %d %s", code, out)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the owner did not exit after down")
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatal("state file left behind")
	}
}
