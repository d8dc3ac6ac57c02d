package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/topology"
)

// linkUp waits until the link from -> to is up.
func (h *testHerd) linkUp(t *testing.T, from, to string, within time.Duration) {
	t.Helper()
	eventually(t, within, func() error {
		if !h.server(from).PeerUp(to) {
			return fmt.Errorf("link %s->%s not up", from, to)
		}
		return nil
	})
}

// Every IAMAT that fits in the client line limit makes a HERD-AT line that neighbours
// accept, even at the largest sizes: a client id, a location or a time (whose diff repeats
// its digits) as long as the line allows.
func TestAnIAMATAtTheLineLimitReachesTheNeighbour(t *testing.T) {
	const max = 300 // bytes, "\n" included
	h := startHerd(t, []string{"A", "Bramblewood"}, [][2]string{{"A", "Bramblewood"}}, Options{MaxLineBytes: max})
	h.linkUp(t, "A", "Bramblewood", 3*time.Second)
	fill := func(prefix, suffix string, c byte) string {
		return prefix + strings.Repeat(string(c), max-len(prefix)-len(suffix)-1) + suffix + "\n"
	}
	lines := []string{
		fill("IAMAT ", " +1+1 1", 'i'),                   // the longest client id
		fill("IAMAT nines +1+1 ", "", '9'),               // the longest time: the diff is as long
		fill("IAMAT neg +1+1 -", ".999999999", '9'),      // and negative: the diff is longer still
		fill("IAMAT frac +1+1 -9.", "", '9'),             // the longest fraction, rounded to nine
		fill("IAMAT loc +90.", "-180 -99999999999", '0'), // the longest location
	}
	for i, line := range lines {
		if len(line) != max {
			t.Fatalf("line %d is %d bytes", i, len(line))
		}
		out, err := client.Exchange(ctx(t), h.addr("A"), line)
		if err != nil || !strings.HasPrefix(out, "AT A ") {
			t.Fatalf("line %d answered %q %v", i, out, err)
		}
		at := strings.TrimSuffix(out, "\n")
		id := strings.Fields(at)[3]
		eventually(t, 3*time.Second, func() error {
			got, ok := h.server("Bramblewood").Lookup(id)
			if !ok || got != at {
				return fmt.Errorf("line %d (%d bytes as HERD-AT): the neighbour holds %q", i, len("HERD-"+at+"\n"), got)
			}
			return nil
		})
	}
	b, _ := os.ReadFile(filepath.Join(h.logDir, "Bramblewood.log"))
	if strings.Contains(string(b), "dropped") {
		t.Fatal("the link dropped")
	}
	if PeerLineLimit(max, len("Bramblewood")) < len("HERD-AT Bramblewood -")+2*max {
		t.Fatal("the peer line limit leaves no room")
	}
}

// A whole line followed by part of the next, in one read, is answered at once: a client
// that waits for each reply before it finishes the next line must not deadlock.
func TestALineFollowedByAPartialOneIsAnsweredAtOnce(t *testing.T) {
	h := startHerd(t, []string{"A"}, nil, Options{})
	conn, err := net.Dial("tcp", h.addr("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "IAMAT a +1+1 1\nIAM"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "AT A ") {
		t.Fatalf("first reply %q %v: held back until the partial line is finished", l, err)
	}
	io.WriteString(conn, "AT b +1+1 2\n")
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "AT A ") || !strings.Contains(l, " b ") {
		t.Fatalf("second reply %q %v", l, err)
	}
}

// stalledNeighbour is a neighbour named name that completes the handshake of the first
// connection and then reads nothing, and writes nothing unless pong (then a pong every
// 50 ms, as a listener whose reading half is stuck would); later connections get no
// answer at all.
func stalledNeighbour(t *testing.T, name string, pong bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for first := true; ; first = false {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if !first {
				continue
			}
			r := bufio.NewReader(c)
			if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "HERD-PEER ") {
				continue
			}
			io.WriteString(c, "HERD-CHALLENGE n\n")
			if _, err := r.ReadString('\n'); err != nil {
				continue
			}
			io.WriteString(c, "HERD-WELCOME "+name+"\n")
			if pong {
				go func() {
					for {
						if _, err := io.WriteString(c, "HERD-PONG 0\n"); err != nil {
							return
						}
						<-time.After(50 * time.Millisecond) // a heartbeat, not a wait for a condition
					}
				}()
			}
		}
	}()
	return ln.Addr().String()
}

// A neighbour that accepts a link and then reads nothing: megabytes of updates fill the
// socket, yet the link is reported down within a few DeadAfter and the server stops at
// once when cancelled.
func TestALinkToANeighbourThatReadsNothingGoesDownAndTheServerStops(t *testing.T) {
	for _, pong := range []bool{false, true} {
		t.Run(fmt.Sprint("pong=", pong), func(t *testing.T) { testStalledNeighbour(t, pong) })
	}
}

func testStalledNeighbour(t *testing.T, pong bool) {
	const deadAfter = 300 * time.Millisecond
	stalled := stalledNeighbour(t, "B", pong)
	cfg := topology.Build([]string{"A", "B"}, [][2]string{{"A", "B"}},
		func(string) string { return stalled }, func(string) string { return "127.0.0.1:0" })
	srv, err := New(Options{Name: "A", Config: cfg, Logger: quiet(), LogDir: t.TempDir(),
		DeadAfter: deadAfter, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(c) }()
	<-srv.Ready()
	eventually(t, 3*time.Second, func() error {
		if !srv.PeerUp("B") {
			return errors.New("link A->B not up")
		}
		return nil
	})
	// 12 MB of updates, more than loopback's socket buffers hold.
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go io.Copy(io.Discard, conn)
	id := strings.Repeat("x", 30000)
	for i := range 400 {
		if _, err := fmt.Fprintf(conn, "IAMAT %s%d +1+1 1\n", id, i); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*deadAfter, func() error {
		if srv.PeerUp("B") {
			return errors.New("the link to a neighbour that reads nothing is still up")
		}
		return nil
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * deadAfter):
		t.Fatal("Serve did not return after cancel")
	}
}

// peerHandshake dials addr as neighbour from of to (no secret) and returns the
// connection and the listener's answer to HERD-AUTH.
func peerHandshake(t *testing.T, addr, from, to string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	io.WriteString(conn, "HERD-PEER "+from+" "+to+" n1\n")
	if l, err := r.ReadString('\n'); !strings.HasPrefix(l, "HERD-CHALLENGE ") {
		t.Fatalf("got %q %v", l, err)
	}
	io.WriteString(conn, "HERD-AUTH -\n")
	l, _ := r.ReadString('\n')
	conn.SetDeadline(time.Time{})
	return conn, r, l
}

// Without a secret anyone can claim to be a neighbour, but an update whose origin is not
// a server of the herd is refused and the link dropped, and a live link of the real
// neighbour is not displaced by a second connection claiming its name.
func TestAFakePeerCannotStoreAForeignOriginNorDisplaceALiveLink(t *testing.T) {
	h := startHerd(t, []string{"A", "B", "C"}, [][2]string{{"A", "B"}, {"B", "C"}}, Options{Heartbeat: time.Second, DeadAfter: 5 * time.Second}) // live for 3 s: ample
	h.linkUp(t, "A", "B", 3*time.Second)
	h.linkUp(t, "C", "B", 3*time.Second)
	connects := h.server("A").metrics.peerConnects.Load()

	// A second connection claiming A while A's link is live is refused.
	_, _, answer := peerHandshake(t, h.addr("B"), "A", "B")
	if answer != "? HERD-AUTH -\n" {
		t.Fatalf("a second connection claiming A was answered %q", answer)
	}
	if !h.server("A").PeerUp("B") || h.server("A").metrics.peerConnects.Load() != connects {
		t.Fatal("the real link A->B was displaced")
	}

	// Once C's link is gone (C stopped), a fake C is accepted, but may only carry updates
	// that name a server of the herd as their origin.
	h.stop("C")
	var conn net.Conn
	var r *bufio.Reader
	eventually(t, 3*time.Second, func() error {
		var l string
		conn, r, l = peerHandshake(t, h.addr("B"), "C", "B")
		if l != "HERD-WELCOME B\n" {
			conn.Close()
			return fmt.Errorf("fake C answered %q", l)
		}
		return nil
	})
	go io.Copy(io.Discard, r)
	io.WriteString(conn, "HERD-AT Mallory +0.000000000 victim +1+1 99999999999\nHERD-AT C +0.000000000 later +1+1 1\n")
	eventually(t, 3*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(h.logDir, "B.log"))
		if !strings.Contains(string(b), `origin \"Mallory\" is not a server of the herd`) {
			return errors.New("B's log does not say it dropped the link for its origin")
		}
		return nil
	})
	for _, id := range []string{"victim", "later"} {
		if at, ok := h.server("B").Lookup(id); ok {
			t.Fatalf("B stored %q from a link it should have dropped", at)
		}
	}
}

// checkedConn checks that every reply line written was in the log file when its first
// byte was written.
type checkedConn struct {
	net.Conn
	logFile string
	mu      sync.Mutex
	writes  int
	missing []string
	pending string // a line begun in an earlier write
	seen    string // the log file when it was begun
}

func (c *checkedConn) Write(b []byte) (int, error) {
	b2, _ := os.ReadFile(c.logFile)
	logged := string(b2)
	c.mu.Lock()
	c.writes++
	for _, l := range strings.SplitAfter(string(b), "\n") {
		seen := logged
		if c.pending != "" {
			l, seen = c.pending+l, c.seen
			c.pending = ""
		}
		if !strings.HasSuffix(l, "\n") {
			c.pending, c.seen = l, seen
			continue
		}
		if !strings.Contains(seen, `"`+strings.TrimSuffix(l, "\n")+`"`) {
			c.missing = append(c.missing, l)
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// A reply never leaves before its log line, even when a pipelined client's replies fill
// the connection's writer and it writes them out before the batch is done.
func TestPipelinedRepliesLeaveOnlyAfterTheirLogLines(t *testing.T) {
	cfg := topology.Build([]string{"A"}, nil, nil, func(string) string { return "127.0.0.1:0" })
	dir := t.TempDir()
	srv, err := New(Options{Name: "A", Config: cfg, Logger: quiet(), LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.wire.close()
	server, cl := net.Pipe()
	conn := &checkedConn{Conn: server, logFile: filepath.Join(dir, "A.log")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.handle(context.Background(), conn, false)
	}()
	const n = 1000
	var batch strings.Builder
	for i := range n {
		fmt.Fprintf(&batch, "IAMAT pipelined-client-%04d +34.068930-118.445127 %d.123456789\n", i, 1520023934+i)
	}
	go func() {
		io.WriteString(cl, batch.String())
	}()
	cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(cl)
	for i := range n {
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "AT A ") {
			t.Fatalf("reply %d: %q %v", i, l, err)
		}
	}
	cl.Close()
	<-done
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if len(conn.missing) > 0 {
		t.Fatalf("%d of %d replies were written before their log lines, e.g. %q", len(conn.missing), n, conn.missing[0])
	}
	if conn.writes < 2 {
		t.Fatalf("the replies left in %d write: the test needs the writer to fill", conn.writes)
	}
}

// A client connection that sends nothing for IdleTimeout is closed, and the log says so.
func TestAnIdleClientConnectionIsClosed(t *testing.T) {
	h := startHerd(t, []string{"A"}, nil, Options{IdleTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", h.addr("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	io.WriteString(conn, "IAMAT a +1+1 1\n")
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "AT A ") {
		t.Fatalf("reply %q %v", l, err)
	}
	if l, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("an idle connection was not closed: %q %v", l, err)
	}
	eventually(t, 3*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(h.logDir, "A.log"))
		if !strings.Contains(string(b), "closing: idle for 200ms") {
			return errors.New("the log does not say why the connection closed")
		}
		return nil
	})
}

// Clients holding every connection slot (idle sockets) cannot keep a restarted neighbour
// from linking: neighbours have slots of their own, which a client cannot keep.
func TestANeighbourLinksWhileClientsHoldEverySlot(t *testing.T) {
	const maxConns = 100
	h := startHerd(t, []string{"A", "B"}, [][2]string{{"A", "B"}}, Options{MaxConns: maxConns, DeadAfter: 500 * time.Millisecond, Heartbeat: 50 * time.Millisecond})
	h.linkUp(t, "B", "A", 3*time.Second)
	a := h.server("A")
	h.stop("B")
	// Hold every client slot of A and more, with sockets that send nothing.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	eventually(t, 5*time.Second, func() error {
		for range 10 {
			c, err := net.Dial("tcp", h.addr("A"))
			if err != nil {
				return err
			}
			held = append(held, c)
		}
		if n := len(a.slots); n < maxConns {
			return fmt.Errorf("clients hold %d slots of %d", n, maxConns)
		}
		return nil
	})
	h.start("B")
	h.linkUp(t, "B", "A", 5*time.Second)
	if n := len(a.slots); n != maxConns {
		t.Fatalf("clients hold %d slots: the link did not come through a peer slot", n)
	}
	at, err := client.IAMAT(ctx(t), h.addr("B"), "through", "+1+1", "1")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() error {
		if got, _ := a.Lookup("through"); got != at {
			return fmt.Errorf("A holds %q", got)
		}
		return nil
	})
}

// herd_client_connections counts open client connections, not peer links.
func TestTheClientConnectionsMetricCountsOpenClientConnections(t *testing.T) {
	h := startHerd(t, []string{"A", "B"}, [][2]string{{"A", "B"}}, Options{})
	h.linkUp(t, "B", "A", 3*time.Second)
	a := h.server("A")
	metric := func() string {
		var b strings.Builder
		a.writeMetrics(&b)
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "herd_client_connections{") {
				return l[strings.LastIndexByte(l, ' ')+1:]
			}
		}
		return "missing"
	}
	var conns []net.Conn
	for range 50 {
		c, err := net.Dial("tcp", h.addr("A"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	eventually(t, 3*time.Second, func() error {
		if m := metric(); m != "50" {
			return fmt.Errorf("herd_client_connections is %s with 50 open", m)
		}
		return nil
	})
	for _, c := range conns {
		c.Close()
	}
	eventually(t, 3*time.Second, func() error {
		if m := metric(); m != "0" {
			return fmt.Errorf("herd_client_connections is %s with none open", m)
		}
		return nil
	})
}

// A connection that sent one huge line keeps only small buffers while it waits for more.
func TestAnIdleConnectionKeepsOnlySmallBuffersAfterAHugeLine(t *testing.T) {
	cfg := topology.Build([]string{"A"}, nil, nil, func(string) string { return "127.0.0.1:0" })
	srv, err := New(Options{Name: "A", Config: cfg, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	type caps struct{ line, fields int }
	idle := make(chan caps, 16)
	srv.idleHook = func(line, fields int) { idle <- caps{line, fields} }
	server, cl := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.handle(context.Background(), server, false)
	}()
	defer func() { cl.Close(); <-done }()
	huge := "IAMAT" + strings.Repeat(" a", 32000) + "\n" // 32,001 fields, 64,006 bytes
	go io.WriteString(cl, huge)
	cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReaderSize(cl, 1<<17)
	if l, err := r.ReadString('\n'); err != nil || l != "? "+huge {
		t.Fatalf("reply of %d bytes, %v", len(l), err)
	}
	select {
	case c := <-idle:
		if c.line > keepLineBuf || c.fields > keepFields {
			t.Fatalf("waiting after a huge line, the connection keeps a line buffer of %d bytes and %d fields", c.line, c.fields)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection never waited")
	}
}

// A WHATSAT whose upstream fails tells the client what went wrong, not the upstream's
// address.
func TestAPlacesErrorShownToAClientNamesNoUpstreamHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upstream := ln.Addr().String()
	ln.Close()
	src, err := places.NewHTTP("http://"+upstream, "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := startHerd(t, []string{"A"}, nil, Options{Places: src})
	client.IAMAT(ctx(t), h.addr("A"), "x", "+1+1", "1")
	rep, err := client.WHATSAT(ctx(t), h.addr("A"), "x", "5", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.JSON, `"error_message"`) || strings.Contains(rep.JSON, upstream) || strings.Contains(rep.JSON, "127.0.0.1") {
		t.Fatalf("the client sees %s", rep.JSON)
	}
}

// /clients escapes a client id's control and non-ASCII bytes; plain lines are unchanged.
func TestClientsEndpointEscapesNonPrintableBytes(t *testing.T) {
	h := startHerd(t, []string{"A"}, nil, Options{})
	plain, _ := client.IAMAT(ctx(t), h.addr("A"), "plain", "+1+1", "1")
	client.IAMAT(ctx(t), h.addr("A"), "\x1b[2Jred\xff", "+1+1", "1")
	rec := httptest.NewRecorder()
	h.server("A").serveClients(rec, httptest.NewRequest("GET", "/clients", nil))
	body := rec.Body.String()
	if strings.ContainsAny(body, "\x1b\xff") || !strings.Contains(body, `\x1b[2Jred\xff`) || !strings.Contains(body, plain+"\n") {
		t.Fatalf("/clients: %q", body)
	}
}

// A client that sends and never reads its replies does not hold its connection for ever:
// once the replies fill the socket buffers, a write waits at most IdleTimeout.
func TestAClientThatNeverReadsIsClosed(t *testing.T) {
	h := startHerd(t, []string{"A"}, nil, Options{IdleTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", h.addr("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096) // the replies fill the buffers sooner
	// Keep sending until the server stops reading (it is stuck writing replies) and then
	// closes: the writes fail, or block until the deadline, then fail.
	line := []byte("IAMAT never-reads +1+1 1\n")
	batch := bytes.Repeat(line, 1000)
	closed := make(chan error, 1)
	go func() {
		for {
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(batch); err != nil {
				closed <- err
				return
			}
		}
	}()
	select {
	case err := <-closed:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server still held the connection of a client that never reads after 10 s: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no end")
	}
	eventually(t, 3*time.Second, func() error {
		if n := h.server("A").metrics.clientConns.Load(); n != 0 {
			return fmt.Errorf("%d client connections still open", n)
		}
		return nil
	})
}
