package herdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herdchaos/herd/chaos"
)

// fakeT is a test that can be made to fail, and whose cleanups run when asked.
type fakeT struct {
	name     string
	failed   bool
	logs     []string
	cleanups []func()
}

func (f *fakeT) Helper()                      {}
func (f *fakeT) Name() string                 { return f.name }
func (f *fakeT) Logf(format string, a ...any) { f.logs = append(f.logs, fmt.Sprintf(format, a...)) }
func (f *fakeT) Fatalf(format string, a ...any) {
	f.failed = true
	f.Logf(format, a...)
	panic("Fatalf")
}
func (f *fakeT) Failed() bool      { return f.failed }
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) end() {
	for _, fn := range slices.Backward(f.cleanups) {
		fn()
	}
}

// A failed test leaves its artifacts (history, faults, every server's log) where its log
// says, and no herd; the newest update per client is tracked for the convergence check.
func TestAFailedTestKeepsArtifactsAndLeavesNoHerd(t *testing.T) {
	ft := &fakeT{name: "TestSomething/with spaces"}
	arts := t.TempDir()
	h, err := StartE(ft, WithBackend("local"), WithSeed(42), WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	phone := h.ClientID("phone")
	h.Update(ctx, "Hands", phone, "+34.068930-118.445127")
	u := h.Update(ctx, "Welsh", phone, "+34.068930-118.445127")
	if got, ok := h.Newest(phone); !ok || got.AT != u.AT {
		t.Errorf("the newest update of %s is %q, want the second one %q", phone, got.AT, u.AT)
	}
	if err := h.AwaitConverged(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	addr, err := h.Backend().ClientAddr(ctx, "Goloman")
	if err != nil {
		t.Fatal(err)
	}

	ft.failed = true
	ft.end()
	dir := filepath.Join(arts, "herdtest-TestSomething_with_spaces-42")
	for _, f := range []string{"history.json", "faults.txt", "Goloman-Goloman.log"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("artifact %s: %v (logs: %q)", f, err, ft.logs)
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("Goloman still answers at %s after the test's cleanup", addr)
	}
}

// Between tests that share a herd (Ginkgo's AfterEach), ResetAfter heals what the test
// left and settles the herd, and saves artifacts only for a test that failed, in a
// folder named after that test.
func TestResetAfterHealsAndKeepsOnlyAFailedTestsArtifacts(t *testing.T) {
	suite := &fakeT{name: "suite"}
	defer suite.end()
	arts := t.TempDir()
	h, err := StartE(suite, WithBackend("local"), WithSeed(7), WithArtifacts(arts))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, spec := range []struct {
		name   string
		failed bool
	}{{"passes", false}, {"fails", true}} {
		if _, err := h.Inject(ctx, chaos.Isolate{Node: "Welsh"}); err != nil {
			t.Fatal(err)
		}
		st := &fakeT{name: spec.name, failed: spec.failed}
		h.ResetAfter(ctx, st)
		if n := len(h.Active()); n != 0 {
			t.Errorf("after %s: %d faults still active", spec.name, n)
		}
		_, err := os.Stat(filepath.Join(arts, "herdtest-"+spec.name+"-7", "history.json"))
		if spec.failed && err != nil {
			t.Errorf("failed spec %s: no artifacts: %v (logs %q)", spec.name, err, st.logs)
		}
		if !spec.failed && err == nil {
			t.Errorf("passed spec %s: artifacts saved", spec.name)
		}
	}
	// Settled: an update at Welsh, healed, reaches every server.
	u := h.Update(ctx, "Welsh", h.ClientID("after"), "+34.068930-118.445127")
	if _, err := h.AwaitDelivery(ctx, u); err != nil {
		t.Fatal(err)
	}
}

// On the sim backend inside a synctest bubble, a test's faults and waits take simulated
// time: a partition and a heal that take seconds on other backends take none here, and
// the herd is gone (every goroutine) when the bubble ends, or synctest.Test fails.
func TestOnTheSimBackendInABubbleATestRunsInSimulatedTime(t *testing.T) {
	wall := time.Now()
	synctest.Test(t, func(t *testing.T) {
		h := Start(t, WithBackend("sim"), WithSeed(7))
		ctx := t.Context()
		cut, err := h.Inject(ctx, chaos.Isolate{Node: "Welsh"})
		if err != nil {
			t.Fatal(err)
		}
		u := h.Update(ctx, "Goloman", h.ClientID("phone"), "+34.068930-118.445127")
		if _, err := h.AwaitDelivery(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := h.CheckNotDelivered(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := h.Heal(ctx, cut); err != nil {
			t.Fatal(err)
		}
		if err := h.AwaitConverged(ctx, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("wall time %v", time.Since(wall))
}
