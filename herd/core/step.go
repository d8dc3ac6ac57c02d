package core

import (
	"errors"
	"time"

	"github.com/herdchaos/herd/herd/proto"
)

// Step: every input of a node as a value, and what to do as data, in the style of
// etcd-io/raft. The runtime's loop is lock, Step, Take what is ready, unlock, carry the
// output out (reply, wake the links named, write, close). Each input is also a method of
// Node of the same name (Step calls it); the queries (Take, Lookup, SnapshotSince,
// LinkState, Mark, HeldMark, CheckHello, CheckOrigin, ReadLine) stay methods.

// Input is one input of a node: one of ClientIAMAT, PeerUpdate, LinkUp, LinkDown,
// Written, Heard, Tick, Admit, PeerPing and ListenerTick.
type Input interface{ input() }

// ClientIAMAT is an IAMAT a client sent, received at Now.
type ClientIAMAT struct {
	Now   time.Time
	IAMAT proto.IAMAT
}

// PeerUpdate is an update neighbour From sent on the link it dials to this node.
type PeerUpdate struct {
	From   string
	Update proto.Update
}

// LinkUp is the link this node dials to Peer coming up at Now, with the neighbour's
// Welcome.
type LinkUp struct {
	Peer    string
	Welcome proto.Welcome
	Now     time.Time
}

// LinkDown is the link this node dials to Peer going down.
type LinkDown struct {
	Peer string
}

// Written is Batch, from Take, written on the link to Peer.
type Written struct {
	Peer  string
	Batch *Batch
}

// Heard is a pong from Peer (verified, with a secret) on the link this node dials to it,
// at Now.
type Heard struct {
	Peer string
	Now  time.Time
}

// Tick is the heartbeat of the link this node dials to Peer, at Now.
type Tick struct {
	Peer string
	Now  time.Time
}

// Admit is a new connection from neighbour From whose handshake passed at Now: Proven
// when it proved the secret, LastHeard when the neighbour's current accepted connection
// last brought a line (zero: there is none).
type Admit struct {
	From           string
	Proven         bool
	LastHeard, Now time.Time
}

// PeerPing is a ping from neighbour From (verified, with a secret).
type PeerPing struct {
	From string
	Ping proto.Ping
}

// ListenerTick is the heartbeat of the link neighbour From dials to this node: the pong
// to send.
type ListenerTick struct {
	From string
}

func (ClientIAMAT) input()  {}
func (PeerUpdate) input()   {}
func (LinkUp) input()       {}
func (LinkDown) input()     {}
func (Written) input()      {}
func (Heard) input()        {}
func (Tick) input()         {}
func (Admit) input()        {}
func (PeerPing) input()     {}
func (ListenerTick) input() {}

// Output is what the runtime does after a Step: the fields the input's kind fills.
type Output struct {
	// Reply is the AT line to answer a ClientIAMAT with (without newline).
	Reply string
	// Stored: the ClientIAMAT or PeerUpdate was newer than what the node held; it is
	// stored and queued on the links to the neighbours in Wake.
	Stored bool
	// Wake names the links that have new updates to Take. It aliases the node's state:
	// read it, do not keep or change it.
	Wake []string
	// More: after Written, the link has more to write at once (a resync is in progress),
	// without waiting for new updates.
	More bool
	// Ping is the ping a Tick sends (N is 0 when it sends none).
	Ping proto.Ping
	// Close: after a Tick, the link is dead (its neighbour silent for Silent, more than
	// DeadAfter): the runtime closes it (and then steps LinkDown).
	Close  bool
	Silent time.Duration
	// Welcome is the welcome that answers an Admit.
	Welcome proto.Welcome
	// Pong is the pong a ListenerTick sends.
	Pong proto.Pong
}

// ErrInput is a nil Input.
var ErrInput = errors.New("core: no input")

// Step applies one input and returns what to do. An error is an input the node refuses:
// a link operation on a server that is no neighbour, a welcome from another server than
// the one dialled (LinkUp), a connection not admitted (Admit).
func (n *Node) Step(in Input) (Output, error) {
	var out Output
	switch in := in.(type) {
	case ClientIAMAT:
		out.Reply, out.Wake = n.ClientIAMAT(in.Now, in.IAMAT)
		out.Stored = out.Wake != nil
	case PeerUpdate:
		out.Stored, out.Wake = n.PeerUpdate(in.From, in.Update)
	case LinkUp:
		return out, n.LinkUp(in.Peer, in.Welcome, in.Now)
	case LinkDown:
		n.LinkDown(in.Peer)
	case Written:
		out.More = n.Advance(in.Peer, in.Batch)
	case Heard:
		n.Heard(in.Peer, in.Now)
	case Tick:
		out.Ping, out.Silent, out.Close = n.Tick(in.Peer, in.Now)
	case Admit:
		w, err := n.Admit(in.From, in.Proven, in.LastHeard, in.Now)
		out.Welcome = w
		return out, err
	case PeerPing:
		n.PeerPing(in.From, in.Ping)
	case ListenerTick:
		out.Pong = n.Pong(in.From)
	default:
		return out, ErrInput // nil: every other Input is one of the cases
	}
	return out, nil
}
