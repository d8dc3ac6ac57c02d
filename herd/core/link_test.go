package core

import (
	"fmt"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/proto"
)

// linkNode is a node A with one neighbour B, its link to B up as a fresh connection
// (a welcome without a mark) at now.
func linkNode(t *testing.T, queueLen int) *Node {
	t.Helper()
	n := NewNode(Config{Self: "A", Neighbours: []string{"B"}, Herd: []string{"A", "B"}, Instance: "inst", QueueLen: queueLen, DeadAfter: time.Second})
	if err := n.LinkUp("B", proto.Welcome{Server: "B"}, now); err != nil {
		t.Fatal(err)
	}
	return n
}

func store(t *testing.T, n *Node, clients ...string) {
	t.Helper()
	for _, c := range clients {
		n.ClientIAMAT(now, iamat(t, c, "+1+1", "1"))
	}
}

// drain takes and advances until the link has nothing to write; it returns the AT lines
// written.
func drain(n *Node, peer string) (ats []string) {
	var b Batch
	for {
		n.Take(peer, &b)
		if b.Empty() {
			return ats
		}
		for _, r := range b.Resync {
			ats = append(ats, r.AT)
		}
		for _, q := range b.Updates {
			ats = append(ats, q.AT)
		}
		n.Advance(peer, &b)
	}
}

func TestALinkThatComesUpResyncsThenStreams(t *testing.T) {
	n := NewNode(Config{Self: "A", Neighbours: []string{"B"}, Instance: "inst"})
	store(t, n, "x", "y") // while the link is down: nothing queued
	if st := n.LinkState("B"); st != Down {
		t.Fatalf("state %v, want down", st)
	}
	var b Batch
	if n.Take("B", &b); !b.Empty() {
		t.Fatal("a link that is down has something to write")
	}
	n.LinkUp("B", proto.Welcome{Server: "B"}, now)
	if st := n.LinkState("B"); st != Resyncing {
		t.Fatalf("state %v, want resyncing", st)
	}
	if got := drain(n, "B"); len(got) != 2 {
		t.Fatalf("the resync wrote %q, want both records", got)
	}
	if st, m := n.LinkState("B"), n.Mark("B"); st != Streaming || m != 2 {
		t.Fatalf("after the resync: %v, mark %d; want streaming, 2", st, m)
	}
	store(t, n, "z")
	if got := drain(n, "B"); len(got) != 1 || n.Mark("B") != 3 {
		t.Fatalf("streamed %q, mark %d; want one update, mark 3", got, n.Mark("B"))
	}
	if p, _, dead := n.Tick("B", now); dead || p.Mark != (proto.Mark{Instance: "inst", Seq: 3}) || p.N != 1 {
		t.Fatalf("ping %+v, dead %v", p, dead)
	}
}

// The welcome's mark decides what a reconnecting link sends: the records after it when
// it is this run's, everything when it is another run's.
func TestALinkResyncsFromTheMarkOfThisRunOnly(t *testing.T) {
	for _, c := range []struct {
		mark proto.Mark
		want int
	}{
		{proto.Mark{Instance: "inst", Seq: 3}, 2},
		{proto.Mark{Instance: "inst", Seq: 0}, 5},
		{proto.Mark{Instance: "other", Seq: 3}, 5},
		{proto.Mark{}, 5},
	} {
		n := NewNode(Config{Self: "A", Neighbours: []string{"B"}, Instance: "inst"})
		store(t, n, "a", "b", "c", "d", "e")
		n.LinkUp("B", proto.Welcome{Server: "B", Mark: c.mark}, now)
		if got := drain(n, "B"); len(got) != c.want {
			t.Errorf("welcome mark %+v: resync of %d records, want %d", c.mark, len(got), c.want)
		}
		if m := n.Mark("B"); m != 5 {
			t.Errorf("welcome mark %+v: mark %d after the resync, want 5", c.mark, m)
		}
	}
}

// TestAStalledPeerCostsBoundedMemoryAndGetsAResyncInstead fills a link's queue past its
// bound while nothing drains it (as when the peer reads nothing), and checks the queue
// never grows past the bound and is replaced by a resync.
func TestAStalledPeerCostsBoundedMemoryAndGetsAResyncInstead(t *testing.T) {
	n := linkNode(t, 8)
	drain(n, "B") // the (empty) resync of the link coming up
	for i := range 100 {
		store(t, n, fmt.Sprint("q", i))
		if q := len(n.links["B"].queue); q > 8 {
			t.Fatalf("queue holds %d updates, over its bound of 8", q)
		}
	}
	if st := n.LinkState("B"); st != Overflowed {
		t.Fatalf("state %v, want overflowed", st)
	}
	var b Batch
	n.Take("B", &b)
	if b.Overflows != 1 || b.ResyncsStarted != 1 || len(b.Resync) != ResyncChunk || len(b.Updates) != 0 {
		t.Fatalf("after an overflow the link must resync: %d overflows, %d resyncs, %d records, %d updates", b.Overflows, b.ResyncsStarted, len(b.Resync), len(b.Updates))
	}
	n.Advance("B", &b)
	if got := drain(n, "B"); len(got) != 100-ResyncChunk || n.Mark("B") != 100 {
		t.Fatalf("rest of the resync: %d records, mark %d", len(got), n.Mark("B"))
	}
	// After the resync the queue works again, and reuses the array of a batch sent.
	store(t, n, "new1")
	n.Take("B", &b)
	if len(b.Updates) != 1 || b.Updates[0].Seq != 101 || n.LinkState("B") != Streaming {
		t.Fatalf("queue did not recover: %+v", b)
	}
	first := &b.Updates[:1][0]
	n.Advance("B", &b)
	store(t, n, "new2") // queued in the array the queue had; the batch's is next
	n.Take("B", &b)
	n.Advance("B", &b)
	store(t, n, "new3")
	n.Take("B", &b)
	if len(b.Updates) != 1 || &b.Updates[:1][0] != first {
		t.Fatalf("the sent batch's array was not reused: %+v", b)
	}
}

// An overflow during a resync lets the resync finish, does not move the mark past what
// was dropped, and runs another resync from the same mark.
func TestAnOverflowDuringAResyncResyncsAgain(t *testing.T) {
	n := NewNode(Config{Self: "A", Neighbours: []string{"B"}, Instance: "inst", QueueLen: 2})
	for i := range ResyncChunk + 1 {
		store(t, n, fmt.Sprint("r", i))
	}
	n.LinkUp("B", proto.Welcome{Server: "B"}, now)
	var b Batch
	n.Take("B", &b) // the first chunk
	n.Advance("B", &b)
	store(t, n, "o1", "o2", "o3") // the queue overflows
	if st := n.LinkState("B"); st != Overflowed {
		t.Fatalf("state %v, want overflowed", st)
	}
	n.Take("B", &b) // the last record of the first resync
	if len(b.Resync) != 1 || b.Overflows != 1 {
		t.Fatalf("%+v", b)
	}
	n.Advance("B", &b)
	n.Take("B", &b) // the first resync is done; a second begins from mark 0
	if b.ResyncsStarted != 1 || n.Mark("B") != 0 {
		t.Fatalf("second resync: %d started, mark %d", b.ResyncsStarted, n.Mark("B"))
	}
	n.Advance("B", &b)
	drain(n, "B")
	if m := n.Mark("B"); m != ResyncChunk+4 {
		t.Fatalf("mark %d after the second resync, want %d", m, ResyncChunk+4)
	}
}

func TestALinkSilentForDeadAfterIsDead(t *testing.T) {
	n := linkNode(t, 0)
	if _, _, dead := n.Tick("B", now.Add(time.Second)); dead {
		t.Fatal("dead after exactly DeadAfter")
	}
	n.Heard("B", now.Add(900*time.Millisecond))
	if _, _, dead := n.Tick("B", now.Add(1800*time.Millisecond)); dead {
		t.Fatal("dead though heard 900 ms ago")
	}
	if _, silent, dead := n.Tick("B", now.Add(2*time.Second)); !dead || silent != 1100*time.Millisecond {
		t.Fatalf("silent %v, dead %v; want 1.1s, dead", silent, dead)
	}
	n.LinkDown("B")
	if n.LinkState("B") != Down {
		t.Fatal("not down")
	}
	store(t, n, "x")
	if q := len(n.links["B"].queue); q != 0 {
		t.Fatalf("a link that is down queued %d", q)
	}
}

func TestTheWelcomeHandsBackTheLastMarkHeld(t *testing.T) {
	n := NewNode(Config{Self: "B", Neighbours: []string{"A"}})
	if w, err := n.Admit("A", false, time.Time{}, now); err != nil || w != (proto.Welcome{Server: "B"}) {
		t.Fatalf("welcome before any ping: %+v, %v", w, err)
	}
	n.PeerPing("A", proto.Ping{N: 4, Mark: proto.Mark{Instance: "inst", Seq: 17}})
	if p := n.Pong("A"); p.N != 4 {
		t.Fatalf("pong %+v", p)
	}
	if w, err := n.Admit("A", false, time.Time{}, now); err != nil || w.Mark != (proto.Mark{Instance: "inst", Seq: 17}) {
		t.Fatalf("welcome %+v, %v", w, err)
	}
	if p := n.Pong("A"); p.N != 0 {
		t.Fatalf("a new connection's pong %+v, want 0", p)
	}
	if _, err := n.Admit("Mallory", true, time.Time{}, now); err == nil {
		t.Fatal("a server that is no neighbour was admitted")
	}
}

// Without a secret a connection claiming a neighbour whose link is live (heard within
// three heartbeats, at most DeadAfter) is refused; with one, or once the link is quiet,
// it is admitted.
func TestALiveLinkIsReplacedOnlyByAProvenConnection(t *testing.T) {
	n := NewNode(Config{Self: "B", Neighbours: []string{"A"}, Heartbeat: 100 * time.Millisecond, DeadAfter: time.Second})
	heard := now.Add(-299 * time.Millisecond)
	if _, err := n.Admit("A", false, heard, now); err != ErrLinkLive {
		t.Fatalf("unproven, link heard 299 ms ago: %v, want ErrLinkLive", err)
	}
	if _, err := n.Admit("A", true, heard, now); err != nil {
		t.Fatalf("proven: %v", err)
	}
	if _, err := n.Admit("A", false, now.Add(-300*time.Millisecond), now); err != nil {
		t.Fatalf("unproven, link quiet for three heartbeats: %v", err)
	}
	if err := n.CheckHello(proto.Hello{From: "A", To: "B"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []proto.Hello{{From: "A", To: "C"}, {From: "C", To: "B"}, {From: "B", To: "B"}} {
		if n.CheckHello(h) == nil {
			t.Errorf("hello %+v accepted", h)
		}
	}
}

func TestUpdatesFromOutsideTheHerdAreRefused(t *testing.T) {
	n := linkNode(t, 0)
	if err := n.CheckOrigin(proto.Update{Origin: "B"}); err != nil {
		t.Fatal(err)
	}
	if err := n.CheckOrigin(proto.Update{Origin: "Mallory"}); err == nil {
		t.Fatal("an origin outside the herd was accepted")
	}
	if err := n.LinkUp("Mallory", proto.Welcome{}, now); err == nil {
		t.Fatal("a link up to a server that is no neighbour was accepted")
	}
}
