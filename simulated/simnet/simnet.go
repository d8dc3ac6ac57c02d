// Package simnet is an in-memory TCP network for one process: listeners by address,
// connections with TCP's semantics (ordered bytes, half-close, a bounded buffer each way
// that blocks the writer, deadlines, refused dials, resets), a latency and a bandwidth
// per direction, and hosts that can be frozen (a paused process) or torn down (a killed
// one).
//
// The latency and bandwidth matter most in simulated time: bytes become readable only
// when they have crossed, so a herd that floods without end keeps waiting on the network
// and the clock moves on, as it would on a real one, instead of a busy herd freezing it.
//
// Every wait is on a sync.Cond and every deadline a time.AfterFunc, so inside a
// testing/synctest bubble a goroutine blocked on this network is durably blocked and the
// bubble's fake clock moves on: a herd on simnet runs in simulated time (see package
// simulated). Outside a bubble it works the same in real time.
package simnet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// BufferBytes is what each direction of a connection holds before its writer blocks,
// about a loopback socket's send and receive buffers together.
const BufferBytes = 256 << 10

// The defaults of a new Network: a LAN's latency, and a bandwidth low enough that a
// flood storm moves simulated time at a cost in CPU a test can pay.
const (
	DefaultLatency   = 50 * time.Microsecond
	DefaultBandwidth = 32 << 20 // bytes per second, each direction of each connection
)

// Network is one in-memory network. The zero value is not usable: call New.
type Network struct {
	// Latency and Bandwidth apply to connections dialled after they are set.
	Latency   time.Duration
	Bandwidth int64

	mu        sync.Mutex
	listeners map[string]*Listener
	nextPort  int
}

// New returns an empty network with the default latency and bandwidth.
func New() *Network {
	return &Network{Latency: DefaultLatency, Bandwidth: DefaultBandwidth, listeners: map[string]*Listener{}, nextPort: 40000}
}

// Host is one incarnation of a machine's process on the network: what it listens on and
// dials is torn down with it (Down), and frozen with it (Freeze).
type Host struct {
	net  *Network
	name string

	mu        sync.Mutex
	down      bool
	frozen    bool
	thawed    *sync.Cond // broadcast on Thaw and Down
	conns     map[*Conn]struct{}
	listeners map[*Listener]struct{}
}

// Host returns a new host called name (a name may have several incarnations over time).
func (n *Network) Host(name string) *Host {
	h := &Host{net: n, name: name, conns: map[*Conn]struct{}{}, listeners: map[*Listener]struct{}{}}
	h.thawed = sync.NewCond(&h.mu)
	return h
}

// Name is the host's name.
func (h *Host) Name() string { return h.name }

// Freeze stops the host as SIGSTOP stops a process: its accepts, reads and writes wait
// (their deadlines with them) until Thaw. Dials to it still connect, as a kernel accepts
// into the backlog of a stopped process.
func (h *Host) Freeze() {
	h.mu.Lock()
	h.frozen = true
	h.mu.Unlock()
}

// Thaw lets a frozen host go on.
func (h *Host) Thaw() {
	h.mu.Lock()
	h.frozen = false
	conns := h.connList()
	h.thawed.Broadcast()
	h.mu.Unlock()
	for _, c := range conns {
		c.wake()
	}
}

// waitThawed waits while the host is frozen; false if it is down.
func (h *Host) waitThawed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.frozen && !h.down {
		h.thawed.Wait()
	}
	return !h.down
}

func (h *Host) isFrozen() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.frozen
}

func (h *Host) connList() []*Conn {
	out := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		out = append(out, c)
	}
	return out
}

// Down tears the host down as the kernel does when a process dies: its listeners close,
// and each of its connections closes (a reset when it had unread data).
func (h *Host) Down() {
	h.mu.Lock()
	if h.down {
		h.mu.Unlock()
		return
	}
	h.down, h.frozen = true, false
	conns := h.connList()
	lns := make([]*Listener, 0, len(h.listeners))
	for l := range h.listeners {
		lns = append(lns, l)
	}
	h.thawed.Broadcast()
	h.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	for _, c := range conns {
		c.Close()
	}
}

func (h *Host) track(c *Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return false
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *Host) untrack(c *Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

// Listen listens on addr ("host:port", any string unique on the network).
func (h *Host) Listen(addr string) (*Listener, error) {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &Listener{host: h, addr: tcp, key: addr}
	l.cond = sync.NewCond(&l.mu)
	h.mu.Lock()
	if h.down {
		h.mu.Unlock()
		return nil, fmt.Errorf("listen %s: host %s is down", addr, h.name)
	}
	h.listeners[l] = struct{}{}
	h.mu.Unlock()
	n := h.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.listeners[addr] != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: tcp, Err: syscall.EADDRINUSE}
	}
	n.listeners[addr] = l
	return l, nil
}

// Dial connects to the listener at addr, or fails at once as a refused TCP dial does.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !h.waitThawed() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: net.ErrClosed}
	}
	n := h.net
	n.mu.Lock()
	l := n.listeners[addr]
	n.nextPort++
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n.nextPort}
	n.mu.Unlock()
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: fakeAddr(addr), Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if l == nil {
		return nil, refused
	}
	a2b, b2a := newPipe(n.Latency, n.Bandwidth), newPipe(n.Latency, n.Bandwidth)
	client := &Conn{host: h, local: local, remote: l.addr, in: b2a, out: a2b}
	server := &Conn{host: l.host, local: l.addr, remote: local, in: a2b, out: b2a}
	client.peer, server.peer = server, client
	if !h.track(client) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: net.ErrClosed}
	}
	if !l.host.track(server) || !l.enqueue(server) {
		h.untrack(client)
		return nil, refused
	}
	return client, nil
}

// DialContext is Dial with net.Dialer's signature (for http.Transport).
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, fmt.Errorf("simnet: network %q: only tcp", network)
	}
	return h.Dial(ctx, addr)
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// Listener is a listening socket.
type Listener struct {
	host *Host
	addr *net.TCPAddr
	key  string

	mu      sync.Mutex
	cond    *sync.Cond
	backlog []*Conn
	closed  bool
}

func (l *Listener) enqueue(c *Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.backlog = append(l.backlog, c)
	l.cond.Broadcast()
	return true
}

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		if !l.host.waitThawed() {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
		}
		l.mu.Lock()
		for len(l.backlog) == 0 && !l.closed {
			l.cond.Wait()
		}
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
		}
		if l.host.isFrozen() { // frozen while it waited: leave the connection in the backlog
			l.mu.Unlock()
			continue
		}
		c := l.backlog[0]
		l.backlog = l.backlog[1:]
		l.mu.Unlock()
		return c, nil
	}
}

// Close stops listening; connections not yet accepted are reset.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	pending := l.backlog
	l.backlog = nil
	l.cond.Broadcast()
	l.mu.Unlock()
	n := l.host.net
	n.mu.Lock()
	if n.listeners[l.key] == l {
		delete(n.listeners, l.key)
	}
	n.mu.Unlock()
	l.host.mu.Lock()
	delete(l.host.listeners, l)
	l.host.mu.Unlock()
	for _, c := range pending {
		c.Reset()
	}
	return nil
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.addr }

// pipe is one direction of a connection.
type pipe struct {
	latency   time.Duration
	bandwidth int64

	mu         sync.Mutex
	cond       *sync.Cond
	chunks     []chunk   // written, not yet read, in order
	buffered   int       // their bytes
	sent       time.Time // when the last byte written has left (the bandwidth's queue)
	wake       *time.Timer
	eof        bool // the writer closed (FIN): the reader gets io.EOF once chunks are read
	readerGone bool // the reader closed: writes fail
	reset      bool // the connection was reset: both sides fail at once
}

// chunk is one write: readable from at, when it has crossed.
type chunk struct {
	at time.Time
	b  []byte
}

func newPipe(latency time.Duration, bandwidth int64) *pipe {
	p := &pipe{latency: latency, bandwidth: bandwidth}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// push queues b, readable once it has been sent at the bandwidth and crossed the latency.
func (p *pipe) push(b []byte) {
	now := time.Now()
	start := p.sent
	if start.Before(now) {
		start = now
	}
	if p.bandwidth > 0 {
		start = start.Add(time.Duration(int64(len(b)) * int64(time.Second) / p.bandwidth))
	}
	p.sent = start
	p.chunks = append(p.chunks, chunk{at: start.Add(p.latency), b: bytes.Clone(b)})
	p.buffered += len(b)
}

// readable is whether the first chunk has crossed; if not, a timer wakes the reader
// when it will have.
func (p *pipe) readable() bool {
	if len(p.chunks) == 0 {
		return false
	}
	d := time.Until(p.chunks[0].at)
	if d <= 0 {
		return true
	}
	if p.wake == nil {
		p.wake = time.AfterFunc(d, func() {
			p.mu.Lock()
			p.wake = nil
			p.cond.Broadcast()
			p.mu.Unlock()
		})
	}
	return false
}

// pop reads into b from the first chunks.
func (p *pipe) pop(b []byte) int {
	n := 0
	now := time.Now()
	for n < len(b) && len(p.chunks) > 0 && !p.chunks[0].at.After(now) {
		k := copy(b[n:], p.chunks[0].b)
		n += k
		if k == len(p.chunks[0].b) {
			p.chunks[0] = chunk{}
			p.chunks = p.chunks[1:]
		} else {
			p.chunks[0].b = p.chunks[0].b[k:]
		}
	}
	if len(p.chunks) == 0 {
		p.chunks = nil
	}
	p.buffered -= n
	return n
}

func (p *pipe) discard() {
	p.chunks, p.buffered = nil, 0
}

func (p *pipe) broadcast() {
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Conn is one end of a connection.
type Conn struct {
	host          *Host
	local, remote net.Addr
	in, out       *pipe
	peer          *Conn

	dmu           sync.Mutex
	readDeadline  time.Time
	writeDeadline time.Time
	readTimer     *time.Timer
	writeTimer    *time.Timer

	cmu    sync.Mutex
	closed bool
}

var (
	errReset = os.NewSyscallError("read", syscall.ECONNRESET)
	errPipe  = os.NewSyscallError("write", syscall.EPIPE)
)

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

func (c *Conn) isClosed() bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.closed
}

func (c *Conn) deadline(read bool) time.Time {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if read {
		return c.readDeadline
	}
	return c.writeDeadline
}

// expired reports whether the deadline has passed (never while the host is frozen: a
// stopped process's timers fire when it runs again).
func (c *Conn) expired(read bool) bool {
	dl := c.deadline(read)
	return !dl.IsZero() && !time.Now().Before(dl) && !c.host.isFrozen()
}

// Read reads what the other end wrote, in order.
func (c *Conn) Read(b []byte) (int, error) {
	p := c.in
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case c.isClosed():
			return 0, c.opErr("read", net.ErrClosed)
		case p.reset:
			return 0, c.opErr("read", errReset)
		case c.expired(true):
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		case c.host.isFrozen():
		case p.readable():
			if len(b) == 0 {
				return 0, nil
			}
			n := p.pop(b)
			p.cond.Broadcast() // room for the writer
			return n, nil
		case len(p.chunks) > 0: // in flight: readable() set a timer
		case p.eof:
			return 0, io.EOF
		}
		p.cond.Wait()
	}
}

// Write writes b, waiting while the buffer toward the other end is full.
func (c *Conn) Write(b []byte) (int, error) {
	p := c.out
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for {
		switch {
		case c.isClosed():
			return n, c.opErr("write", net.ErrClosed)
		case p.reset:
			return n, c.opErr("write", errReset)
		case p.eof:
			return n, c.opErr("write", errPipe)
		case p.readerGone:
			return n, c.opErr("write", errPipe)
		case c.expired(false):
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		case c.host.isFrozen():
		case n == len(b):
			return n, nil
		case p.buffered < BufferBytes:
			k := min(len(b)-n, BufferBytes-p.buffered)
			p.push(b[n : n+k])
			n += k
			p.cond.Broadcast()
			continue
		}
		p.cond.Wait()
	}
}

// CloseWrite half-closes: the other end reads io.EOF after what was written.
func (c *Conn) CloseWrite() error {
	if c.isClosed() {
		return c.opErr("close", net.ErrClosed)
	}
	c.out.mu.Lock()
	c.out.eof = true
	c.out.cond.Broadcast()
	c.out.mu.Unlock()
	return nil
}

// Close closes both directions: the other end reads what was written then io.EOF, and
// its writes fail. With unread data in, it resets instead, as TCP does.
func (c *Conn) Close() error {
	c.cmu.Lock()
	if c.closed {
		c.cmu.Unlock()
		return nil
	}
	c.closed = true
	c.cmu.Unlock()
	c.in.mu.Lock()
	unread := c.in.buffered > 0
	c.in.mu.Unlock()
	if unread {
		c.resetPipes()
	} else {
		c.out.mu.Lock()
		c.out.eof = true
		c.out.cond.Broadcast()
		c.out.mu.Unlock()
		c.in.mu.Lock()
		c.in.readerGone = true
		c.in.discard()
		c.in.cond.Broadcast()
		c.in.mu.Unlock()
	}
	c.stopTimers()
	c.host.untrack(c)
	return nil
}

// Reset closes abortively (SO_LINGER 0): both ends fail at once, unread data lost.
func (c *Conn) Reset() {
	c.cmu.Lock()
	c.closed = true
	c.cmu.Unlock()
	c.resetPipes()
	c.stopTimers()
	c.host.untrack(c)
}

func (c *Conn) resetPipes() {
	for _, p := range []*pipe{c.in, c.out} {
		p.mu.Lock()
		p.reset = true
		p.discard()
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// wake makes waiting reads and writes look again (a deadline passed, the host thawed).
func (c *Conn) wake() {
	c.in.broadcast()
	c.out.broadcast()
}

func (c *Conn) stopTimers() {
	c.dmu.Lock()
	for _, t := range []*time.Timer{c.readTimer, c.writeTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.dmu.Unlock()
}

// LocalAddr is this end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the other end's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets when a waiting Read gives up.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.setDeadline(true, t) }

// SetWriteDeadline sets when a waiting Write gives up.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.setDeadline(false, t) }

func (c *Conn) setDeadline(read bool, t time.Time) error {
	c.dmu.Lock()
	timer := &c.writeTimer
	if read {
		c.readDeadline, timer = t, &c.readTimer
	} else {
		c.writeDeadline = t
	}
	if *timer != nil {
		(*timer).Stop()
		*timer = nil
	}
	if d := time.Until(t); !t.IsZero() && d > 0 {
		*timer = time.AfterFunc(d, c.wake) // a waiter sees the deadline pass
	}
	c.dmu.Unlock()
	c.wake() // a waiter re-reads the deadline (it may be past already)
	return nil
}

// Closed reports whether this end was closed or reset.
func (c *Conn) Closed() bool { return c.isClosed() }
