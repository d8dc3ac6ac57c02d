package containers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/herdchaos/herd/chaos"
)

// Run refuses, before touching Docker, a herd it would have to guess an image for.
func TestRunSaysWhichImageIsMissing(t *testing.T) {
	ctx := context.Background()
	theirs := chaos.HerdSpec{Name: "theirs", Command: []string{"serve"}}
	h, err := Run(ctx, WithHerd(theirs))
	if h != nil || err == nil || !strings.Contains(err.Error(), `the herd "theirs" names no image`) || !strings.Contains(err.Error(), "WithHerdFromSource") {
		t.Errorf("a described herd without an image: %v, %v", h, err)
	}
	h, err = Run(ctx, WithHerdImage("mine:1"), WithHerdFromSource())
	if h != nil || err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Errorf("an image and from source: %v, %v", h, err)
	}
}

// On error Run returns the herd as far as it got, as testcontainers-go does, and
// Terminate removes all of it.
func TestRunReturnsAPartlyStartedHerdThatTerminateRemoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli, err := NewDockerClient(ctx)
	if errors.Is(err, ErrNoDocker) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// A described herd whose servers cannot start: the network, Toxiproxy, the emulator
	// and the holders are up when Run fails.
	broken := chaos.HerdSpec{Name: "broken", Args: []string{"no-such-command"}, Port: 12000}
	h, err := Run(ctx, WithHerd(broken), WithHerdFromSource(), WithRunID("runtest-"+time.Now().Format("150405.000000")))
	if err == nil {
		h.Terminate(ctx)
		t.Fatal("a herd whose servers cannot start: no error")
	}
	if h == nil {
		t.Fatalf("Run failed with nothing to terminate: %v", err)
	}
	defer h.Terminate(ctx)
	if got := ofRun(ctx, t, cli, h.RunID); got == 0 {
		t.Fatalf("Run failed (%v) but left nothing of run %s: it removed them itself", err, h.RunID)
	}
	if err := h.Terminate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ofRun(ctx, t, cli, h.RunID); got != 0 {
		t.Errorf("%d containers and networks of run %s after Terminate", got, h.RunID)
	}
}

// ofRun counts the containers and networks of run.
func ofRun(ctx context.Context, t *testing.T, cli *client.Client, run string) int {
	t.Helper()
	all, err := Managed(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range all {
		if r.Run == run {
			n++
		}
	}
	return n
}
