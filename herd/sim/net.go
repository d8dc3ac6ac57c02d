package sim

import (
	"container/heap"
	"time"
)

// event is something that happens at a simulated time. Events at the same time happen in
// the order they were scheduled (seq), so a run depends on nothing but its seed.
type event struct {
	at   time.Duration
	seq  uint64
	node *node // the server it happens at (nil: the network or the harness)
	// epoch of node when scheduled: an event for a server that crashed since is dropped.
	epoch int
	fn    func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// at schedules fn at n (nil: no server) after d.
func (s *Sim) at(d time.Duration, n *node, fn func()) {
	s.seq++
	e := &event{at: s.now + d, seq: s.seq, node: n, fn: fn}
	if n != nil {
		e.epoch = n.epoch
	}
	heap.Push(&s.events, e)
}

// step runs the next event; false when there is none before until.
func (s *Sim) step(until time.Duration) bool {
	if len(s.events) == 0 || s.events[0].at > until {
		return false
	}
	e := heap.Pop(&s.events).(*event)
	s.now = e.at
	s.steps++
	if n := e.node; n != nil {
		if e.epoch != n.epoch || !n.up {
			return true // it crashed since
		}
		if n.paused {
			n.deferred = append(n.deferred, e) // a paused process's inputs queue
			return true
		}
	}
	e.fn()
	return true
}

// linkFaults is what the network does to the connections one server dials to another.
type linkFaults struct {
	cut, blackhole  int // reference counts: faults compose
	latency, jitter time.Duration
}

// conn is a simulated TCP connection that dialler d opened to listener l: two ordered
// streams of lines. Each direction delivers in order, after the link's latency, until
// the connection is reset or closed; a black hole swallows lines (and the connection is
// then broken for good: a stream that lost bytes cannot go on).
type conn struct {
	id       int
	d, l     *node
	link     *linkFaults
	dir      [2]stream // 0: dialler to listener, 1: listener to dialler
	closed   bool      // reset or closed: nothing more is delivered
	poisoned bool      // a black hole swallowed bytes of it
	// the handlers of lines (forged: put there by a man in the middle, not the sender)
	// and of the end, at each side
	onLine [2]func(line string, forged bool)
	onEnd  [2]func(reason string)
}

type stream struct {
	last   time.Duration // when the last line sent arrives (the order is kept)
	unread int           // bytes sent and not yet read
	// blocked is the writer waiting for unread to drop (a full window).
	blocked func()
}

// send puts line on direction dir of c; false when c is closed.
func (s *Sim) send(c *conn, dir int, line string) bool { return s.transmit(c, dir, line, false) }

// transmit is send, of a line the sender wrote or (forged) a man in the middle put there.
func (s *Sim) transmit(c *conn, dir int, line string, forged bool) bool {
	if c.closed {
		return false
	}
	s.sentLines++
	s.mix(uint64(c.id)<<1|uint64(dir), line)
	if c.link.blackhole > 0 || c.poisoned {
		c.poisoned = true
		return true // vanished
	}
	st := &c.dir[dir]
	arrive := s.now + c.link.latency
	if c.link.jitter > 0 {
		arrive += time.Duration(s.rng.Int64N(int64(c.link.jitter) + 1))
	}
	arrive = max(arrive, st.last)
	st.last = arrive
	size := len(line) + 1
	st.unread += size
	to, from := c.l, c.d
	if dir == 1 {
		to, from = c.d, c.l
	}
	s.at(arrive-s.now, to, func() {
		if c.closed {
			return
		}
		st.unread -= size
		if st.blocked != nil {
			w := st.blocked
			st.blocked = nil
			s.at(0, from, w) // the writer's write returns
		}
		if h := c.onLine[dir]; h != nil {
			h(line, forged)
		}
	})
	return true
}

// close ends c from side (0 dialler, 1 listener): the other side sees the end after the
// lines in flight to it (a FIN), unless a black hole swallows it.
func (s *Sim) close(c *conn, side int, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	s.trace("conn %d %s->%s closed by %s: %s", c.id, c.d.name, c.l.name, [2]string{"dialler", "listener"}[side], reason)
	other := 1 - side
	if c.link.blackhole > 0 || c.poisoned {
		return // the FIN vanishes too: the other side finds out by liveness
	}
	to := c.l
	if other == 1 {
		to = c.d
	}
	dir := side // the direction toward the other side
	arrive := max(s.now+c.link.latency, c.dir[dir].last)
	if h := c.onEnd[other]; h != nil {
		s.at(arrive-s.now, to, func() { h("EOF") })
	}
}

// reset ends c at once at both sides (an RST).
func (s *Sim) reset(c *conn, reason string) {
	if c.closed {
		return
	}
	c.closed = true
	s.trace("conn %d %s->%s reset: %s", c.id, c.d.name, c.l.name, reason)
	for side, n := range [2]*node{c.d, c.l} {
		if h := c.onEnd[side]; h != nil {
			s.at(0, n, func() { h("reset: " + reason) })
		}
	}
}
