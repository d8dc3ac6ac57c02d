package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/core"
	"github.com/herdchaos/herd/herd/proto"
)

// The runtime's timing, herd/server's defaults.
const (
	Heartbeat  = 200 * time.Millisecond
	DeadAfter  = 1500 * time.Millisecond
	BackoffMin = 50 * time.Millisecond
	BackoffMax = time.Second
)

// base is the simulated wall clock's zero (plus each server's skew).
var base = time.Unix(1795900000, 0)

// node is one server: the real core.Node and what herd/server does around it.
type node struct {
	s      *Sim
	i      int
	name   string
	core   *core.Node
	skew   time.Duration
	epoch  int // a new run of the process: events of an older one are dropped
	up     bool
	paused bool
	// deferred are the events that came while paused, in order.
	deferred []*event
	runs     int
	dialers  map[string]*dialer // the links it dials, by neighbour
	order    []string           // its neighbours, in the core's order
	inbound  map[string]*accepted
	conns    []*conn // every connection it has an end of (closed at a crash)
	// placesSlow counts the slow-Places faults in force: its Places requests time out.
	placesSlow int
}

// now is the server's wall clock: simulated time plus its skew. (Durations are what
// matter to the protocol; the skew shows in the AT lines' diffs.)
func (n *node) now() time.Time { return base.Add(n.s.now + n.skew) }

// start runs the process anew: an empty node, every link dialled.
func (n *node) start() {
	n.epoch++
	n.runs++
	n.up, n.paused, n.deferred = true, false, nil
	n.conns = nil
	n.core = core.NewNode(core.Config{
		Self: n.name, Neighbours: n.order, Herd: n.s.sched.Servers,
		Instance: fmt.Sprintf("%s-%d-%x", n.name, n.runs, n.s.rng.Uint32()),
		QueueLen: n.s.sched.QueueLen, DeadAfter: DeadAfter, Heartbeat: Heartbeat,
		Ordered: true,
	})
	n.inbound = map[string]*accepted{}
	n.dialers = map[string]*dialer{}
	n.s.trace("%s starts (run %d)", n.name, n.runs)
	for _, p := range n.order {
		d := &dialer{n: n, peer: n.s.byName[p], backoff: BackoffMin}
		n.dialers[p] = d
		n.s.at(0, n, d.dial)
	}
}

// crash kills the process: its state is gone, its connections answer RST.
func (n *node) crash() {
	n.s.trace("%s crashes", n.name)
	n.up, n.paused, n.deferred = false, false, nil
	n.epoch++
	for _, c := range n.conns {
		n.s.reset(c, n.name+" crashed")
	}
	n.conns = nil
	n.core = nil
}

func (n *node) pause() {
	n.s.trace("%s paused", n.name)
	n.paused = true
}

func (n *node) resume() {
	if !n.paused {
		return
	}
	n.s.trace("%s resumed with %d queued inputs", n.name, len(n.deferred))
	n.paused = false
	q := n.deferred
	n.deferred = nil
	for _, e := range q {
		n.s.at(0, n, e.fn)
	}
}

// wake tells the links to peers that they have something to write (herd/server's
// l.wake()).
func (n *node) wake(peers []string) {
	for _, p := range peers {
		if d := n.dialers[p]; d != nil {
			d.wake()
		}
	}
}

// proof is what a dialler's HERD-AUTH carries: "-" without the secret; with it, a
// stand-in for the HMAC (the simulator does not compute it: every server of the herd
// knows the secret, and a man in the middle only forges lines, see forge).
func (s *Sim) proof() string {
	if s.sched.Secret {
		return strings.Repeat("5", 64)
	}
	return "-"
}

// dialer is the link a server dials to a neighbour: herd/server's link.run and session.
type dialer struct {
	n       *node
	peer    *node
	backoff time.Duration
	gen     int // the session: timers of an older one do nothing
	c       *conn
	up      bool   // handshake done, LinkUp called
	nonce   string // the hello's
	lastIn  time.Duration
	batch   core.Batch
	writing bool // a batch is being written (a full window blocks it)
	pending bool // woken while writing
}

func (d *dialer) name() string { return d.n.name + "->" + d.peer.name }

// dial opens a connection and says hello.
func (d *dialer) dial() {
	s, n := d.n.s, d.n
	d.gen++
	gen := d.gen
	lf := s.links[[2]int{n.i, d.peer.i}]
	if lf.cut > 0 || !d.peer.up {
		s.trace("%s dial refused", d.name())
		d.failed()
		return
	}
	if lf.blackhole > 0 {
		s.trace("%s dial hangs", d.name())
		s.at(DeadAfter, n, func() {
			if d.gen == gen {
				d.failed()
			}
		})
		return
	}
	s.conns++
	c := &conn{id: s.conns, d: n, l: d.peer, link: lf}
	d.c, d.up, d.writing, d.pending = c, false, false, false
	n.conns = append(n.conns, c)
	c.onLine[1] = d.line
	c.onEnd[0] = func(reason string) {
		if d.gen == gen {
			d.end(reason)
		}
	}
	c.onLine[0] = d.peer.acceptLine(c) // also sets c.onEnd[1]
	d.nonce = fmt.Sprintf("%016x", s.rng.Uint64())
	s.trace("%s conn %d dialled", d.name(), c.id)
	s.send(c, 0, proto.Hello{From: n.name, To: d.peer.name, Nonce: d.nonce}.Format())
	d.lastIn = s.now
	s.at(DeadAfter, n, func() { // the handshake's deadline
		if d.gen == gen && !d.up && !c.closed {
			s.close(c, 0, "handshake timeout")
			d.failed()
		}
	})
}

// failed is a session that never came up: redial after the backoff, doubled.
func (d *dialer) failed() {
	d.gen++
	d.c = nil
	d.redial()
	d.backoff = min(d.backoff*2, BackoffMax)
}

// redial waits a random time in [backoff/2, backoff] (full jitter), then dials.
func (d *dialer) redial() {
	s := d.n.s
	wait := d.backoff/2 + time.Duration(s.rng.Int64N(int64(d.backoff/2)+1))
	gen := d.gen
	s.at(wait, d.n, func() {
		if d.gen == gen {
			d.dial()
		}
	})
}

// end is the end of a session (its connection broke or was dropped).
func (d *dialer) end(reason string) {
	s := d.n.s
	if d.c != nil && !d.c.closed {
		s.close(d.c, 0, reason)
	}
	if d.up {
		s.trace("%s dropped: %s", d.name(), reason)
		d.n.core.LinkDown(d.peer.name)
		d.up = false
		d.backoff = BackoffMin // a session that came up resets the backoff
	}
	d.failed()
}

// line is a line from the listener (nothing forges lines toward a dialler).
func (d *dialer) line(line string, _ bool) {
	s, n := d.n.s, d.n
	d.lastIn = s.now
	f := proto.Fields(nil, line)
	verb := ""
	if len(f) > 0 {
		verb = f[0]
	}
	if !d.up {
		switch verb {
		case proto.PeerChallenge:
			if _, err := proto.ParseChallenge(f); err != nil {
				d.end("bad challenge")
				return
			}
			s.send(d.c, 0, proto.Auth{Proof: d.n.s.proof()}.Format())
		case proto.PeerWelcome:
			w, err := proto.ParseWelcome(f)
			if err != nil {
				d.end("bad welcome")
				return
			}
			d.up = true
			s.trace("%s up (welcome %q)", d.name(), line)
			if err := n.core.LinkUp(d.peer.name, w, n.now()); err != nil {
				s.fail("runtime", "LinkUp %s: %v", d.name(), err)
			}
			d.tick(d.gen)
			d.watch(d.gen)
			d.send()
		default:
			d.end("handshake refused: " + line)
		}
		return
	}
	if verb != proto.PeerPong {
		d.end("unexpected line from listener")
		return
	}
	if _, err := proto.ParsePong(f); err != nil {
		d.end("bad pong")
		return
	}
	n.core.Heard(d.peer.name, n.now())
}

// watch is the reader's deadline: no line from the listener for DeadAfter drops the link.
func (d *dialer) watch(gen int) {
	s := d.n.s
	due := d.lastIn + DeadAfter
	s.at(due-s.now, d.n, func() {
		if d.gen != gen {
			return
		}
		if s.now >= d.lastIn+DeadAfter {
			d.end(fmt.Sprintf("no heartbeat for %v", DeadAfter))
			return
		}
		d.watch(gen)
	})
}

// tick is the link's heartbeat: Tick's ping, or its verdict that the link is dead.
func (d *dialer) tick(gen int) {
	s, n := d.n.s, d.n
	s.at(Heartbeat, n, func() {
		if d.gen != gen {
			return
		}
		if d.writing { // the loop is stuck in a write: the ticker's tick is dropped
			d.tick(gen)
			return
		}
		ping, silent, dead := n.core.Tick(d.peer.name, n.now())
		if dead {
			d.end(fmt.Sprintf("no heartbeat for %v", silent))
			return
		}
		s.send(d.c, 0, ping.Format())
		d.tick(gen)
	})
}

func (d *dialer) wake() {
	if !d.up {
		return
	}
	if d.writing {
		d.pending = true
		return
	}
	if d.pending {
		return
	}
	d.pending = true
	gen := d.gen
	d.n.s.at(0, d.n, func() {
		if d.gen == gen && !d.writing {
			d.pending = false
			d.send()
		}
	})
}

// send is herd/server's stream send: Take, write, Advance; write schedules the next send
// while there is more.
func (d *dialer) send() {
	s, n := d.n.s, d.n
	n.core.Take(d.peer.name, &d.batch)
	b := &d.batch
	s.stats.Resyncs += b.ResyncsStarted
	s.stats.Overflows += b.Overflows
	s.phaseResyncs += b.ResyncsStarted + b.Overflows
	if len(b.Updates) > s.sched.QueueLen {
		s.fail("bounded memory per link", "%s: a batch of %d queued updates, over the queue's bound %d", d.name(), len(b.Updates), s.sched.QueueLen)
	}
	if b.Empty() {
		return
	}
	size := 0
	for _, r := range b.Resync {
		size += len(r.AT) + 6
	}
	for _, q := range b.Updates {
		size += len(q.AT) + 6
	}
	st := &d.c.dir[0]
	if st.unread > 0 && st.unread+size > s.sched.Window {
		// The window is full: the write blocks until the listener reads, at most
		// DeadAfter (herd/server's write deadline).
		d.writing = true
		gen := d.gen
		st.blocked = func() {
			if d.gen == gen {
				d.writing = false
				d.write()
			}
		}
		s.at(DeadAfter, n, func() {
			if d.gen == gen && d.writing {
				st.blocked = nil
				d.end("write timeout")
			}
		})
		return
	}
	d.write()
}

// write writes the batch taken and advances; when the link has more to write, a send
// follows as an event of its own.
func (d *dialer) write() {
	s, n := d.n.s, d.n
	b := &d.batch
	for _, r := range b.Resync {
		s.send(d.c, 0, "HERD-"+r.AT)
		s.peerAT++
	}
	for _, q := range b.Updates {
		s.send(d.c, 0, "HERD-"+q.AT)
		s.peerAT++
	}
	more := n.core.Advance(d.peer.name, b)
	if more || d.pending {
		d.pending = false
		gen := d.gen
		s.at(0, n, func() {
			if d.gen == gen && !d.writing {
				d.send()
			}
		})
	}
}

// accepted is a neighbour's connection that passed the handshake: herd/server's inbound.
type accepted struct {
	c      *conn
	lastIn time.Duration
}

// acceptLine is the listener's side of a new connection c: the handshake, then receive.
func (n *node) acceptLine(c *conn) func(line string, forged bool) {
	s := n.s
	epoch := n.epoch
	var from string
	var in *accepted
	state := 0 // 0: hello, 1: auth, 2: streaming
	drop := func(reason string) {
		if in != nil && n.inbound[from] == in {
			delete(n.inbound, from)
		}
		s.close(c, 1, reason)
	}
	n.conns = append(n.conns, c)
	c.onEnd[1] = func(reason string) { drop(reason) }
	s.at(DeadAfter, n, func() { // the handshake's deadline
		if state < 2 && !c.closed {
			drop("handshake timeout")
		}
	})
	return func(line string, forged bool) {
		if n.epoch != epoch {
			return
		}
		if forged && s.sched.Secret && state == 2 {
			// The line is not in the sender's MAC: the tag that follows does not
			// match, and the link drops before anything since the last match is
			// applied (herd/server's receive; the MAC itself is not simulated).
			s.trace("%s drops %s's link: bad MAC", n.name, from)
			s.stats.ForgedDropped++
			drop("bad MAC")
			return
		}
		f := proto.Fields(nil, line)
		switch state {
		case 0:
			h, err := proto.ParseHello(f)
			if err != nil || n.core.CheckHello(h) != nil {
				s.send(c, 1, proto.FormatInvalid(line)[:len(line)+2])
				drop("not a hello")
				return
			}
			from = h.From
			state = 1
			s.send(c, 1, proto.Challenge{Nonce: fmt.Sprintf("%016x", s.rng.Uint64())}.Format())
		case 1:
			if _, err := proto.ParseAuth(f); err != nil {
				s.send(c, 1, proto.FormatInvalid(line)[:len(line)+2])
				drop("bad auth")
				return
			}
			old := n.inbound[from]
			var lastHeard time.Time
			if old != nil {
				lastHeard = base.Add(old.lastIn + n.skew)
			}
			w, err := n.core.Admit(from, s.sched.Secret, lastHeard, n.now())
			if err != nil {
				s.trace("%s refuses %s: %v", n.name, from, err)
				s.send(c, 1, proto.FormatInvalid(line)[:len(line)+2])
				drop("refused")
				return
			}
			if old != nil {
				s.close(old.c, 1, "replaced by a newer connection")
			}
			in = &accepted{c: c, lastIn: s.now}
			n.inbound[from] = in
			state = 2
			s.send(c, 1, w.Format())
			n.pong(c, in, from)
			n.readDeadline(c, in)
		case 2:
			in.lastIn = s.now
			verb := ""
			if len(f) > 0 {
				verb = f[0]
			}
			switch {
			case len(f) == 4 && verb == proto.PeerPing:
				p, err := proto.ParsePing(f)
				if err == nil {
					n.core.PeerPing(from, p)
				}
			case verb == proto.PeerAT:
				u, err := proto.ParsePeerLine(line, f)
				if err != nil {
					s.fail("runtime", "%s: bad update %q from %s: %v", n.name, line, from, err)
					drop("bad update")
					return
				}
				if err := n.core.CheckOrigin(u); err != nil {
					s.trace("%s drops %s's link: %v", n.name, from, err) // as herd/server does
					s.stats.ForgedDropped++
					drop("bad origin")
					return
				}
				stored, forward := n.core.PeerUpdate(from, u)
				at := line[len("HERD-"):]
				if stored {
					s.stored(n, u.Client, at)
					n.wake(forward)
				} else if r, _ := n.core.Lookup(u.Client); r.AT == "" || newer(at, r.AT) {
					s.fail("newer wins", "%s did not store %q from %s, newer than the %q it holds", n.name, at, from, r.AT)
				}
			default:
				drop("unexpected line")
			}
		}
	}
}

// pong sends the listener's heartbeat every Heartbeat while c lives.
func (n *node) pong(c *conn, in *accepted, from string) {
	s := n.s
	s.at(Heartbeat, n, func() {
		if c.closed || n.inbound[from] != in {
			return
		}
		s.send(c, 1, n.core.Pong(from).Format())
		n.pong(c, in, from)
	})
}

// readDeadline drops an accepted link silent for DeadAfter.
func (n *node) readDeadline(c *conn, in *accepted) {
	s := n.s
	s.at(in.lastIn+DeadAfter-s.now, n, func() {
		if c.closed {
			return
		}
		if s.now >= in.lastIn+DeadAfter {
			c.onEnd[1]("no line for " + DeadAfter.String())
			return
		}
		n.readDeadline(c, in)
	})
}
