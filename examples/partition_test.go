// Package examples is a module of its own, as a user's repository would be: its tests
// import the framework (github.com/herdchaos/herd, here through a replace directive to
// the folder above) and start the herd with herdtest. Run them with
//
//	cd examples && go test ./...                        (containers; make examples)
//	cd examples && HERD_BACKEND=local go test ./...     (local processes, no Docker)
package examples

import (
	"os"
	"testing"
	"time"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/herdtest"
)

func TestAServerCutOffMissesUpdatesAndCatchesUpAfterTheHeal(t *testing.T) {
	h := herdtest.Start(t, herdtest.WithBackend(os.Getenv("HERD_BACKEND")))
	ctx := t.Context()

	// Cut Welsh off from every neighbour, then update a client at Goloman.
	cut, err := h.Inject(ctx, chaos.Isolate{Node: "Welsh"})
	if err != nil {
		t.Fatal(err)
	}
	phone := h.ClientID("phone")
	u := h.Update(ctx, "Goloman", phone, "+34.068930-118.445127")

	// Every server still reachable from Goloman gets it in time; Welsh does not.
	if _, err := h.AwaitDelivery(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := h.CheckNotDelivered(ctx, u); err != nil {
		t.Fatal(err)
	}
	if at, err := h.WHATSAT(ctx, "Welsh", phone, "10", 1); err == nil && at.AT == u.AT {
		t.Fatalf("Welsh, cut off, answers with the update it cannot have: %q", at.AT)
	}

	// Healed, Welsh catches up: every server answers with the newest location.
	if err := h.Heal(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if err := h.AwaitConverged(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}
