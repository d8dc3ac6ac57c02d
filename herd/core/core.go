// Package core is one herd server's whole protocol with no I/O: the newest location per
// client, newer-wins and whom to flood an update to (this file); each peer link's state,
// its queue, marks, resyncs, overflow and liveness, and admission of a neighbour's
// connection (link.go); which peer lines each end of a link accepts and the dialler's
// check of the welcome (lines.go). It has no goroutines, clock or sockets: the runtime
// (herd/server, herd/sim) feeds it every input as a value, time included, through Step
// (step.go; each input is also a method of the same name) and carries out the Output it
// returns. What the runtime keeps is I/O: dialling, accepting, the handshake's proofs and
// the HERD-MAC of a link's bytes (lines held back until their MAC verifies), buffers, the
// wire log and metrics. A Node is not safe for concurrent use; the runtime serialises
// calls (CheckHello, CheckOrigin and ReadLine read only what NewNode set).
package core

import (
	"fmt"
	"slices"
	"time"

	"github.com/herdchaos/herd/herd/proto"
)

// Record is what a server holds for one client: the AT line of the server that first
// received the client's newest IAMAT. Its fields alias one string, to keep a million
// clients small.
type Record struct {
	AT   string     // "AT origin diff client location time"
	Time proto.Time // the client's time, aliasing AT
	Seq  uint64     // when this node stored it: 1, 2, 3... (see SnapshotSince)
}

// Update parses the record back into its fields (it was valid when stored).
func (r Record) Update() proto.Update {
	u, err := proto.ParsePeerAT(proto.Fields(make([]string, 0, 6), "HERD-"+r.AT))
	if err != nil {
		panic(fmt.Sprintf("core: stored record %q does not parse: %v", r.AT, err))
	}
	return u
}

// Config is what a node is made of.
type Config struct {
	Self       string
	Neighbours []string
	// Herd names every server of the herd, the only origins of updates (CheckOrigin); nil
	// accepts any.
	Herd []string
	// Instance is a random id of this run, in the marks the node's pings carry.
	Instance  string
	QueueLen  int           // per-link send queue, in updates; default 65536
	DeadAfter time.Duration // a link whose neighbour is silent this long is dropped; default 1.5s
	Heartbeat time.Duration // how often links ping and pong; default 200ms
	// Ordered makes a resync send its records in the order of their Seq instead of map
	// order (a sort per resync): the simulator (herd/sim) needs runs that do not depend
	// on map iteration order. The server leaves it off.
	Ordered bool
}

// Node is one server's state.
type Node struct {
	cfg        Config
	self       string
	instance   string
	herd       map[string]bool
	links      map[string]*link    // the links this node dials, by neighbour
	inbound    map[string]*inbound // what it keeps of the links its neighbours dial
	neighbours []string
	// allBut[i] is every neighbour but neighbours[i]; precomputed so flooding allocates nothing.
	allBut  map[string][]string
	clients map[string]*Record
	seq     uint64 // the Seq of the newest record stored
}

// New returns an empty node named self with the given neighbours, and the defaults of
// Config.
func New(self string, neighbours []string) *Node {
	return NewNode(Config{Self: self, Neighbours: neighbours})
}

// NewNode returns an empty node as cfg says.
func NewNode(cfg Config) *Node {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 65536
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 1500 * time.Millisecond
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 200 * time.Millisecond
	}
	// Never nil, even for a node without neighbours: ClientIAMAT's forward is non-nil
	// exactly when the IAMAT was stored.
	nb := slices.Clone(cfg.Neighbours)
	if nb == nil {
		nb = []string{}
	}
	n := &Node{
		cfg: cfg, self: cfg.Self, instance: cfg.Instance, neighbours: nb,
		links: map[string]*link{}, inbound: map[string]*inbound{},
		allBut: map[string][]string{}, clients: map[string]*Record{},
	}
	if cfg.Herd != nil {
		n.herd = map[string]bool{}
		for _, s := range cfg.Herd {
			n.herd[s] = true
		}
	}
	for _, x := range nb {
		n.links[x] = &link{}
		n.inbound[x] = &inbound{}
		var rest []string
		for _, y := range nb {
			if y != x {
				rest = append(rest, y)
			}
		}
		n.allBut[x] = rest
	}
	return n
}

// Self is the node's name.
func (n *Node) Self() string { return n.self }

// Neighbours are the servers this node floods to.
func (n *Node) Neighbours() []string { return n.neighbours }

// Len is the number of clients held.
func (n *Node) Len() int { return len(n.clients) }

// ClientIAMAT handles an IAMAT received from a client at now. It returns the AT reply
// (without newline) and the neighbours it flooded to (the update is in their links'
// queues): all of them when the IAMAT is newer than what the node holds, none when it is
// not (it is still answered, docs/PROTOCOL.md): forward is nil exactly when the IAMAT
// was not stored.
func (n *Node) ClientIAMAT(now time.Time, c proto.IAMAT) (reply string, forward []string) {
	reply, forward = n.clientIAMAT(now, c)
	n.flood(forward, c.Client)
	return reply, forward
}

func (n *Node) clientIAMAT(now time.Time, c proto.IAMAT) (reply string, forward []string) {
	at := proto.FormatAT(n.self, proto.FormatDiff(now, c.Time), c.Client, c.Location.Raw, c.Time.Raw)
	if old, ok := n.clients[c.Client]; ok && c.Time.Compare(old.Time) <= 0 {
		return at, nil
	}
	n.store(at)
	return at, n.neighbours
}

// PeerUpdate handles an update from neighbour from. When it is newer than what the node
// holds, the node stores it and floods it to every other neighbour (forward: the update
// is in their links' queues); otherwise it is a duplicate (or stale) and goes nowhere,
// which is what stops echo loops.
//
// Updates with equal client times are ordered by their AT line, so that two servers that
// took different IAMATs with the same time still converge on one of them.
func (n *Node) PeerUpdate(from string, u proto.Update) (stored bool, forward []string) {
	stored, forward = n.peerUpdate(from, u)
	n.flood(forward, u.Client)
	return stored, forward
}

// flood queues client's record on the links to the given neighbours. Records are stored
// and queued in the order of their Seq, which the marks rely on.
func (n *Node) flood(to []string, client string) {
	if len(to) == 0 {
		return
	}
	r := n.clients[client]
	for _, peer := range to {
		n.enqueue(peer, r)
	}
}

func (n *Node) peerUpdate(from string, u proto.Update) (stored bool, forward []string) {
	at := u.ATLine()
	if old, ok := n.clients[u.Client]; ok {
		c := u.Time.Compare(old.Time)
		if c < 0 || (c == 0 && at <= old.AT) {
			return false, nil
		}
	}
	if u.AT != "" {
		// The line as received: client and time already alias it.
		n.seq++
		n.clients[u.Client] = &Record{AT: u.AT, Time: u.Time, Seq: n.seq}
	} else {
		n.store(at)
	}
	if rest, ok := n.allBut[from]; ok {
		return true, rest
	}
	return true, n.neighbours
}

// store keeps at (a valid AT line) as the client's record, with every field aliasing it.
func (n *Node) store(at string) {
	fields := proto.Fields(make([]string, 0, 6), at)
	t, err := proto.ParseTime(fields[5])
	if err != nil {
		panic(fmt.Sprintf("core: storing invalid AT line %q: %v", at, err))
	}
	n.seq++
	n.clients[fields[3]] = &Record{AT: at, Time: t, Seq: n.seq}
}

// Lookup returns the record held for client.
func (n *Node) Lookup(client string) (Record, bool) {
	r, ok := n.clients[client]
	if !ok {
		return Record{}, false
	}
	return *r, true
}

// Seq is the Seq of the newest record stored (0 when none).
func (n *Node) Seq() uint64 { return n.seq }

// SnapshotSince is every record stored after seq, for a resync: after a link comes up
// the dialling side sends what the neighbour lacks (everything it stored after the last
// mark the neighbour holds from it, or its whole state: SnapshotSince(0)), so a restarted
// or cut-off neighbour converges.
func (n *Node) SnapshotSince(seq uint64) []*Record {
	var out []*Record
	if seq == 0 {
		out = make([]*Record, 0, len(n.clients))
	}
	for _, r := range n.clients {
		if r.Seq > seq {
			out = append(out, r)
		}
	}
	return out
}
