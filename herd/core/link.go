package core

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/herdchaos/herd/herd/proto"
)

// Links. A node sends updates to neighbour B only on the connection it dialled to B (one
// per directed link). The runtime owns that connection (dial, handshake, MAC, bytes); the
// node decides everything the protocol says about it, as a state machine per neighbour:
//
//	Down --LinkUp--> Resyncing --(every record sent)--> Streaming
//	Streaming --(queue full)--> Overflowed --Take--> Resyncing
//	any --LinkDown--> Down
//
// What B lacks when the link comes up: every record the node stores gets a sequence
// number (Record.Seq), and each ping carries a mark, "this run's instance and the highest
// sequence number up to which every update due to B was written on this connection". B
// keeps the last mark it got (PeerPing) and hands it back in its welcome (Welcome); the
// node resyncs the records stored after it, or everything when the welcome's instance is
// not this run's (B or this node restarted).
//
// The runtime's loop for a link: lock, Take (what to write), unlock, write, lock,
// Advance (it was written; Step Written), unlock; and Tick every heartbeat for the ping
// to send or the verdict that the link is dead. Time enters only as the now of LinkUp,
// Heard, Tick and Admit.

// LinkState is the progress of the link a node dials to one neighbour.
type LinkState int

const (
	// Down: no connection. Nothing is queued; the resync at the next LinkUp covers it.
	Down LinkState = iota
	// Resyncing: the records the neighbour lacks go out in chunks, with the updates
	// queued meanwhile between them.
	Resyncing
	// Streaming: queued updates go out as they come.
	Streaming
	// Overflowed: the queue overflowed and was dropped; the next Take resyncs from the
	// mark instead.
	Overflowed
)

func (s LinkState) String() string {
	switch s {
	case Down:
		return "down"
	case Resyncing:
		return "resyncing"
	case Streaming:
		return "streaming"
	case Overflowed:
		return "overflowed"
	}
	return "unknown"
}

// ResyncChunk is how many records a resync sends in one Batch before it lets queued
// updates through: over a slow link a long resync must not hold fresh updates back.
const ResyncChunk = 64

// Queued is an update waiting in a link's queue: its AT line and its Seq.
type Queued struct {
	AT  string
	Seq uint64
}

// Batch is what a link writes next, in this order: Resync (records of a resync), then
// Updates (flooded updates). Both alias the node's state until Advance.
type Batch struct {
	Resync  []*Record
	Updates []Queued
	// ResyncsStarted counts the resyncs this Take began (for metrics), Overflows the
	// queue overflows it turned into a resync.
	ResyncsStarted, Overflows int
}

// Empty reports whether the batch has nothing to write.
func (b *Batch) Empty() bool { return len(b.Resync) == 0 && len(b.Updates) == 0 }

// link is the node's side of the link it dials to one neighbour.
type link struct {
	state LinkState
	queue []Queued // the updates to send, in the order of their Seq
	spare []Queued // the last batch sent, emptied, for queue to reuse
	// mark: every update due to the neighbour with a Seq up to it has been written on
	// this connection (the pings carry it).
	mark uint64

	// The resync in progress (recs non-nil): its records, the next to send, the node's
	// newest Seq when it began, the newest Seq of updates taken during it, and whether the
	// queue overflowed during it (another resync follows).
	recs      []*Record
	next      int
	top       uint64
	queuedTop uint64
	again     bool

	pings     uint64    // pings sent on this connection
	lastHeard time.Time // when the neighbour was last heard on it
}

// ErrNotNeighbour is a link operation on a server that is not a neighbour.
var ErrNotNeighbour = errors.New("not a neighbour")

func (n *Node) link(peer string) (*link, error) {
	l := n.links[peer]
	if l == nil {
		return nil, ErrNotNeighbour
	}
	return l, nil
}

// LinkState is the state of the link to peer (Down for a server that is no neighbour).
func (n *Node) LinkState(peer string) LinkState {
	if l := n.links[peer]; l != nil {
		return l.state
	}
	return Down
}

// Mark is the mark of the link to peer: every update due to it with a Seq up to it has
// been written on the link's connection.
func (n *Node) Mark(peer string) uint64 {
	if l := n.links[peer]; l != nil {
		return l.mark
	}
	return 0
}

// LinkUp records that the link to peer came up at now, its neighbour's welcome w. The
// link resyncs from w's mark when the mark is from this run of this node, from the start
// otherwise. A welcome from another server than peer brings nothing up (ErrWelcome; the
// runtime checks it with CheckWelcome as the handshake ends).
func (n *Node) LinkUp(peer string, w proto.Welcome, now time.Time) error {
	l, err := n.link(peer)
	if err != nil {
		return err
	}
	if err := CheckWelcome(peer, w); err != nil {
		return err
	}
	var since uint64
	if w.Mark.Instance == n.instance {
		since = w.Mark.Seq
	}
	*l = link{state: Resyncing, mark: since, lastHeard: now, spare: l.spare}
	return nil
}

// LinkDown records that the link to peer went down: what was queued is dropped (the next
// LinkUp resyncs it).
func (n *Node) LinkDown(peer string) {
	if l := n.links[peer]; l != nil {
		*l = link{state: Down, spare: l.spare}
	}
}

// enqueue queues an update for peer's link. Nothing is queued while the link is down or
// overflowed (the resync covers it); a full queue is dropped for a resync, so a stalled
// neighbour costs bounded memory and never blocks clients or other links.
func (n *Node) enqueue(peer string, r *Record) {
	l := n.links[peer]
	if l == nil || l.state == Down || l.state == Overflowed {
		return
	}
	if len(l.queue) >= n.cfg.QueueLen {
		l.state = Overflowed
		l.queue = nil
		return
	}
	l.queue = append(l.queue, Queued{r.AT, r.Seq})
}

// Take fills b with what the link to peer writes next (b empty: nothing now). b's slices
// are the node's until Advance, which the runtime calls once the batch is written.
func (n *Node) Take(peer string, b *Batch) {
	*b = Batch{}
	l := n.links[peer]
	if l == nil || l.state == Down {
		return
	}
	if l.state == Overflowed {
		b.Overflows++ // enqueue dropped the queue
		l.state = Resyncing
		if l.recs != nil {
			l.again = true // the resync in progress runs on; another follows it
		}
	}
	if l.state == Resyncing {
		for {
			if l.recs == nil {
				// A resync begins: every record stored after the mark.
				b.ResyncsStarted++
				l.recs = n.SnapshotSince(l.mark)
				if n.cfg.Ordered {
					slices.SortFunc(l.recs, func(a, b *Record) int { return cmp.Compare(a.Seq, b.Seq) })
				}
				l.next, l.top, l.queuedTop, l.again = 0, n.seq, l.mark, false
			}
			if l.next < len(l.recs) {
				end := min(l.next+ResyncChunk, len(l.recs))
				b.Resync = l.recs[l.next:end]
				l.next = end
				b.Updates = l.takeQueue()
				if len(b.Updates) > 0 {
					l.queuedTop = max(l.queuedTop, b.Updates[len(b.Updates)-1].Seq)
				}
				return
			}
			// Every record is written. The mark moves only when the queue did not
			// overflow meanwhile; then another resync from the same mark.
			again := l.again
			if !again {
				l.mark = max(l.mark, l.top, l.queuedTop)
			}
			l.recs, l.next = nil, 0
			if !again {
				l.state = Streaming
				break
			}
		}
	}
	b.Updates = l.takeQueue()
}

// takeQueue hands over the queue, which reuses the spare array.
func (l *link) takeQueue() []Queued {
	q := l.queue
	l.queue, l.spare = l.spare, nil
	return q
}

// Advance records that b, from Take, was written on the link to peer: a streamed batch
// moves the mark past its updates (a resync's moves it at the resync's end), and the
// queue reuses the batch's array instead of growing a new one for every batch. A batch
// grown large by a burst is let go, not kept. more says the link has more to write at
// once: a resync is in progress, and it writes on without waiting for new updates.
func (n *Node) Advance(peer string, b *Batch) (more bool) {
	l := n.links[peer]
	if l == nil {
		return false
	}
	// Updates taken with a resync's records move the mark only at the resync's end.
	if len(b.Resync) == 0 && len(b.Updates) > 0 && l.state != Down {
		l.mark = max(l.mark, b.Updates[len(b.Updates)-1].Seq)
	}
	if q := b.Updates; q != nil && cap(q) <= 1<<16 {
		clear(q) // drop the strings it holds
		if l.spare == nil {
			l.spare = q[:0]
		}
	}
	*b = Batch{}
	return l.state == Resyncing
}

// Heard records that the neighbour of the link to peer was heard from at now (a pong,
// verified with a secret).
func (n *Node) Heard(peer string, now time.Time) {
	if l := n.links[peer]; l != nil && l.state != Down {
		l.lastHeard = now
	}
}

// Tick is the link to peer's heartbeat at now: the ping to send, or, when the neighbour
// has been silent for more than DeadAfter, how long it was silent and dead=true (the
// runtime drops the link).
func (n *Node) Tick(peer string, now time.Time) (ping proto.Ping, silent time.Duration, dead bool) {
	l := n.links[peer]
	if l == nil || l.state == Down {
		return proto.Ping{}, 0, false
	}
	if silent := now.Sub(l.lastHeard); silent > n.cfg.DeadAfter {
		return proto.Ping{}, silent, true
	}
	l.pings++
	return proto.Ping{N: l.pings, Mark: proto.Mark{Instance: n.instance, Seq: l.mark}}, 0, false
}

// The listener's side: the last mark each neighbour sent, and the last ping applied.

// inbound is what a node keeps of the link a neighbour dials to it.
type inbound struct {
	mark     proto.Mark // the last mark the neighbour sent (zero: none)
	lastPing uint64     // the last ping applied on the current connection
}

// ErrHello is a hello that is not for this node, or not from a neighbour.
var ErrHello = errors.New("not a hello from a neighbour to this server")

// CheckHello reports whether h opens a neighbour's link to this node; a connection whose
// first line is not such a hello is a client's. It reads only what NewNode set, so it
// may be called without the runtime's lock.
func (n *Node) CheckHello(h proto.Hello) error {
	if h.To != n.self || n.links[h.From] == nil {
		return ErrHello
	}
	return nil
}

// ErrLinkLive refuses a connection claiming a neighbour whose link is live.
var ErrLinkLive = errors.New("is live (without a secret it is not replaced)")

// LiveFor is how recently an accepted link must have heard from its neighbour for a new
// connection claiming that neighbour without the secret to be refused: three heartbeats,
// at most DeadAfter.
func (n *Node) LiveFor() time.Duration { return min(3*n.cfg.Heartbeat, n.cfg.DeadAfter) }

// Admit decides on a new connection from neighbour from whose handshake passed at now
// (proven: it proved the secret). lastHeard is when the neighbour's current accepted
// connection last brought a line (zero: there is none). Without a secret anyone can claim
// any name, so a live link is not replaced (ErrLinkLive): the real neighbour redials only
// after its link went quiet; with one, the newer connection replaces the older. The
// welcome carries the last mark the node holds from the neighbour; the connection's
// pings count anew.
func (n *Node) Admit(from string, proven bool, lastHeard, now time.Time) (proto.Welcome, error) {
	in := n.inbound[from]
	if in == nil {
		return proto.Welcome{}, ErrNotNeighbour
	}
	if !proven && !lastHeard.IsZero() && now.Sub(lastHeard) < n.LiveFor() {
		return proto.Welcome{}, ErrLinkLive
	}
	in.lastPing = 0
	return proto.Welcome{Server: n.self, Mark: in.mark}, nil
}

// PeerPing applies a ping from neighbour from (verified with a secret): its mark is the
// one the next welcome hands back.
func (n *Node) PeerPing(from string, p proto.Ping) {
	if in := n.inbound[from]; in != nil {
		in.mark, in.lastPing = p.Mark, p.N
	}
}

// Pong is the pong for neighbour from's link: the last ping applied.
func (n *Node) Pong(from string) proto.Pong {
	if in := n.inbound[from]; in != nil {
		return proto.Pong{N: in.lastPing}
	}
	return proto.Pong{}
}

// HeldMark is the last mark the node holds from neighbour from.
func (n *Node) HeldMark(from string) proto.Mark {
	if in := n.inbound[from]; in != nil {
		return in.mark
	}
	return proto.Mark{}
}

// ErrOrigin is an update whose origin is not a server of the herd: only a server of the
// herd takes IAMATs, so it is forged, and its sender no peer.
var ErrOrigin = errors.New("origin is not a server of the herd")

// CheckOrigin reports whether u's origin is a server of the herd (every origin is when
// the node was not told the herd). It reads only what NewNode set, so unlike the other
// methods it may be called without the runtime's lock.
func (n *Node) CheckOrigin(u proto.Update) error {
	if n.herd != nil && !n.herd[u.Origin] {
		return ErrOrigin
	}
	return nil
}
