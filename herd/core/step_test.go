package core

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/proto"
)

// step is n.Step that fails the test on an error.
func step(t *testing.T, n *Node, in Input) Output {
	t.Helper()
	out, err := n.Step(in)
	if err != nil {
		t.Fatalf("Step(%+v): %v", in, err)
	}
	return out
}

// A dialler A and a listener B, driven through Step alone: a client's IAMAT at A goes
// over A's link to B, B floods it on, and the heartbeats carry A's mark to B and back in
// B's welcome to A's next connection.
func TestStepDrivesBothEndsOfALink(t *testing.T) {
	a := NewNode(Config{Self: "A", Neighbours: []string{"B"}, Instance: "inst", DeadAfter: time.Second})
	b := NewNode(Config{Self: "B", Neighbours: []string{"A", "C"}})

	adm := step(t, b, Admit{From: "A", Now: now})
	if adm.Welcome != (proto.Welcome{Server: "B"}) {
		t.Fatalf("welcome %+v", adm.Welcome)
	}
	if _, err := a.Step(LinkUp{Peer: "B", Welcome: proto.Welcome{Server: "C"}, Now: now}); !errors.Is(err, ErrWelcome) {
		t.Fatalf("link up with C's welcome: %v", err)
	}
	step(t, a, LinkUp{Peer: "B", Welcome: adm.Welcome, Now: now})

	out := step(t, a, ClientIAMAT{Now: now, IAMAT: iamat(t, "kiwi", "+1+1", "1520023934.5")})
	if !out.Stored || !slices.Equal(out.Wake, []string{"B"}) || out.Reply != "AT A +0.682837383 kiwi +1+1 1520023934.5" {
		t.Fatalf("IAMAT: %+v", out)
	}
	if again := step(t, a, ClientIAMAT{Now: now, IAMAT: iamat(t, "kiwi", "+1+1", "1520023934.5")}); again.Stored || again.Wake != nil || again.Reply != out.Reply {
		t.Fatalf("the same IAMAT again: %+v", again)
	}

	// A's link writes the update (a resync's, the link having just come up); B applies it.
	var batch Batch
	for {
		a.Take("B", &batch)
		if batch.Empty() {
			break
		}
		for _, r := range batch.Resync {
			got, err := b.ReadLine(FromDialler, "HERD-"+r.AT, proto.Fields(nil, "HERD-"+r.AT))
			if err != nil || got.Kind != AnUpdate {
				t.Fatalf("B reads %q: %+v, %v", r.AT, got, err)
			}
			if up := step(t, b, PeerUpdate{From: "A", Update: got.Update}); !up.Stored || !slices.Equal(up.Wake, []string{"C"}) {
				t.Fatalf("B applies %q: %+v", r.AT, up)
			}
		}
		step(t, a, Written{Peer: "B", Batch: &batch})
	}
	if a.LinkState("B") != Streaming || a.Mark("B") != 1 {
		t.Fatalf("A's link to B: %v, mark %d", a.LinkState("B"), a.Mark("B"))
	}

	tick := step(t, a, Tick{Peer: "B", Now: now.Add(500 * time.Millisecond)})
	if tick.Close || tick.Ping != (proto.Ping{N: 1, Mark: proto.Mark{Instance: "inst", Seq: 1}}) {
		t.Fatalf("tick: %+v", tick)
	}
	step(t, b, PeerPing{From: "A", Ping: tick.Ping})
	if pong := step(t, b, ListenerTick{From: "A"}).Pong; pong.N != 1 {
		t.Fatalf("pong %+v", pong)
	}
	step(t, a, Heard{Peer: "B", Now: now.Add(900 * time.Millisecond)})
	if tick := step(t, a, Tick{Peer: "B", Now: now.Add(1800 * time.Millisecond)}); tick.Close {
		t.Fatalf("closed though heard 900 ms ago: %+v", tick)
	}
	if tick := step(t, a, Tick{Peer: "B", Now: now.Add(2 * time.Second)}); !tick.Close || tick.Silent != 1100*time.Millisecond {
		t.Fatalf("silent for 1.1 s: %+v", tick)
	}
	step(t, a, LinkDown{Peer: "B"})
	if a.LinkState("B") != Down {
		t.Fatal("the link is not down")
	}
	// B hands A's mark back: A's next connection resyncs nothing.
	adm = step(t, b, Admit{From: "A", Now: now.Add(3 * time.Second)})
	if adm.Welcome.Mark != (proto.Mark{Instance: "inst", Seq: 1}) {
		t.Fatalf("second welcome %+v", adm.Welcome)
	}
	step(t, a, LinkUp{Peer: "B", Welcome: adm.Welcome, Now: now.Add(3 * time.Second)})
	if a.Take("B", &batch); !batch.Empty() {
		t.Fatalf("the reconnect resyncs %d records B holds", len(batch.Resync))
	}

	for _, in := range []Input{LinkUp{Peer: "Mallory", Welcome: proto.Welcome{Server: "Mallory"}}, Admit{From: "Mallory"}, nil} {
		if _, err := a.Step(in); err == nil {
			t.Errorf("Step(%+v) accepted", in)
		}
	}
}

// The runtime's link loop steps these for every batch and heartbeat: Step adds no
// allocation to what the methods do.
func TestSteppingALinksLoopAllocatesNothing(t *testing.T) {
	a := linkNode(t, 0)
	b := NewNode(Config{Self: "B", Neighbours: []string{"A"}})
	var batch Batch
	got, err := a.ReadLine(FromDialler, updateLine, proto.Fields(nil, updateLine))
	if err != nil {
		t.Fatal(err)
	}
	u := got.Update // as received: its AT line aliases the line
	if allocs := testing.AllocsPerRun(100, func() {
		a.Take("B", &batch)
		a.Step(Written{Peer: "B", Batch: &batch})
		a.Step(Heard{Peer: "B", Now: now})
		a.Step(Tick{Peer: "B", Now: now})
		b.Step(PeerPing{From: "A", Ping: proto.Ping{N: 1}})
		b.Step(ListenerTick{From: "A"})
		a.Step(PeerUpdate{From: "B", Update: u}) // a duplicate after the first
	}); allocs > 0 {
		t.Errorf("%v allocations a round", allocs)
	}
}

// BenchmarkClientIAMAT and BenchmarkStepClientIAMAT compare the hottest input through its
// method and through Step (each IAMAT newer than the last, flooded to two neighbours).
func BenchmarkClientIAMAT(b *testing.B) { benchClientIAMAT(b, false) }

func BenchmarkStepClientIAMAT(b *testing.B) { benchClientIAMAT(b, true) }

func benchClientIAMAT(b *testing.B, viaStep bool) {
	n := NewNode(Config{Self: "A", Neighbours: []string{"B", "C"}, Instance: "inst"})
	for _, p := range []string{"B", "C"} {
		n.LinkUp(p, proto.Welcome{Server: p}, now)
	}
	cmds := make([]proto.IAMAT, 1024)
	for i := range cmds {
		cmd, _ := proto.ParseCommand("IAMAT kiwi +34.068930-118.445127 "+strconv.Itoa(1520023934+i)+".918963997", nil)
		cmds[i] = cmd.IAMAT
	}
	var batch Batch
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := cmds[i%len(cmds)]
		if i%len(cmds) == 0 {
			n.clients = map[string]*Record{} // every IAMAT is newer than what is held
		}
		if viaStep {
			n.Step(ClientIAMAT{Now: now, IAMAT: c})
		} else {
			n.ClientIAMAT(now, c)
		}
		for _, p := range []string{"B", "C"} {
			n.Take(p, &batch)
			n.Advance(p, &batch)
		}
	}
}
