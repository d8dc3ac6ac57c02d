package backends

import (
	"context"
	"strings"
	"testing"

	"github.com/herdchaos/herd/chaos"
)

func TestStartRefusesAnUnknownBackend(t *testing.T) {
	_, err := Start(context.Background(), "kubernetes")
	if err == nil || !strings.Contains(err.Error(), `backend "kubernetes": want containers, local, direct or sim`) {
		t.Fatalf("err = %v", err)
	}
}

func TestStartRefusesAnOverlayForAnImage(t *testing.T) {
	_, err := Start(context.Background(), "containers", WithHerd(chaos.HerdSpec{Name: "theirs", Image: "theirs:1", Command: []string{"serve"}}),
		WithBuildOverlay("overlay.json"))
	if err == nil || !strings.Contains(err.Error(), "overlay") {
		t.Fatalf("err = %v", err)
	}
}

// The local backend starts (no Docker needed) and is removed by Close.
func TestStartLocal(t *testing.T) {
	ctx := context.Background()
	b, err := Start(ctx, "local")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if n := len(b.Config().Servers); n != 5 {
		t.Fatalf("%d servers, want the default five", n)
	}
	if _, err := b.ClientAddr(ctx, "Goloman"); err != nil {
		t.Fatal(err)
	}
}
