package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/proto"
)

var now = time.Unix(1520023935, 182837383)

func iamat(t *testing.T, client, loc, tm string) proto.IAMAT {
	t.Helper()
	cmd, _ := proto.ParseCommand(fmt.Sprintf("IAMAT %s %s %s", client, loc, tm), nil)
	if cmd.Kind != proto.IAmAt {
		t.Fatalf("bad IAMAT: %v", cmd.Err)
	}
	return cmd.IAMAT
}

func TestClientIAMATRepliesWithTheServersATLineAndFloodsToAllNeighbours(t *testing.T) {
	n := New("Goloman", []string{"Hands", "Holiday", "Wilkes"})
	reply, fwd := n.ClientIAMAT(now, iamat(t, "kiwi.cs.ucla.edu", "+34.068930-118.445127", "1520023934.918963997"))
	if want := "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"; reply != want {
		t.Fatalf("reply %q, want %q", reply, want)
	}
	if len(fwd) != 3 {
		t.Fatalf("forward %v, want all three neighbours", fwd)
	}
	r, ok := n.Lookup("kiwi.cs.ucla.edu")
	if !ok || r.AT != reply {
		t.Fatalf("stored %+v", r)
	}
}

func TestStaleOrEqualIAMATIsAnsweredButNotStoredOrFlooded(t *testing.T) {
	n := New("Hands", []string{"Goloman", "Wilkes"})
	n.ClientIAMAT(now, iamat(t, "c", "+1+1", "100.5"))
	for _, tm := range []string{"100.5", "100.50", "100.4999999999", "-3"} {
		reply, fwd := n.ClientIAMAT(now, iamat(t, "c", "+2+2", tm))
		if fwd != nil {
			t.Errorf("time %s flooded to %v", tm, fwd)
		}
		if want := "AT Hands " + proto.FormatDiff(now, mustTime(t, tm)) + " c +2+2 " + tm; reply != want {
			t.Errorf("reply %q, want %q", reply, want)
		}
	}
	if r, _ := n.Lookup("c"); r.Update().Location.Raw != "+1+1" {
		t.Fatalf("older IAMAT overwrote the newer one: %s", r.AT)
	}
	_, fwd := n.ClientIAMAT(now, iamat(t, "c", "+3+3", "100.5000000001"))
	if len(fwd) != 2 {
		t.Fatal("a newer IAMAT (by 0.1 ns) must be stored and flooded")
	}
}

func mustTime(t *testing.T, s string) proto.Time {
	tm, err := proto.ParseTime(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestPeerUpdateFloodsToAllButTheSenderAndDropsDuplicates(t *testing.T) {
	n := New("Goloman", []string{"Hands", "Holiday", "Wilkes"})
	u := update(t, "Welsh", "c", "+1+1", "10")
	stored, fwd := n.PeerUpdate("Holiday", u)
	if !stored || fmt.Sprint(fwd) != "[Hands Wilkes]" {
		t.Fatalf("stored=%v forward=%v", stored, fwd)
	}
	if stored, fwd := n.PeerUpdate("Wilkes", u); stored || fwd != nil {
		t.Fatalf("duplicate was stored=%v forwarded=%v", stored, fwd)
	}
	if stored, _ := n.PeerUpdate("Wilkes", update(t, "Welsh", "c", "+1+1", "9")); stored {
		t.Fatal("older peer update was stored")
	}
	if r, _ := n.Lookup("c"); r.AT != u.ATLine() {
		t.Fatalf("record %q", r.AT)
	}
	// The stored AT line names the origin server and its diff, not this server.
	if r, _ := n.Lookup("c"); r.Update().Origin != "Welsh" {
		t.Fatalf("origin lost: %q", r.AT)
	}
}

func TestEqualTimesConvergeOnOneUpdateWhateverTheOrder(t *testing.T) {
	a := update(t, "Goloman", "c", "+1+1", "10")
	b := update(t, "Welsh", "c", "+2+2", "10")
	x := New("Hands", []string{"Goloman", "Wilkes"})
	y := New("Wilkes", []string{"Goloman", "Hands"})
	x.PeerUpdate("Goloman", a)
	x.PeerUpdate("Wilkes", b)
	y.PeerUpdate("Hands", b)
	y.PeerUpdate("Goloman", a)
	rx, _ := x.Lookup("c")
	ry, _ := y.Lookup("c")
	if rx.AT != ry.AT {
		t.Fatalf("diverged: %q vs %q", rx.AT, ry.AT)
	}
}

func update(t *testing.T, origin, client, loc, tm string) proto.Update {
	t.Helper()
	u, err := proto.ParsePeerAT(proto.Fields(nil, fmt.Sprintf("HERD-AT %s +0.000000000 %s %s %s", origin, client, loc, tm)))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSnapshotHoldsEveryClient(t *testing.T) {
	n := New("Welsh", []string{"Holiday"})
	for i := range 100 {
		n.ClientIAMAT(now, iamat(t, fmt.Sprint("c", i), "+1+1", "1"))
	}
	if got := len(n.SnapshotSince(0)); got != 100 || n.Len() != 100 {
		t.Fatalf("snapshot %d, len %d", got, n.Len())
	}
}

// A snapshot since a mark holds what was stored after it, and nothing before: the newer
// record of a client replaced before the mark, clients stored from peers, and new ones.
func TestSnapshotSinceHoldsWhatWasStoredAfterTheMark(t *testing.T) {
	n := New("Hands", []string{"Goloman", "Wilkes"})
	for i := range 10 {
		n.ClientIAMAT(now, iamat(t, fmt.Sprint("c", i), "+1+1", "1"))
	}
	mark := n.Seq()
	if mark != 10 || len(n.SnapshotSince(mark)) != 0 {
		t.Fatalf("seq %d, %d records after it", mark, len(n.SnapshotSince(mark)))
	}
	n.ClientIAMAT(now, iamat(t, "c3", "+2+2", "2"))                 // newer: stored again
	n.ClientIAMAT(now, iamat(t, "c4", "+2+2", "1"))                 // not newer: not stored
	n.PeerUpdate("Goloman", update(t, "Goloman", "p", "+1+1", "5")) // from a peer
	n.ClientIAMAT(now, iamat(t, "new", "+1+1", "1"))
	var got []string
	for _, r := range n.SnapshotSince(mark) {
		got = append(got, r.Update().Client)
	}
	slices.Sort(got)
	if fmt.Sprint(got) != "[c3 new p]" {
		t.Fatalf("since the mark: %v", got)
	}
}

// The default herd's links (docs/PROTOCOL.md).
var fiveLinks = map[string][]string{
	"Goloman": {"Hands", "Holiday", "Wilkes"},
	"Hands":   {"Goloman", "Wilkes"},
	"Holiday": {"Goloman", "Welsh", "Wilkes"},
	"Welsh":   {"Holiday"},
	"Wilkes":  {"Goloman", "Hands", "Holiday"},
}

type msg struct {
	from, to string
	u        proto.Update
}

// TestFloodingReachesEveryServerWithAtMost2EMinusNPlus1Messages simulates the five-server
// herd in memory, delivering peer messages in a random (seeded) order, with clients
// sending IAMATs at random servers, and checks convergence, no echo loops (the flood
// ends) and the message count per update.
func TestFloodingReachesEveryServerWithAtMost2EMinusNPlus1Messages(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	nodes := map[string]*Node{}
	var names []string
	for _, name := range []string{"Goloman", "Hands", "Holiday", "Welsh", "Wilkes"} {
		nodes[name] = New(name, fiveLinks[name])
		names = append(names, name)
	}
	var queue []msg
	sent := 0
	const updates = 200
	for i := range updates {
		at := names[rng.IntN(len(names))]
		client := fmt.Sprint("client", rng.IntN(20))
		reply, fwd := nodes[at].ClientIAMAT(now, iamat(t, client, "+1+1", fmt.Sprint(i)))
		u, _ := proto.ParsePeerAT(proto.Fields(nil, "HERD-"+reply))
		for _, to := range fwd {
			queue = append(queue, msg{at, to, u})
		}
		// Deliver a random number of queued messages, in random order.
		for k := rng.IntN(len(queue) + 1); k > 0; k-- {
			j := rng.IntN(len(queue))
			m := queue[j]
			queue = append(queue[:j], queue[j+1:]...)
			sent++
			_, fwd := nodes[m.to].PeerUpdate(m.from, m.u)
			for _, to := range fwd {
				queue = append(queue, msg{m.to, to, m.u})
			}
		}
	}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 1_000_000 {
			t.Fatal("flood does not end: echo loop")
		}
		m := queue[0]
		queue = queue[1:]
		sent++
		_, fwd := nodes[m.to].PeerUpdate(m.from, m.u)
		for _, to := range fwd {
			queue = append(queue, msg{m.to, to, m.u})
		}
	}
	for c := range 20 {
		client := fmt.Sprint("client", c)
		want, _ := nodes["Goloman"].Lookup(client)
		for _, name := range names {
			got, _ := nodes[name].Lookup(client)
			if got.AT != want.AT {
				t.Fatalf("%s holds %q for %s, Goloman %q", name, got.AT, client, want.AT)
			}
		}
	}
	if limit := updates * (2*6 - 5 + 1); sent > limit {
		t.Fatalf("%d peer messages for %d updates; at most %d allowed", sent, updates, limit)
	}
}
