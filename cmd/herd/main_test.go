package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/places"
)

// build compiles the herd binary once per test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "herd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBadInvocationsExitNonZeroWithAClearMessage(t *testing.T) {
	bin := build(t)
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte("servers: [{name: A, listen: ':1', peers: {B: 'h:2'}}]\n"), 0o644)
	cases := map[string][]string{
		"unknown server":   {"serve", "Nobody"},
		"no name":          {"serve"},
		"not a neighbour":  {"serve", "Goloman", "--peer", "Welsh=127.0.0.1:1"},
		"bad peer address": {"serve", "Goloman", "--peer", "Hands=nowhere"},
		"bad config":       {"serve", "A", "--config", cfg},
		"missing config":   {"serve", "A", "--config", "/nonexistent.yaml"},
		"bad places url":   {"serve", "Goloman", "--places-url", "ftp://x", "--listen", "127.0.0.1:0"},
		"unknown command":  {"frobnicate"},
		"unknown flag":     {"serve", "Goloman", "--frob"},
	}
	for what, args := range cases {
		out, err := exec.Command(bin, args...).CombinedOutput()
		var ee *exec.ExitError
		if err == nil || !(errorsAs(err, &ee) && ee.ExitCode() == 2) {
			t.Errorf("%s: want exit 2, got %v\n%s", what, err, out)
			continue
		}
		if !strings.Contains(string(out), "herd:") && !strings.Contains(string(out), "flag provided but not defined") {
			t.Errorf("%s: no clear message: %s", what, out)
		}
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

func TestServeAnswersExposesMetricsAndStopsCleanlyOnSIGTERM(t *testing.T) {
	bin := build(t)
	addr, metrics := freeAddr(t), freeAddr(t)
	logs := t.TempDir()
	cmd := exec.Command(bin, "serve", "Welsh", "--listen", addr, "--metrics", metrics, "--log-dir", logs,
		"--peer", "Holiday="+freeAddr(t))
	cmd.Env = append(os.Environ(), "HERD_PLACES_KEY=")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	errText := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stderr); errText <- string(b) }()
	defer cmd.Process.Kill()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var reply string
	for {
		var err error
		if reply, err = client.IAMAT(ctx, addr, "m", "+1+1", "1"); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("server never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(reply, "AT Welsh ") {
		t.Fatalf("reply %q", reply)
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`herd_iamat_total{server="Welsh"} 1`, `herd_clients{server="Welsh"} 1`, `herd_peer_up{server="Welsh",peer="Holiday"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	resp, err = http.Get("http://" + metrics + "/clients")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != reply+"\n" {
		t.Fatalf("/clients: %q, want %q", body, reply+"\n")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, <-errText)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit within 5s of SIGTERM")
	}
	out := <-errText
	if !strings.Contains(out, "answering WHATSAT from the built-in emulator data (offline)") || !strings.Contains(out, "stopped") {
		t.Fatalf("start-up and stop not said:\n%s", out)
	}
	logged, _ := os.ReadFile(filepath.Join(logs, "Welsh.log"))
	if !strings.Contains(string(logged), `"IAMAT m +1+1 1"`) {
		t.Fatalf("log lacks the IAMAT:\n%s", logged)
	}
}

// startServe runs the herd binary's serve with args and waits until it answers an IAMAT.
func startServe(t *testing.T, bin string, env []string, args ...string) (addr string) {
	t.Helper()
	addr = freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "Welsh", "--listen", addr, "--log-dir", t.TempDir(),
		"--peer", "Holiday=" + freeAddr(t)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := client.IAMAT(ctx, addr, "kiwi", "+34.068930-118.445127", "1520023934.918963997"); err == nil {
			return addr
		}
		if ctx.Err() != nil {
			t.Fatal("server never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With --places-api new the herd asks the New API for the client's circle (radius km x
// 1000) with its key and a field mask, and its WHATSAT JSON is that answer with "places"
// cut to the bound; the New API's error answers are passed on; offline, the built-in data
// answers as the New API does.
func TestServeAnswersWHATSATFromTheNewPlacesAPI(t *testing.T) {
	bin := build(t)
	emu := &places.Emulator{}
	srv := httptest.NewServer(emu.Handler())
	defer srv.Close()
	addr := startServe(t, bin, []string{"HERD_PLACES_KEY=test-key"}, "--places-url", srv.URL, "--places-api", "new")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := client.WHATSAT(ctx, addr, "kiwi", "10.5", 3)
	if err != nil || !strings.HasPrefix(rep.AT, "AT Welsh ") {
		t.Fatalf("WHATSAT: %v %q", err, rep.Raw)
	}
	qs := emu.Queries(0)
	if len(qs) != 1 {
		t.Fatalf("%d Places queries", len(qs))
	}
	q := qs[0]
	// The bound is maxResultCount when the server asks through places.Reply; a server
	// that asks with Source.Nearby gets the API's most (20) and cuts them to the bound.
	if q.API != places.APINew || q.Lat != 34.06893 || q.Lng != -118.445127 || q.Radius != 10500 || q.Key != "test-key" ||
		q.FieldMask != places.DefaultFieldMask || (q.MaxResultCount != 3 && q.MaxResultCount != 20) {
		t.Errorf("the herd's query: %+v", q)
	}
	want, err := places.TrimAPI(places.APINew, q.Answer, 3)
	if err != nil || rep.JSON != string(want) || !strings.HasPrefix(rep.JSON, "{\n  \"places\": [\n") || strings.Count(rep.JSON, "\n    {\n") != 3 {
		t.Fatalf("WHATSAT JSON is not the New API's answer cut to 3 (%v):\n%s", err, rep.JSON)
	}
	resp, err := http.Post(srv.URL+"/emulator/status?status=OVER_QUERY_LIMIT", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rep, err = client.WHATSAT(ctx, addr, "kiwi", "10.5", 3)
	qs = emu.Queries(1)
	if err != nil || len(qs) != 1 || qs[0].Status != 429 || rep.JSON != string(places.SqueezeNewlines(qs[0].Answer)) ||
		!strings.Contains(rep.JSON, `"status": "RESOURCE_EXHAUSTED"`) {
		t.Fatalf("forced OVER_QUERY_LIMIT: %v\n%s", err, rep.Raw)
	}

	// Offline.
	addr = startServe(t, bin, []string{"HERD_PLACES_KEY="}, "--places-api", "new")
	rep, err = client.WHATSAT(ctx, addr, "kiwi", "10.5", 3)
	want, _ = places.Reply(ctx, places.Local{API: places.APINew}, "34.068930,-118.445127", "10500", 3)
	if err != nil || rep.JSON != string(want) || !strings.HasPrefix(rep.JSON, "{\n  \"places\": [\n") {
		t.Fatalf("offline WHATSAT: %v\n%s\nwant\n%s", err, rep.JSON, want)
	}
}
