package local

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/bench"
	"github.com/herdchaos/herd/herd/client"
)

// A direct herd has no proxies: the servers reach each other at their own ports, an
// update still crosses the herd, and link faults are refused with a reason.
func TestADirectHerdFloodsWithoutProxiesAndRefusesLinkFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := Start(ctx, Options{Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	if len(h.proxies) != 0 {
		t.Fatalf("%d proxies in a direct herd", len(h.proxies))
	}
	welsh, _ := h.ClientAddr(ctx, "Welsh")
	hands, _ := h.ClientAddr(ctx, "Hands")
	at, err := client.IAMAT(ctx, welsh, "kiwi", "+34.068930-118.445127", "1764166240.5")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep, err := client.WHATSAT(ctx, hands, "kiwi", "1", 1)
		if err == nil && rep.AT == at {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Hands never answered with %q (last: %q, %v)", at, rep.Raw, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition under a deadline
	}
	// The processor time a benchmark reports per operation is the process's.
	before, err := h.CPUTime("Welsh")
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.Load(ctx, welsh, 20000, 4); err != nil {
		t.Fatal(err)
	}
	if after, err := h.CPUTime("Welsh"); err != nil || after <= before {
		t.Fatalf("Welsh's CPU time went from %v to %v (%v) over 20,000 IAMATs", before, after, err)
	}
	err = h.AddToxic(ctx, chaos.Link{From: "Goloman", To: "Hands"}, "slow", chaos.Toxic{Type: "latency", Stream: "downstream"})
	if err == nil || !strings.Contains(err.Error(), "no proxies") {
		t.Fatalf("a link fault on a direct herd: %v", err)
	}
}

// A herd with fixed ports that dials its neighbours on loopback and calls Google's URL
// runs unmodified: each server in a namespace of its own, an update crosses the herd's
// own graph, and WHATSAT's Places call reaches the emulator over TLS by Google's name.
func TestAHerdWithFixedPortsDiallingLoopbackRunsInNamespacesOfItsOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spec, err := chaos.LoadHerdSpec("../specs/testdata/herd-sandboxed.yaml")
	if err != nil {
		t.Fatal(err)
	}
	h, err := Start(ctx, Options{Herd: spec})
	if err != nil {
		t.Fatal(err)
	}
	var nsNames []string
	for _, n := range h.nodes {
		nsNames = append(nsNames, n.ns.Name)
	}
	defer func() {
		if err := h.Close(context.Background()); err != nil {
			t.Error(err)
		}
		for _, ns := range nsNames {
			if _, err := os.Stat("/run/netns/" + ns); err == nil {
				t.Errorf("namespace %s left behind", ns)
			}
		}
	}()
	cfg := h.Config()
	if got := strings.Join(cfg.Names(), ","); got != "Bernard,Campbell,Clark,Jaquez,Juzang,Riley" {
		t.Fatalf("servers %s: not the description's", got)
	}
	riley, _ := h.ClientAddr(ctx, "Riley")
	bernard, _ := h.ClientAddr(ctx, "Bernard") // three hops away
	at, err := client.IAMAT(ctx, riley, "kiwi", "+34.068930-118.445127", "1764166240.5")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep, err := client.WHATSAT(ctx, bernard, "kiwi", "10", 1)
		if err == nil && rep.AT == at && strings.Contains(rep.Raw, `"status" : "OK"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bernard never answered with %q and Places results (last: %q, %v)", at, rep.Raw, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition under a deadline
	}
}
