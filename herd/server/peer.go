package server

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdchaos/herd/herd/core"
	"github.com/herdchaos/herd/herd/proto"
	"golang.org/x/crypto/poly1305" //nolint:staticcheck // Poly1305-AES: a one-time key per batch, as the package asks
)

// Links between servers. Server A sends updates to neighbour B only on the connection A
// dialled (one connection per directed link, so a one-way cut is real). On that
// connection:
//
//	A: HERD-PEER A B <nonceA>        B: HERD-CHALLENGE <nonceB>
//	A: HERD-AUTH <hmac>              B: HERD-WELCOME B [<instance> <mark>]
//	A: HERD-AT ... (what B lacks, then every update)
//	A: HERD-PING <n> <instance> <mark> every Heartbeat
//	B: HERD-PONG <n> every Heartbeat (the reverse direction carries only liveness)
//
// With a secret, every line after the handshake is authenticated too. Each direction of
// the connection has a key of its own derived from the secret, both names and both nonces
// (linkKey). Its sender cuts what it writes after the handshake (the welcome, for B) into
// batches, and ends each with
//
//	HERD-MAC <hex of the Poly1305 tag of every byte of the batch before this line>
//
// (B right after its welcome, A after each batch of updates and each ping, B after each
// pong, and A also every macEvery bytes within a long batch). Batch i's one-time Poly1305
// key is AES-256 under the link key of (i, 0) and (i, 1) (Poly1305-AES), so a batch
// verifies only in its place: a receiver counts batches too. A receiver applies nothing
// it read (updates, a ping's mark, a pong's liveness) until a HERD-MAC line matches the
// tag of what it read since the last one; a wrong one, or more than a bounded number of
// bytes without one, drops the connection (logged), applying nothing since the last MAC
// that matched. Injected, altered, reordered, replayed or removed lines (or whole
// batches) therefore change or withhold the tag and are never applied. Poly1305-AES costs
// a few nanoseconds a line where a running HMAC-SHA256 cost about a hundred. Without a
// secret no HERD-MAC line is sent and one received drops the link.
//
// Either side drops the connection when it hears nothing for DeadAfter, which catches a
// crashed, paused or black-holed peer; A then redials with capped exponential backoff and
// full jitter. What A sends on a link, and when, is herd/core's decision (core.Node: the
// link's state, queue, marks, resyncs and liveness, see herd/core/link.go), and so is
// what each end accepts (core.ReadLine, core.CheckWelcome, see herd/core/lines.go): this
// file only dials, accepts, proves, authenticates and moves the bytes. A link's sender
// loop is lock, Take what the node has, unlock, write, lock, Step Written, unlock.

func nonce() string {
	b := make([]byte, 16)
	crand.Read(b)
	return hex.EncodeToString(b)
}

// proof is the HMAC that shows the dialler knows the secret, bound to both names and both
// nonces so it cannot be replayed on another link or connection.
func proof(secret []byte, from, to, nonceA, nonceB string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("herd-peer\x00" + from + "\x00" + to + "\x00" + nonceA + "\x00" + nonceB))
	return hex.EncodeToString(m.Sum(nil))
}

// linkKey is the key of one direction of one connection's running MAC: dir names the
// sender ("dialler" for the lines from -> to, "listener" for to -> from). Bound to both
// names and both nonces, so no stream recorded on another link, connection or direction
// verifies on this one.
func linkKey(secret []byte, dir, from, to, nonceA, nonceB string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("herd-link-key\x00" + dir + "\x00" + from + "\x00" + to + "\x00" + nonceA + "\x00" + nonceB))
	return m.Sum(nil)
}

// peerReadBuf is the read buffer of a neighbour's link, at the listener.
const peerReadBuf = 64 << 10

// macEvery is how many bytes a sender writes at most before a HERD-MAC line even within
// a batch (a long resync, a burst of queued updates): its receiver holds no more than this
// and one line unverified, and drops a link that sends more without a HERD-MAC.
const macEvery = 16 << 10

// streamMAC is one direction of a connection's MAC: the Poly1305 tag of the batch being
// written or read, under batch seq's one-time key. A nil *streamMAC (no secret) is never
// used.
type streamMAC struct {
	aes  cipher.Block // keyed by the link key: it makes each batch's one-time key
	seq  uint64       // the batch being fed
	tag  *poly1305.MAC
	n    int    // bytes fed since the last HERD-MAC line
	buf  []byte // a line being fed or built
	text []byte
	sum  [poly1305.TagSize]byte
}

// newStreamMAC is the MAC of one direction (see linkKey), nil without a secret.
func newStreamMAC(secret []byte, dir, from, to, nonceA, nonceB string) *streamMAC {
	if len(secret) == 0 {
		return nil
	}
	block, err := aes.NewCipher(linkKey(secret, dir, from, to, nonceA, nonceB))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	m := &streamMAC{aes: block}
	m.rekey()
	return m
}

// rekey starts batch seq: its one-time key is AES(seq, 0) || AES(seq, 1).
func (m *streamMAC) rekey() {
	var key [32]byte
	binary.BigEndian.PutUint64(key[0:8], m.seq)
	binary.BigEndian.PutUint64(key[16:24], m.seq)
	key[15], key[31] = 0, 1
	m.aes.Encrypt(key[0:16], key[0:16])
	m.aes.Encrypt(key[16:32], key[16:32])
	m.tag = poly1305.New(&key)
	m.n = 0
}

// add feeds bytes as they went on the wire.
func (m *streamMAC) add(b []byte) {
	m.tag.Write(b)
	m.n += len(b)
}

// addLine feeds prefix+line+"\n" (the way a line is written).
func (m *streamMAC) addLine(prefix, line string) {
	m.buf = append(append(append(m.buf[:0], prefix...), line...), '\n')
	m.add(m.buf)
	if cap(m.buf) > 4096 {
		m.buf = nil
	}
}

// hexSum is the hex of the tag of the batch fed so far.
func (m *streamMAC) hexSum() []byte {
	m.text = hex.AppendEncode(m.text[:0], m.tag.Sum(m.sum[:0]))
	return m.text
}

// next is the HERD-MAC line (without "\n") that ends the batch fed so far; the next
// batch begins.
func (m *streamMAC) next() string {
	line := proto.MAC{Tag: string(m.hexSum())}.Format()
	m.seq++
	m.rekey()
	return line
}

// verify checks a HERD-MAC line received (got, its tag field) against the batch fed so
// far and, when it matches, begins the next batch.
func (m *streamMAC) verify(_ []byte, got string) bool {
	if !hmac.Equal([]byte(got), m.hexSum()) {
		return false
	}
	m.seq++
	m.rekey()
	return true
}

// link is the connection this server dials to one neighbour. Its state (queue, marks,
// resyncs, liveness) is the node's (core.Node's link to peer); the link carries it out.
type link struct {
	s      *Server
	peer   string
	addr   string
	notify chan struct{} // the node queued something for the link
}

func newLink(s *Server, peer, addr string) *link {
	return &link{s: s, peer: peer, addr: addr, notify: make(chan struct{}, 1)}
}

func (l *link) isConnected() bool {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	return l.s.node.LinkState(l.peer) != core.Down
}

// wake tells the link's sender that the node queued something for it.
func (l *link) wake() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// run dials the neighbour until ctx is done.
func (l *link) run(ctx context.Context) {
	o := l.s.opts
	backoff := o.BackoffMin
	lastFailure := ""
	for ctx.Err() == nil {
		err := l.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil { // a session that came up resets the backoff
			backoff = o.BackoffMin
			lastFailure = ""
		} else if msg := err.Error(); msg != lastFailure {
			// Logged when the reason changes, so a long outage does not flood the log.
			l.s.wire.add(logEvent, "peer:"+l.peer, "link "+l.s.name+"->"+l.peer+" cannot connect: "+msg+" (retrying with backoff)")
			l.s.wire.sync()
			lastFailure = msg
		}
		// Full jitter: a random wait in [backoff/2, backoff], so restarting herds do
		// not redial in lockstep.
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(backoff*2, o.BackoffMax)
	}
}

// session dials, handshakes and streams until the connection breaks. It returns nil if
// the link came up (and later went down), an error if it never came up.
func (l *link) session(ctx context.Context) error {
	o := l.s.opts
	dctx, cancel := context.WithTimeout(ctx, o.DeadAfter)
	defer cancel()
	conn, err := o.Dial(dctx, l.addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A server that stops closes its links at once, even one stuck in a write.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	r := bufio.NewReaderSize(conn, 4096)
	// Every write must make progress within DeadAfter: a neighbour that reads nothing
	// cannot hold this link's loop (nor the server's stop) in a write.
	w := bufio.NewWriterSize(deadlineWriter{conn, o.DeadAfter}, 32<<10)
	who := "peer:" + l.peer
	welcome, out, in, err := l.handshake(conn, r, w, who)
	if err != nil {
		return fmt.Errorf("handshake with %s: %w", l.addr, err)
	}
	l.s.metrics.peerConnects.Add(1)
	l.s.wire.add(logEvent, who, "link "+l.s.name+"->"+l.peer+" up via "+l.addr)
	l.s.log.Info("peer link up", "peer", l.peer, "addr", l.addr)

	// The link is up: the node resyncs it from the welcome's mark.
	l.s.mu.Lock()
	_, err = l.s.node.Step(core.LinkUp{Peer: l.peer, Welcome: welcome, Now: time.Now()})
	l.s.mu.Unlock()
	if err != nil { // not after CheckWelcome, to a neighbour
		return fmt.Errorf("link up to %s: %w", l.addr, err)
	}
	heard := func() {
		l.s.mu.Lock()
		l.s.node.Step(core.Heard{Peer: l.peer, Now: time.Now()})
		l.s.mu.Unlock()
	}

	// The reader is the watchdog: when no pong comes for DeadAfter its read times out and
	// it closes the connection, which also unblocks a write stuck on a stalled peer (and
	// every write has a deadline of its own besides).
	done := make(chan struct{})
	var readErr atomic.Value
	go func() {
		defer close(done)
		var buf []byte
		var fields []string
		fail := func(err error) {
			readErr.Store(err)
			conn.Close()
		}
		pong := false // a pong read and not yet verified (with a secret)
		for {
			if !lineBuffered(r) {
				conn.SetReadDeadline(time.Now().Add(o.DeadAfter))
			}
			raw, err := readLine(r, 1024, buf)
			buf = raw
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					err = fmt.Errorf("no heartbeat for %v", o.DeadAfter)
				}
				fail(err)
				return
			}
			line := proto.TrimLine(string(raw))
			l.s.wire.add(logIn, who, line)
			fields = proto.Fields(fields[:0], line)
			if in != nil && len(fields) > 0 && fields[0] == proto.PeerMAC {
				m, err := proto.ParseMAC(fields)
				if err != nil || !in.verify(raw, m.Tag) {
					fail(fmt.Errorf("bad %s from listener: the link was tampered with", proto.PeerMAC))
					return
				}
				if pong {
					heard()
					pong = false
				}
				continue
			}
			// What the listener may send is the node's rule: a pong, nothing else.
			if _, err := l.s.node.ReadLine(core.FromListener, line, fields); err != nil {
				fail(err)
				return
			}
			if in == nil {
				heard()
				continue
			}
			in.add(raw)
			pong = true
			if in.n > macEvery {
				fail(fmt.Errorf("%d bytes from listener without a %s", in.n, proto.PeerMAC))
				return
			}
		}
	}()

	lw := &linkWriter{s: l.s, w: deadlineWriter{conn, o.DeadAfter}, who: who, mac: out, buf: make([]byte, 0, linkWriteBuf)}
	reason := l.stream(ctx, lw, done)
	if ctx.Err() != nil {
		reason = "server stopping"
	}
	l.s.mu.Lock()
	l.s.node.LinkDown(l.peer)
	l.s.mu.Unlock()
	conn.Close()
	<-done
	if e, ok := readErr.Load().(error); ok && reason == "" {
		reason = e.Error()
	}
	l.s.metrics.peerDisconnects.Add(1)
	l.s.wire.add(logEvent, who, "link "+l.s.name+"->"+l.peer+" dropped: "+reason)
	l.s.wire.sync()
	l.s.log.Info("peer link dropped", "peer", l.peer, "reason", reason)
	return nil
}

// deadlineWriter gives each write to conn a deadline d from its start.
type deadlineWriter struct {
	conn net.Conn
	d    time.Duration
}

func (w deadlineWriter) Write(b []byte) (int, error) {
	w.conn.SetWriteDeadline(time.Now().Add(w.d))
	return w.conn.Write(b)
}

// handshake proves the dialler and returns the neighbour's welcome (with the mark it
// holds from this server) and, with a secret, the running MACs of the lines to send (out)
// and of those to receive (in), the welcome already in and verified: the listener proves
// the secret too, and the mark it hands back is authentic.
func (l *link) handshake(conn net.Conn, r *bufio.Reader, w *bufio.Writer, who string) (welcome proto.Welcome, out, in *streamMAC, err error) {
	o := l.s.opts
	conn.SetDeadline(time.Now().Add(o.DeadAfter))
	defer conn.SetDeadline(time.Time{})
	na := nonce()
	send := func(line string) error {
		l.s.wire.add(logOut, who, line)
		l.s.wire.sync()
		w.WriteString(line + "\n")
		return w.Flush()
	}
	var raw []byte // the last line expect read, as it came
	// expect reads the next line and parses it with parse (one of proto's peer parsers).
	expect := func(verb string, parse func(fields []string) error) error {
		var err error
		if raw, err = readLine(r, 1024, nil); err != nil {
			return err
		}
		line := proto.TrimLine(string(raw))
		l.s.wire.add(logIn, who, line)
		if parse(proto.Fields(nil, line)) != nil {
			return fmt.Errorf("expected %s, got %q", verb, line)
		}
		return nil
	}
	if err := send(proto.Hello{From: l.s.name, To: l.peer, Nonce: na}.Format()); err != nil {
		return proto.Welcome{}, nil, nil, err
	}
	var ch proto.Challenge
	if err := expect(proto.PeerChallenge, func(f []string) (err error) { ch, err = proto.ParseChallenge(f); return err }); err != nil {
		return proto.Welcome{}, nil, nil, err
	}
	nb := ch.Nonce
	mac := "-"
	if len(o.Secret) > 0 {
		mac = proof(o.Secret, l.s.name, l.peer, na, ch.Nonce)
	}
	if err := send(proto.Auth{Proof: mac}.Format()); err != nil {
		return proto.Welcome{}, nil, nil, err
	}
	if err := expect(proto.PeerWelcome, func(f []string) (err error) { welcome, err = proto.ParseWelcome(f); return err }); err != nil {
		return proto.Welcome{}, nil, nil, err
	}
	if core.CheckWelcome(l.peer, welcome) != nil {
		return proto.Welcome{}, nil, nil, fmt.Errorf("dialled %s at %s but %s answered", l.peer, l.addr, welcome.Server)
	}
	out = newStreamMAC(o.Secret, "dialler", l.s.name, l.peer, na, nb)
	in = newStreamMAC(o.Secret, "listener", l.s.name, l.peer, na, nb)
	if in != nil {
		in.add(raw)
		var m proto.MAC
		if err := expect(proto.PeerMAC, func(f []string) (err error) { m, err = proto.ParseMAC(f); return err }); err != nil {
			return proto.Welcome{}, nil, nil, err
		}
		if !in.verify(raw, m.Tag) {
			return proto.Welcome{}, nil, nil, fmt.Errorf("bad %s after the welcome: the listener does not know the secret, or the link was tampered with", proto.PeerMAC)
		}
	}
	return welcome, out, in, nil
}

// stream writes what the node has for the link (a resync of what the neighbour lacks,
// then queued updates) and its pings, until the link breaks. It returns why it stopped
// ("" when the reader saw it first). Each round: lock, take what the node has, unlock,
// write, then tell the node it was written.
func (l *link) stream(ctx context.Context, w *linkWriter, done <-chan struct{}) string {
	s := l.s
	var b core.Batch
	// send writes what the node has, and more while it has more at once (a resync).
	send := func() error {
		for {
			s.mu.Lock()
			s.node.Take(l.peer, &b)
			s.mu.Unlock()
			s.metrics.resyncs.Add(int64(b.ResyncsStarted))
			s.metrics.queueOverflows.Add(int64(b.Overflows))
			if b.Empty() {
				return nil
			}
			now := time.Now()
			var err error
			for _, rec := range b.Resync {
				if err = w.update(now, rec.AT); err != nil {
					break
				}
			}
			for _, q := range b.Updates {
				if err != nil {
					break
				}
				err = w.update(now, q.AT)
			}
			if err == nil {
				err = w.flush()
			}
			s.metrics.resyncSent.Add(int64(len(b.Resync)))
			s.metrics.peerSent.Add(int64(len(b.Updates)))
			s.mu.Lock()
			out, _ := s.node.Step(core.Written{Peer: l.peer, Batch: &b})
			s.mu.Unlock()
			if err != nil || !out.More {
				return err
			}
		}
	}
	if err := send(); err != nil {
		return "resync: " + err.Error()
	}
	tick := time.NewTicker(s.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "server stopping"
		case <-done:
			return ""
		case <-l.notify:
			if err := send(); err != nil {
				return "send: " + err.Error()
			}
		case now := <-tick.C:
			s.mu.Lock()
			out, _ := s.node.Step(core.Tick{Peer: l.peer, Now: now})
			s.mu.Unlock()
			if out.Close {
				return "no heartbeat for " + out.Silent.Round(time.Millisecond).String()
			}
			w.line(out.Ping.Format())
			if err := w.flush(); err != nil {
				return "ping: " + err.Error()
			}
		}
	}
}

// linkWriter is what a link sends after its handshake. Lines are logged, then gathered
// in buf and written in one write a batch (or past linkWriteBuf bytes), the log synced
// first. With a secret, each batch ends with its HERD-MAC line (and one comes every
// macEvery bytes within a long batch); the MAC is fed the batch's bytes in one piece
// (Poly1305 takes a batch much faster than line by line).
type linkWriter struct {
	s   *Server
	w   io.Writer // the connection, each write with a deadline
	who string
	mac *streamMAC // nil without a secret
	buf []byte     // lines not yet written
	fed int        // the bytes of buf already fed to mac
}

// The most a link's writer gathers before it writes, and keeps for reuse.
const linkWriteBuf = 32 << 10

// update buffers one update's line (logged first, stamped now), "HERD-" + at + "\n".
func (w *linkWriter) update(now time.Time, at string) error {
	w.s.wire.addAt(now, logOut, w.who, "HERD-", at)
	w.buf = proto.AppendPeerAT(w.buf, at)
	return w.added()
}

// line buffers one line (logged first).
func (w *linkWriter) line(line string) error {
	w.s.wire.add(logOut, w.who, line)
	w.buf = append(append(w.buf, line...), '\n')
	return w.added()
}

// added ends the batch with a HERD-MAC past macEvery bytes, and writes past linkWriteBuf.
func (w *linkWriter) added() error {
	if w.mac != nil && w.mac.n+len(w.buf)-w.fed >= macEvery {
		w.seal()
	}
	if len(w.buf) >= linkWriteBuf {
		return w.write()
	}
	return nil
}

// seal ends the batch fed so far (if any) with its HERD-MAC line.
func (w *linkWriter) seal() {
	if w.mac == nil {
		return
	}
	w.mac.add(w.buf[w.fed:])
	w.fed = len(w.buf)
	if w.mac.n == 0 {
		return // nothing since the last one
	}
	line := w.mac.next()
	w.s.wire.add(logOut, w.who, line)
	w.buf = append(append(w.buf, line...), '\n')
	w.fed = len(w.buf)
}

// write sends what is buffered, after the log is synced.
func (w *linkWriter) write() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.mac != nil {
		w.mac.add(w.buf[w.fed:]) // a batch not ended yet: its tag goes on
	}
	w.s.wire.sync() // logged before the bytes leave
	_, err := w.w.Write(w.buf)
	w.buf, w.fed = w.buf[:0], 0
	if cap(w.buf) > 2*linkWriteBuf {
		w.buf = make([]byte, 0, linkWriteBuf) // grown by a huge line
	}
	return err
}

// flush ends the batch (with a secret) and sends it.
func (w *linkWriter) flush() error {
	w.seal()
	return w.write()
}

// servePeer runs the listener side of a neighbour's link, whose first line was hello. It
// returns false if the line is not a valid handshake for this server, so it is answered
// as an invalid client command.
func (s *Server) servePeer(ctx context.Context, conn net.Conn, r *bufio.Reader, w *bufio.Writer, id, hello string) bool {
	h, err := proto.ParseHello(proto.Fields(nil, hello))
	if err != nil || s.node.CheckHello(h) != nil {
		return false
	}
	from, na := h.From, h.Nonce
	who := "peer:" + from + "/" + id
	o := s.opts
	s.wire.add(logIn, who, hello)
	send := func(line string) error {
		s.wire.add(logOut, who, line)
		s.wire.sync()
		w.WriteString(line + "\n")
		return w.Flush()
	}
	conn.SetDeadline(time.Now().Add(o.DeadAfter))
	nb := nonce()
	if send(proto.Challenge{Nonce: nb}.Format()) != nil {
		return true
	}
	raw, err := readLine(r, 1024, nil)
	if err != nil {
		s.wire.add(logEvent, who, "handshake failed: "+err.Error())
		s.wire.sync()
		return true
	}
	auth := proto.TrimLine(string(raw))
	s.wire.add(logIn, who, auth)
	a, err := proto.ParseAuth(proto.Fields(nil, auth))
	ok := err == nil
	if ok && len(o.Secret) > 0 {
		ok = hmac.Equal([]byte(a.Proof), []byte(proof(o.Secret, from, s.name, na, nb)))
	}
	if !ok {
		s.wire.add(logEvent, who, "handshake refused: bad proof")
		send(proto.FormatInvalid(auth)[:len(auth)+2])
		s.log.Warn("peer handshake refused", "claimed", from, "remote", conn.RemoteAddr().String())
		return true
	}
	// Whether this connection replaces the neighbour's current one (when it last heard
	// from it) is the node's decision.
	now := time.Now()
	in := &inbound{conn: conn}
	in.heard.Store(now.UnixNano())
	s.inMu.Lock()
	old := s.inbound[from]
	var lastHeard time.Time
	if old != nil {
		lastHeard = time.Unix(0, old.heard.Load())
	}
	s.mu.Lock()
	admitted, err := s.node.Step(core.Admit{From: from, Proven: len(o.Secret) > 0, LastHeard: lastHeard, Now: now})
	s.mu.Unlock()
	if err != nil {
		s.inMu.Unlock()
		s.wire.add(logEvent, who, "handshake refused: the link "+from+"->"+s.name+" "+err.Error())
		send(proto.FormatInvalid(auth)[:len(auth)+2])
		s.log.Warn("peer handshake refused: link live", "claimed", from, "remote", conn.RemoteAddr().String())
		return true
	}
	if old != nil {
		old.conn.Close() // a newer connection from the same neighbour replaces a stale one
	}
	s.inbound[from] = in
	welcome := admitted.Welcome.Format()
	s.inMu.Unlock()
	defer func() {
		s.inMu.Lock()
		if s.inbound[from] == in {
			delete(s.inbound, from)
		}
		s.inMu.Unlock()
	}()
	// With a secret, the welcome is the first line of this side's running MAC, and its
	// HERD-MAC goes with it: the dialler acts on the mark only once it verified it.
	out := newStreamMAC(o.Secret, "listener", from, s.name, na, nb)
	inMAC := newStreamMAC(o.Secret, "dialler", from, s.name, na, nb)
	if out != nil {
		out.addLine(welcome, "")
		s.wire.add(logOut, who, welcome)
		w.WriteString(welcome + "\n")
		welcome = out.next()
	}
	if send(welcome) != nil {
		return true
	}
	conn.SetDeadline(time.Time{})
	s.wire.add(logEvent, who, "link "+from+"->"+s.name+" accepted from "+conn.RemoteAddr().String())
	s.wire.sync()
	reason := s.receive(ctx, in, r, w, from, who, out, inMAC)
	s.wire.add(logEvent, who, "link "+from+"->"+s.name+" dropped: "+reason)
	s.wire.sync()
	return true
}

// inbound is a neighbour's accepted link, and when a line last came on it.
type inbound struct {
	conn  net.Conn
	heard atomic.Int64 // UnixNano
}

// receive applies a neighbour's updates and sends pongs until the link breaks. With a
// secret (out and mac not nil) every pong is followed by its HERD-MAC, and what the
// neighbour sends is applied only once a HERD-MAC from it verifies.
func (s *Server) receive(ctx context.Context, in *inbound, r *bufio.Reader, w *bufio.Writer, from, who string, out, mac *streamMAC) string {
	o := s.opts
	conn := in.conn
	var wmu sync.Mutex
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(o.Heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				conn.Close()
				return
			case <-tick.C:
				s.mu.Lock()
				due, _ := s.node.Step(core.ListenerTick{From: from})
				s.mu.Unlock()
				line := due.Pong.Format()
				s.wire.add(logOut, who, line)
				macLine := ""
				if out != nil {
					out.addLine(line, "")
					macLine = out.next()
					s.wire.add(logOut, who, macLine)
				}
				s.wire.sync()
				wmu.Lock()
				conn.SetWriteDeadline(time.Now().Add(o.DeadAfter))
				w.WriteString(line + "\n")
				if macLine != "" {
					w.WriteString(macLine + "\n")
				}
				err := w.Flush()
				wmu.Unlock()
				if err != nil {
					conn.Close()
					return
				}
			}
		}
	}()
	// A busy link brings many lines a read: a bigger buffer than a client's takes them
	// in fewer reads (what the handshake left in the small one comes first).
	r = bufio.NewReaderSize(r, peerReadBuf)
	// The line read; with a secret, every line read since the last verified HERD-MAC and
	// then it: the batch is fed to mac in one piece when its HERD-MAC comes (Poly1305
	// takes a batch much faster than line by line).
	var buf []byte
	var scratch []string
	var now time.Time
	// With a secret, what was read since the last verified HERD-MAC, applied when the
	// next one verifies: the updates, and the last ping's seq and mark.
	var pending []proto.Update
	var ping *proto.Ping // the last ping read, not yet applied
	applyPing := func(p *proto.Ping) {
		if p == nil {
			return
		}
		s.mu.Lock()
		s.node.Step(core.PeerPing{From: from, Ping: *p})
		s.mu.Unlock()
	}
	for {
		buffered := lineBuffered(r)
		if !buffered {
			// The next line needs a read: it must come within DeadAfter. (Even a link
			// that trickles bytes, never leaving the buffer empty, gets a new deadline
			// for every line it waits for.)
			conn.SetReadDeadline(time.Now().Add(o.DeadAfter))
		}
		batch := 0 // where the line begins in buf
		if mac != nil {
			batch = len(buf)
		}
		all, err := appendLine(r, s.peerMaxLine, buf[:batch])
		buf = all
		raw := all[batch:]
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return "no line for " + o.DeadAfter.String()
			}
			return err.Error()
		}
		if !buffered || now.IsZero() {
			now = time.Now() // the time the line came; whole lines of one read share it
			in.heard.Store(now.UnixNano())
		}
		line := proto.TrimLine(string(raw))
		s.wire.addAt(now, logIn, who, "", line)
		scratch = proto.Fields(scratch[:0], line)
		if mac != nil {
			if len(scratch) > 0 && scratch[0] == proto.PeerMAC {
				mac.add(buf[:batch]) // the batch it tags, without its own line
				if cap(buf) > peerReadBuf {
					buf = nil // a long batch's buffer goes
				} else {
					buf = buf[:0]
				}
				m, err := proto.ParseMAC(scratch)
				if err != nil || !mac.verify(raw, m.Tag) {
					s.log.Warn("peer link tampered with: bad HERD-MAC", "peer", from, "remote", conn.RemoteAddr().String())
					return fmt.Sprintf("bad %s (the link was tampered with): the %d updates since the last verified one are dropped unapplied", proto.PeerMAC, len(pending))
				}
				applyPing(ping)
				ping = nil
				for _, u := range pending {
					s.applyPeer(from, u)
				}
				clear(pending)
				if cap(pending) > 1024 {
					pending = nil
				}
				pending = pending[:0]
				continue
			}
			if len(buf) > macEvery+s.peerMaxLine {
				s.log.Warn("peer link dropped: no HERD-MAC", "peer", from, "remote", conn.RemoteAddr().String())
				return fmt.Sprintf("%d bytes without a %s: the %d updates in them are dropped unapplied", len(buf), proto.PeerMAC, len(pending))
			}
		}
		// What the dialler may send, and what drops the link, is the node's rule.
		got, err := s.node.ReadLine(core.FromDialler, line, scratch)
		if err != nil {
			return err.Error()
		}
		switch got.Kind {
		case core.APing:
			if mac == nil {
				applyPing(&got.Ping)
				break
			}
			p := got.Ping
			ping = &p // the last ping read wins, as it would have applied
		case core.AnUpdate:
			if mac != nil {
				pending = append(pending, got.Update)
				break
			}
			s.applyPeer(from, got.Update)
		}
	}
}
