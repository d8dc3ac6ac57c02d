// Package server is a herd server's runtime: the client listener, the peer links (dial,
// handshake, MAC, backoff, buffers), the wire log and metrics. Every protocol decision
// (newer-wins, flooding, each link's queue, marks, resyncs and liveness, admission, which
// peer lines each end of a link accepts, whether a welcome is the dialled server's) is
// herd/core's: the server steps a core.Node with each input and the real clock under its
// lock, takes what is ready, unlocks and writes. HERD-MAC (authenticating a link's bytes,
// holding back lines until their MAC verifies) is I/O, and stays here (peer.go).
package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdchaos/herd/herd/core"
	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/proto"
	"github.com/herdchaos/herd/herd/topology"
)

// Options configure one server. Zero values take the defaults below.
type Options struct {
	Name   string
	Config topology.Config // the whole herd; Name picks this server
	Places places.Source
	// PlacesTimeout bounds a WHATSAT's upstream request (default 2s).
	PlacesTimeout time.Duration
	LogDir        string // one file, NAME.log; "" logs nowhere
	Secret        []byte // peers must prove it (HMAC) when set
	Logger        *slog.Logger

	// MaxLineBytes bounds a client's line, terminator included (default 64 KiB). Peer
	// lines may be longer (see PeerLineLimit): the HERD-AT line of a client's IAMAT
	// repeats its time's digits in the diff. Every server of a herd must use the same.
	MaxLineBytes int
	MaxConns     int // client connections; default 10000 (peers have slots of their own)
	// IdleTimeout closes a client connection that sends nothing for this long (default
	// 5 minutes; measured loosely, from the later of its last line and its first seconds).
	IdleTimeout time.Duration
	Heartbeat   time.Duration // default 200ms
	DeadAfter   time.Duration // a link silent this long is dropped; default 1.5s
	BackoffMin  time.Duration // default 50ms
	BackoffMax  time.Duration // default 1s
	QueueLen    int           // per-peer send queue; default 65536 updates

	// Listen and Dial open the server's sockets: its metrics listener (Serve's own
	// listener too) and its links to neighbours. nil is this machine's network; the sim
	// backend gives an in-memory network's.
	Listen func(addr string) (net.Listener, error)
	Dial   func(ctx context.Context, addr string) (net.Conn, error)
}

// PeerLineLimit is the longest peer line a server accepts when clients' lines are at most
// maxLine bytes and no server name is longer than maxName: the HERD-AT line made from an
// IAMAT of maxLine bytes, whose diff has as many integer digits as the client's time plus
// one (and at least eleven), fits with room to spare. Worked out: the IAMAT's client,
// location and time take at most maxLine-9 bytes; the diff takes at most len(time)+22;
// "HERD-AT", the origin, five separators and "\n" add maxName+13.
func PeerLineLimit(maxLine, maxName int) int { return 2*maxLine + maxName + 64 }

func (o *Options) defaults() {
	if o.PlacesTimeout <= 0 {
		o.PlacesTimeout = 2 * time.Second
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 64 << 10
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10000
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 200 * time.Millisecond
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 1500 * time.Millisecond
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 50 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = time.Second
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 65536
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Places == nil {
		o.Places = places.Local{}
	}
	if o.Listen == nil {
		// No keep-alive on accept: most client connections carry one command and close,
		// and setting it up is four system calls. handle turns it on for a connection
		// that stays.
		lc := net.ListenConfig{KeepAlive: -1}
		o.Listen = func(addr string) (net.Listener, error) { return lc.Listen(context.Background(), "tcp", addr) }
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
}

// Server is one running herd server.
type Server struct {
	opts Options
	name string
	self topology.Server
	log  *slog.Logger
	wire *wireLog

	mu   sync.Mutex // guards node
	node *core.Node

	links    map[string]*link // the links this server dials, by neighbour; fixed at New
	instance string           // a random id of this run, in the marks it sends (see peer.go)
	inMu     sync.Mutex
	inbound  map[string]*inbound // the newest accepted connection of each neighbour

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
	nextID atomic.Int64

	idleWorkers atomic.Int64  // connection goroutines waiting for another connection
	slots       chan struct{} // one per open client connection (MaxConns)
	peerSlots   chan struct{} // for neighbours when slots are full: two per neighbour

	peerMaxLine int // the longest peer line accepted (PeerLineLimit)
	// idleHook, when set (by tests), sees the capacity of the buffers a client
	// connection keeps each time it waits for the network.
	idleHook func(lineCap, fieldsCap int)

	metrics metrics
	ready   chan struct{}
	addr    net.Addr
}

// New checks the options and opens the log file.
func New(opts Options) (*Server, error) {
	opts.defaults()
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	self := opts.Config.Server(opts.Name)
	if self == nil {
		return nil, fmt.Errorf("unknown server %q (the herd has %s)", opts.Name, strings.Join(opts.Config.Names(), ", "))
	}
	wire, err := openWireLog(opts.LogDir, opts.Name)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		name:      opts.Name,
		self:      *self,
		log:       opts.Logger.With("server", opts.Name),
		wire:      wire,
		links:     map[string]*link{},
		inbound:   map[string]*inbound{},
		conns:     map[net.Conn]struct{}{},
		instance:  nonce()[:16],
		slots:     make(chan struct{}, opts.MaxConns),
		peerSlots: make(chan struct{}, 2*len(self.Peers)),
		ready:     make(chan struct{}),
	}
	for _, peer := range self.Neighbours() {
		s.links[peer] = newLink(s, peer, self.Peers[peer])
	}
	s.node = core.NewNode(core.Config{
		Self: opts.Name, Neighbours: self.Neighbours(), Herd: opts.Config.Names(),
		Instance: s.instance, QueueLen: opts.QueueLen, DeadAfter: opts.DeadAfter, Heartbeat: opts.Heartbeat,
	})
	longest := 0
	for _, n := range opts.Config.Names() {
		longest = max(longest, len(n))
	}
	s.peerMaxLine = PeerLineLimit(opts.MaxLineBytes, longest)
	return s, nil
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on (valid after Ready).
func (s *Server) Addr() net.Addr { return s.addr }

// Serve listens and serves until ctx is done, then closes every connection and the log.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := s.opts.Listen(s.self.Listen)
	if err != nil {
		s.wire.close()
		return fmt.Errorf("listen: %w", err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	s.addr = ln.Addr()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var metricsSrv *http.Server
	if s.self.Metrics != "" {
		mln, err := s.opts.Listen(s.self.Metrics)
		if err != nil {
			ln.Close()
			s.wire.close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			s.writeMetrics(w)
		})
		mux.HandleFunc("/clients", s.serveClients)
		// Profiles of the running server, beside its metrics: go tool pprof http://ADDR/debug/pprof/profile
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() { metricsSrv.Serve(mln) })
	}
	for _, l := range s.links {
		wg.Go(func() { l.run(ctx) })
	}
	wg.Go(func() { s.flushLog(ctx) })
	s.log.Info("serving", "listen", ln.Addr().String(), "neighbours", s.node.Neighbours())
	close(s.ready)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	idle := make(chan accepted) // handed to a worker that waits for one
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Error("accept", "err", err)
			break
		}
		// A client slot, or when they are all taken one of the slots kept for
		// neighbours, which only a connection that opens with a peer handshake keeps:
		// clients holding every slot cannot keep a restarted neighbour from linking.
		a := accepted{conn: conn, slot: s.slots}
		select {
		case s.slots <- struct{}{}:
		default:
			select {
			case s.peerSlots <- struct{}{}:
				a.slot = s.peerSlots
			default:
				s.metrics.connsRejected.Add(1)
				s.wire.add(logEvent, "-", "connection from "+conn.RemoteAddr().String()+" refused: over the connection limit")
				conn.Close()
				continue
			}
		}
		s.track(conn, true)
		select {
		case idle <- a: // a worker that finished a connection takes it
		default:
			wg.Go(func() { s.worker(ctx, a, idle) })
		}
	}
	close(idle)
	cancel()
	s.connMu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.connMu.Unlock()
	if metricsSrv != nil {
		metricsSrv.Close()
	}
	wg.Wait()
	s.log.Info("stopped")
	return s.wire.close()
}

// serveClients writes the AT line held for each client, one per line (herdctl status
// shows them). A client id may hold any byte but white space: a line with a byte that is
// not printable ASCII (or that starts with '"') is written quoted, escaped as Go quotes
// strings, so no terminal control sequence or invalid UTF-8 goes out unescaped.
func (s *Server) serveClients(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b []byte
	for _, rec := range s.snapshot() {
		b = b[:0]
		if printableASCII(rec.AT) && !strings.HasPrefix(rec.AT, `"`) {
			b = append(b, rec.AT...)
		} else {
			b = strconv.AppendQuoteToASCII(b, rec.AT)
		}
		w.Write(append(b, '\n'))
	}
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// logFlushEvery bounds how long a logged line waits for the kernel when nothing is sent
// after it (an update heard and not flooded on, a duplicate): whatever is sent is logged
// first, in the same write.
const logFlushEvery = 10 * time.Millisecond

// flushLog hands the log's pending entries to the kernel every logFlushEvery.
func (s *Server) flushLog(ctx context.Context) {
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.wire.sync()
		}
	}
}

// worker serves conn, then waits for another connection until idle closes, unless
// maxIdleWorkers already wait. Reusing goroutines keeps their grown stacks: a fresh
// goroutine per one-shot connection grew its stack, by copying, every time.
func (s *Server) worker(ctx context.Context, a accepted, idle <-chan accepted) {
	for {
		s.handle(ctx, a.conn, a.slot == s.peerSlots)
		s.track(a.conn, false)
		<-a.slot
		if s.idleWorkers.Add(1) > maxIdleWorkers {
			s.idleWorkers.Add(-1)
			return
		}
		var ok bool
		a, ok = <-idle
		s.idleWorkers.Add(-1)
		if !ok {
			return
		}
	}
}

// accepted is a connection and the slot it holds (s.slots or s.peerSlots).
type accepted struct {
	conn net.Conn
	slot chan struct{}
}

// maxIdleWorkers bounds the goroutines kept waiting for connections after a burst.
const maxIdleWorkers = 256

func (s *Server) track(c net.Conn, open bool) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if open {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

var errLineTooLong = errors.New("line too long")

// lineBuffered reports whether a whole line is already in r's buffer, so that reading it
// will not wait for the network.
func lineBuffered(r *bufio.Reader) bool {
	b, _ := r.Peek(r.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine reads one line with its terminator; at EOF it returns what is left (a final
// command without "\n") with io.EOF. A line over max bytes returns its first max bytes
// and errLineTooLong.
func readLine(r *bufio.Reader, max int, buf []byte) ([]byte, error) {
	return appendLine(r, max, buf[:0])
}

// appendLine is readLine appending the line to buf (max bounds the line, not buf).
func appendLine(r *bufio.Reader, max int, buf []byte) ([]byte, error) {
	start := len(buf)
	for {
		chunk, err := r.ReadSlice('\n')
		if n := len(buf) - start; n+len(chunk) > max {
			return append(buf, chunk[:max-n]...), errLineTooLong
		}
		buf = append(buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return buf, err
	}
}

// handle serves one connection: a client's, or a neighbour's if its first line is a peer
// handshake. A connection on a slot kept for peers (peerSlot) must be a neighbour's.
func (s *Server) handle(ctx context.Context, conn net.Conn, peerSlot bool) {
	defer conn.Close()
	s.metrics.clientConns.Add(1)
	isClient := true
	defer func() {
		if isClient {
			s.metrics.clientConns.Add(-1)
		}
	}()
	id := "c" + strconv.FormatInt(s.nextID.Add(1), 10)
	bufs := s.getBuffers(conn)
	r, w := bufs.r, bufs.w
	pooled := true
	defer func() {
		bufs.mu.Lock()
		bufs.conn = nil // a timer firing late leaves the next connection alone
		bufs.mu.Unlock()
		if pooled {
			putBuffers(bufs)
		}
	}()
	var buf []byte
	var scratch []string
	// The replies to the lines of one read, written in one write once no whole line is
	// left (see flush); taken from replyPool for the batch only, so that a connection
	// waiting for the network holds none.
	var out *[]byte
	flush := func() error {
		if out == nil {
			return nil
		}
		var err error
		if len(*out) > 0 {
			_, err = bufs.out.Write(*out) // the log is synced first (loggedWriter)
		}
		putReplies(out)
		out = nil
		return err
	}
	queue := func(b string) {
		if out == nil {
			out = replyPool.Get().(*[]byte)
		}
		*out = append(*out, b...)
	}
	defer flush() // a break, below, leaves replies to send
	first := true
	idleTimeout := s.opts.IdleTimeout
	if peerSlot {
		// Only a neighbour may keep this slot: its handshake must come at once.
		conn.SetReadDeadline(time.Now().Add(s.opts.DeadAfter))
	}
	// A connection that stays gets TCP keep-alive, to find a client that vanished, and
	// from then on a read deadline of IdleTimeout (a one-shot connection costs neither).
	t := time.AfterFunc(min(keepAliveAfter, idleTimeout), func() { bufs.stays(conn, idleTimeout) })
	defer t.Stop()
	var now time.Time
	buffered := false // a whole line is in r's buffer
	for {
		if !buffered && !now.IsZero() && bufs.stayed.Load() {
			conn.SetReadDeadline(now.Add(idleTimeout)) // idle from its last line
		}
		raw, err := readLine(r, s.opts.MaxLineBytes, buf)
		buf = raw
		if err != nil && err != io.EOF && err != errLineTooLong {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				what := "closing: idle for " + idleTimeout.String()
				if peerSlot && first {
					what = "closing: no peer handshake on a slot kept for peers"
				}
				s.wire.add(logEvent, id, what)
			}
			break
		}
		if len(raw) == 0 && err != nil {
			break
		}
		if !buffered || now.IsZero() {
			// The line needed a read: it was received now. Lines that came whole in
			// the same read share its time.
			now = time.Now()
		}
		line := proto.TrimLine(string(raw))
		if errors.Is(err, errLineTooLong) {
			s.metrics.linesTooLong.Add(1)
			s.wire.add(logIn, id, line)
			reply := proto.FormatInvalid(line)
			s.wire.add(logOut, id, reply)
			s.wire.add(logEvent, id, "closing: line over "+strconv.Itoa(s.opts.MaxLineBytes)+" bytes")
			s.wire.sync()
			queue(reply)
			return
		}
		if first && strings.HasPrefix(line, proto.PeerHello) {
			pooled = false // the link's goroutines may still hold them when handle returns
			bufs.mu.Lock()
			bufs.peer = true // its deadlines are the link's
			bufs.mu.Unlock()
			isClient = false
			s.metrics.clientConns.Add(-1)
			if s.servePeer(ctx, conn, r, w, id, line) {
				return
			}
			isClient = true // not a valid handshake: a client's line after all
			s.metrics.clientConns.Add(1)
			bufs.mu.Lock()
			bufs.peer = false
			bufs.mu.Unlock()
		}
		if peerSlot {
			s.wire.add(logIn, id, line)
			s.wire.add(logEvent, id, "closing: over the connection limit (a slot kept for peers, and no peer handshake)")
			s.wire.sync()
			return
		}
		first = false
		s.wire.addAt(now, logIn, id, "", line)
		var reply string
		reply, scratch = s.command(ctx, now, line, scratch)
		if reply != "" {
			s.wire.addAt(now, logOut, id, "", strings.TrimSuffix(reply, "\n"))
			queue(reply)
		}
		// Replies wait while whole lines wait in r, so a pipelined batch leaves in one
		// write (and one sync of the log); once no whole line is left (a partial one may
		// be), they go. Many big replies go before the batch ends, past maxReplies.
		buffered = err == nil && lineBuffered(r)
		if !buffered || out != nil && len(*out) >= maxReplies {
			if flush() != nil {
				return
			}
		}
		if !buffered {
			// The connection waits for the network, maybe for long: a big line's
			// buffers go, so thousands of idle connections keep only small ones.
			if cap(buf) > keepLineBuf {
				buf = nil
			}
			if cap(scratch) > keepFields {
				scratch = nil
			}
			if s.idleHook != nil {
				s.idleHook(cap(buf), cap(scratch))
			}
		}
		if err != nil {
			return
		}
	}
	s.wire.sync() // the replies go in the deferred flush
}

// The largest line buffer and fields slice a client connection keeps while it waits.
const (
	keepLineBuf = 4096
	keepFields  = 64
)

// maxReplies is how many bytes of replies a client connection gathers before it writes
// them even within a batch; replyPool keeps buffers up to that size.
const maxReplies = 64 << 10

var replyPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func putReplies(b *[]byte) {
	if cap(*b) > maxReplies {
		return // grown by a huge reply: let it go
	}
	*b = (*b)[:0]
	replyPool.Put(b)
}

// keepAliveAfter is how long a client connection lasts before it gets TCP keep-alive.
const keepAliveAfter = 5 * time.Second

// Client connections' buffers are reused: one-shot clients open thousands of
// connections a second, and two fresh 4 KiB buffers each were a tenth of the CPU.
var connBufsPool = sync.Pool{New: func() any {
	b := &connBufs{r: bufio.NewReaderSize(nil, 4096)}
	b.w = bufio.NewWriterSize(&b.out, 4096)
	return b
}}

// connBufs are a client connection's buffers. Replies (gathered per batch, see handle)
// and its writer (a neighbour's link) write through out, which syncs the log before
// every write to the connection: whatever is sent (a batch of replies, or a full buffer
// making room), every line in it was logged first.
type connBufs struct {
	r   *bufio.Reader
	w   *bufio.Writer
	out loggedWriter

	stayed atomic.Bool // the connection outlived its timer: it has an idle deadline
	mu     sync.Mutex  // guards conn and peer against the timer
	conn   net.Conn    // the connection served, nil once done
	peer   bool        // the connection is a neighbour's: the link sets its deadlines
}

// stays runs once a connection has lasted min(keepAliveAfter, idle): TCP keep-alive on,
// and a read deadline of idle, unless it became a neighbour's link or ended.
func (b *connBufs) stays(conn net.Conn, idle time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != conn || b.peer {
		return
	}
	b.stayed.Store(true)
	conn.SetReadDeadline(time.Now().Add(idle))
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 9})
	}
}

// loggedWriter syncs the log, then writes to conn, within idle: a client that sends and
// never reads its replies would otherwise hold its connection and slot for ever.
type loggedWriter struct {
	conn net.Conn
	log  *wireLog
	idle time.Duration
}

func (lw *loggedWriter) Write(b []byte) (int, error) {
	lw.log.sync()
	lw.conn.SetWriteDeadline(time.Now().Add(lw.idle))
	return lw.conn.Write(b)
}

func (s *Server) getBuffers(conn net.Conn) *connBufs {
	b := connBufsPool.Get().(*connBufs)
	b.r.Reset(conn)
	b.out = loggedWriter{conn: conn, log: s.wire, idle: s.opts.IdleTimeout}
	b.mu.Lock() // a late timer of the last connection may be looking
	b.conn, b.peer = conn, false
	b.mu.Unlock()
	b.stayed.Store(false)
	return b
}

func putBuffers(b *connBufs) {
	b.r.Reset(nil)
	b.w.Reset(&b.out)
	b.out = loggedWriter{}
	connBufsPool.Put(b)
}

// command answers one client line received at now ("" for a blank line).
func (s *Server) command(ctx context.Context, now time.Time, line string, scratch []string) (string, []string) {
	cmd, scratch := proto.ParseCommand(line, scratch)
	switch cmd.Kind {
	case proto.Blank:
		return "", scratch
	case proto.IAmAt:
		s.metrics.iamat.Add(1)
		return s.iamat(now, cmd.IAMAT) + "\n", scratch
	case proto.WhatsAt:
		if reply, ok := s.whatsat(ctx, cmd.WHATSAT); ok {
			s.metrics.whatsat.Add(1)
			return reply, scratch
		}
	}
	s.metrics.invalid.Add(1)
	return proto.FormatInvalid(line), scratch
}

func (s *Server) iamat(now time.Time, c proto.IAMAT) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, _ := s.node.Step(core.ClientIAMAT{Now: now, IAMAT: c})
	if out.Stored {
		s.metrics.iamatStored.Add(1)
		s.wake(out.Wake)
	}
	return out.Reply
}

// wake tells the links to the given neighbours that the node queued an update for them.
func (s *Server) wake(to []string) {
	for _, peer := range to {
		if l := s.links[peer]; l != nil {
			l.wake()
		}
	}
}

// whatsat answers a WHATSAT, or reports false for an unknown client (an invalid command).
func (s *Server) whatsat(ctx context.Context, c proto.WHATSAT) (string, bool) {
	s.mu.Lock()
	rec, ok := s.node.Lookup(c.Client)
	s.mu.Unlock()
	if !ok {
		return "", false
	}
	u := rec.Update()
	ctx, cancel := context.WithTimeout(ctx, s.opts.PlacesTimeout)
	defer cancel()
	out, err := places.Reply(ctx, s.opts.Places, u.Location.PlacesParam(), proto.RadiusMetres(c.RadiusKm), c.Bound)
	if err != nil {
		s.metrics.placesErrors.Add(1)
		s.log.Warn("places", "err", err) // the full error, the upstream's host included
	}
	at := rec.AT
	var b strings.Builder
	b.Grow(len(at) + len(out) + 3)
	b.WriteString(at)
	b.WriteByte('\n')
	b.Write(out)
	b.WriteString("\n\n")
	return b.String(), true
}

// applyPeer handles an update from a neighbour.
func (s *Server) applyPeer(from string, u proto.Update) {
	s.metrics.peerReceived.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	out, _ := s.node.Step(core.PeerUpdate{From: from, Update: u})
	if out.Stored {
		s.metrics.peerStored.Add(1)
		s.wake(out.Wake)
	}
}

// snapshot is every record held.
func (s *Server) snapshot() []*core.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node.SnapshotSince(0)
}

// Lookup returns the AT line held for client (for tests and tools).
func (s *Server) Lookup(client string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.node.Lookup(client)
	return r.AT, ok
}

// PeerUp reports whether the link this server dials to peer is up.
func (s *Server) PeerUp(peer string) bool {
	l := s.links[peer]
	return l != nil && l.isConnected()
}
