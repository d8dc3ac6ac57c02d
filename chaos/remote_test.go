package chaos

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestARemoteBackendDrivesTheOwnersBackend(t *testing.T) {
	fb := newFake()
	fb.failOn = "pause Welsh"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ServeBackend(ctx, ln, fb)
	r, err := DialBackend(ctx, "http://"+ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Config().Servers) != 5 {
		t.Fatal("config not carried")
	}
	// A cluster over the remote backend applies and heals faults on the owner's.
	c := NewCluster(r, 1)
	id, err := c.Inject(ctx, Latency{Links: []Link{{"Goloman", "Hands"}}, Latency: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Inject(ctx, Crash{"Hands"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Heal(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.HealAll(ctx); err != nil {
		t.Fatal(err)
	}
	want := "add Goloman->Hands f1-0|kill Hands|remove Goloman->Hands f1-0|start Hands"
	if got := strings.Join(fb.calls, "|"); got != want {
		t.Fatalf("owner saw %s, want %s", got, want)
	}
	// The owner's errors come back.
	if _, err := c.Inject(ctx, Pause{"Welsh"}); err == nil || !strings.Contains(err.Error(), "injected failure on pause Welsh") {
		t.Fatalf("error lost: %v", err)
	}
}
