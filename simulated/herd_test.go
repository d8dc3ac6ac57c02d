package simulated

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/herdchaos/herd/chaos"
)

// In a synctest bubble the herd runs in simulated time: a second of latency on every
// link costs no wall time, an update still reaches every server through it, and Close
// leaves no goroutine behind (synctest.Test fails on one).
func TestAHerdInABubbleRunsInSimulatedTimeAndLeavesNothingBehind(t *testing.T) {
	wall := time.Now()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		h, c := startHerd(t)
		defer h.Close(ctx)
		// Links up first: a handshake's round trips through 1s of latency would not fit in
		// its deadline (DeadAfter, 1.5s), on any backend.
		if err := c.HealAndSettle(ctx, "start"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Inject(ctx, chaos.Latency{Links: chaos.PeerLinks(h.Config()), Latency: time.Second}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		u, err := c.Update(ctx, "Goloman", "kiwi.cs.ucla.edu", "+34.068930-118.445127", chaos.ClientTime())
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.AwaitDelivery(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 5 {
			t.Fatalf("delivered to %d servers, want 5", len(got))
		}
		// Goloman to Welsh is two hops (through Holiday) of a second each.
		if d := time.Since(start); d < 2*time.Second {
			t.Fatalf("delivered in %v of simulated time through two links of 1s latency", d)
		}
	})
	if d := time.Since(wall); d > 20*time.Second {
		t.Fatalf("the bubble took %v of wall time", d)
	}
}

// A crash loses the server's state; the next incarnation starts empty and resyncs.
func TestACrashedServerComesBackEmptyAndResyncs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		h, c := startHerd(t)
		defer h.Close(ctx)
		id, err := c.Inject(ctx, chaos.Crash{Node: "Welsh"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.ClientAddr(ctx, "Welsh"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Raw(ctx, "Welsh", "WHATSAT x 1 1\n"); err == nil {
			t.Fatal("a crashed server answered")
		}
		u, err := c.Update(ctx, "Goloman", "after-crash", "+34.068930-118.445127", chaos.ClientTime())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Heal(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := c.AwaitConvergence(ctx, map[string]string{u.Client: u.AT}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// startHerd starts the five servers of docs/PROTOCOL.md and a cluster on them.
func startHerd(t *testing.T) (*Herd, *chaos.Cluster) {
	t.Helper()
	h, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h, chaos.NewCluster(h, 1)
}
