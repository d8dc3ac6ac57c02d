package herdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
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
