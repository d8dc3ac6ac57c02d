package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/proto"
	"github.com/herdchaos/herd/herd/topology"
)

// testHerd runs servers in-process on loopback, each on its own port, with real peer links.
type testHerd struct {
	t       testing.TB
	cfg     topology.Config
	logDir  string
	opts    Options
	mu      sync.Mutex
	running map[string]*runningServer
	first   map[string]net.Listener // each server's listener for its first start
}

type runningServer struct {
	srv    *Server
	cancel context.CancelFunc
	done   chan error
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startHerd starts every server of the given names and links on free loopback ports.
func startHerd(t testing.TB, names []string, links [][2]string, opts Options) *testHerd {
	t.Helper()
	// The listeners stay open and are handed to the servers: closing and reopening a
	// "free" port races with the ephemeral ports of the herd's own peer dials.
	ports := map[string]string{}
	lns := map[string]net.Listener{}
	for _, n := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[n] = ln.Addr().String()
		lns[n] = ln
	}
	cfg := topology.Build(names, links, func(n string) string { return ports[n] }, func(n string) string { return ports[n] })
	h := &testHerd{t: t, cfg: cfg, logDir: t.TempDir(), opts: opts, running: map[string]*runningServer{}, first: lns}
	for _, n := range names {
		h.start(n)
	}
	t.Cleanup(func() {
		for _, n := range names {
			h.stop(n)
		}
	})
	return h
}

func fiveHerd(t testing.TB, opts Options) *testHerd {
	return startHerd(t, topology.DefaultNames, topology.DefaultLinks, opts)
}

func (h *testHerd) addr(name string) string { return h.cfg.Server(name).Listen }

func (h *testHerd) start(name string) {
	h.t.Helper()
	o := h.opts
	o.Name, o.Config, o.LogDir = name, h.cfg, h.logDir
	if o.Logger == nil {
		o.Logger = quiet()
	}
	srv, err := New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	ln := h.first[name]
	delete(h.first, name)
	if ln == nil {
		// A restart: the port was this server's a moment ago.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ln, err = net.Listen("tcp", h.addr(name))
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningServer{srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { rs.done <- srv.ServeListener(ctx, ln) }()
	<-srv.Ready()
	h.mu.Lock()
	h.running[name] = rs
	h.mu.Unlock()
}

func (h *testHerd) stop(name string) {
	h.mu.Lock()
	rs := h.running[name]
	delete(h.running, name)
	h.mu.Unlock()
	if rs != nil {
		rs.cancel()
		if err := <-rs.done; err != nil {
			h.t.Errorf("%s: %v", name, err)
		}
	}
}

func (h *testHerd) server(name string) *Server {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running[name].srv
}

// eventually waits for cond with a deadline; it fails the test with what cond last said.
func eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// holds is a client-side check: a WHATSAT at server names the expected AT line.
func (h *testHerd) holds(server, clientID, at string) error {
	rep, err := client.WHATSAT(context.Background(), h.addr(server), clientID, "10", 1)
	if err != nil {
		return fmt.Errorf("%s: %v", server, err)
	}
	if rep.AT != at {
		return fmt.Errorf("%s answers %q, want %q", server, strings.TrimSpace(rep.Raw[:min(len(rep.Raw), 120)]), at)
	}
	return nil
}

func TestAnIAMATAtAnyServerReachesAllFive(t *testing.T) {
	h := fiveHerd(t, Options{})
	for i, origin := range topology.DefaultNames {
		id := "phone-" + origin
		at, err := client.IAMAT(ctx(t), h.addr(origin), id, "+34.068930-118.445127", fmt.Sprintf("%d.5", 1520023934+i))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(at, "AT "+origin+" ") {
			t.Fatalf("reply %q", at)
		}
		for _, n := range topology.DefaultNames {
			eventually(t, 3*time.Second, func() error { return h.holds(n, id, at) })
		}
	}
}

func TestWelshReachesHandsOverThreeHopsAndWHATSATNamesTheOrigin(t *testing.T) {
	h := fiveHerd(t, Options{})
	at, err := client.IAMAT(ctx(t), h.addr("Welsh"), "kiwi.cs.ucla.edu", "+34.068930-118.445127", "1520023934.918963997")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() error { return h.holds("Hands", "kiwi.cs.ucla.edu", at) })
	rep, err := client.WHATSAT(ctx(t), h.addr("Hands"), "kiwi.cs.ucla.edu", "10", 5)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rep.AT, "AT Welsh ") {
		t.Fatalf("AT line %q does not name Welsh", rep.AT)
	}
	want, _ := places.Trim(places.Answer("34.068930,-118.445127", "10000", ""), 5)
	if rep.JSON != string(want) {
		t.Fatalf("JSON differs from the emulator's trimmed answer:\n%s", rep.JSON)
	}
	if !strings.HasSuffix(rep.Raw, "}\n\n") || strings.Contains(rep.JSON, "\n\n") {
		t.Fatalf("newline rules broken: %q", rep.Raw[len(rep.Raw)-10:])
	}
}

func TestAKilledServersNeighboursKeepServingAndItConvergesAfterRestart(t *testing.T) {
	h := fiveHerd(t, Options{})
	h.stop("Holiday")
	at, err := client.IAMAT(ctx(t), h.addr("Goloman"), "c1", "+1+1", "100")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Goloman", "Hands", "Wilkes"} {
		eventually(t, 3*time.Second, func() error { return h.holds(n, "c1", at) })
	}
	// Welsh's only neighbour is down: it must not have it, and must still answer.
	if rep, err := client.WHATSAT(ctx(t), h.addr("Welsh"), "c1", "10", 1); err != nil || !rep.Invalid {
		t.Fatalf("Welsh should not know c1 yet: %+v %v", rep, err)
	}
	atW, err := client.IAMAT(ctx(t), h.addr("Welsh"), "c2", "+2+2", "200")
	if err != nil || !strings.HasPrefix(atW, "AT Welsh") {
		t.Fatalf("Welsh stopped serving: %q %v", atW, err)
	}
	h.start("Holiday")
	for _, n := range topology.DefaultNames {
		eventually(t, 5*time.Second, func() error { return h.holds(n, "c1", at) })
		eventually(t, 5*time.Second, func() error { return h.holds(n, "c2", atW) })
	}
}

func TestCommandsWrittenOneByteAtATimeWork(t *testing.T) {
	h := fiveHerd(t, Options{})
	conn, err := net.Dial("tcp", h.addr("Hands"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, b := range []byte("IAMAT slow +10-20 5\r\nWHATSAT slow 1 1\n") {
		if _, err := conn.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	conn.(*net.TCPConn).CloseWrite()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(out), "\n", 3)
	if !strings.HasPrefix(lines[0], "AT Hands ") || !strings.HasSuffix(lines[0], " slow +10-20 5") || lines[1] != lines[0] {
		t.Fatalf("got %q", out)
	}
}

func TestOneConnectionManyCommandsInOrderAndAFinalCommandWithoutNewline(t *testing.T) {
	h := fiveHerd(t, Options{})
	text := "IAMAT a +1+1 1\n\n   \nBOGUS line\t here\nWHATSAT nobody 10 1\nWHATSAT a 10 0\nIAMAT a +1+1 1.0\nWHATSAT a 0.001 1\nIAMAT b +2+2 7"
	out, err := client.Exchange(ctx(t), h.addr("Wilkes"), text)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	expect := []func(string) bool{
		func(s string) bool { return strings.HasPrefix(s, "AT Wilkes ") && strings.HasSuffix(s, " a +1+1 1") },
		func(s string) bool { return s == "? BOGUS line\t here" },
		func(s string) bool { return s == "? WHATSAT nobody 10 1" },
		func(s string) bool { return s == "? WHATSAT a 10 0" },
		func(s string) bool { return strings.HasSuffix(s, " a +1+1 1.0") }, // stale: answered anyway
		func(s string) bool { return strings.HasPrefix(s, "AT Wilkes ") && strings.HasSuffix(s, " a +1+1 1") },
	}
	for i, ok := range expect {
		if i >= len(lines) || !ok(lines[i]) {
			t.Fatalf("line %d of %q", i, out)
		}
	}
	if !strings.Contains(out, `"ZERO_RESULTS"`) || !strings.HasSuffix(out, " b +2+2 7\n") {
		t.Fatalf("got %q", out)
	}
}

func TestAnOverLongLineIsRefusedAndClosesOnlyThatConnection(t *testing.T) {
	h := fiveHerd(t, Options{MaxLineBytes: 100})
	other, err := client.Dial(ctx(t), h.addr("Goloman"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	out, err := client.Exchange(ctx(t), h.addr("Goloman"), "IAMAT "+strings.Repeat("x", 500)+" +1+1 1\nIAMAT y +1+1 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "? IAMAT xxx") || strings.Count(out, "\n") != 1 || len(out) > 110 {
		t.Fatalf("got %q", out)
	}
	if rep, err := other.IAMAT(ctx(t), "z", "+1+1", "1"); err != nil || !strings.HasPrefix(rep, "AT Goloman") {
		t.Fatalf("other connection affected: %q %v", rep, err)
	}
}

func TestConnectionsOverTheLimitAreRefusedAndOthersServed(t *testing.T) {
	h := startHerd(t, []string{"A"}, nil, Options{MaxConns: 2})
	var held []*client.Conn
	for range 2 {
		c, err := client.Dial(ctx(t), h.addr("A"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.IAMAT(ctx(t), "x", "+1+1", "1"); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	if out, err := client.Exchange(ctx(t), h.addr("A"), "IAMAT y +1+1 1\n"); err == nil && out != "" {
		t.Fatalf("third connection served: %q", out)
	}
	if rep, err := held[0].IAMAT(ctx(t), "x", "+1+1", "2"); err != nil || !strings.HasPrefix(rep, "AT A") {
		t.Fatalf("held connection broken: %q %v", rep, err)
	}
}

func TestAClientCannotInjectALocationAsAPeer(t *testing.T) {
	h := fiveHerd(t, Options{Secret: []byte("s3cret")})
	forged := "HERD-AT Goloman +0.000000000 victim +1+1 999\n"
	out, err := client.Exchange(ctx(t), h.addr("Hands"), forged)
	if err != nil || out != "? "+forged {
		t.Fatalf("forged update answered %q %v", out, err)
	}
	// A handshake with a wrong proof is refused.
	conn, err := net.Dial("tcp", h.addr("Hands"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "HERD-PEER Goloman Hands 00\nHERD-AUTH deadbeef\n"+forged)
	b, _ := io.ReadAll(conn)
	if !strings.Contains(string(b), "? HERD-AUTH deadbeef") || strings.Contains(string(b), "WELCOME") {
		t.Fatalf("bad proof answered %q", b)
	}
	if rep, _ := client.WHATSAT(ctx(t), h.addr("Hands"), "victim", "1", 1); !rep.Invalid {
		t.Fatalf("forged location stored: %q", rep.Raw)
	}
	// And with the right secret the herd still floods.
	at, _ := client.IAMAT(ctx(t), h.addr("Welsh"), "real", "+1+1", "1")
	eventually(t, 3*time.Second, func() error { return h.holds("Hands", "real", at) })
}

func TestAPeerWithTheWrongSecretCannotJoin(t *testing.T) {
	h := startHerd(t, []string{"A", "B"}, [][2]string{{"A", "B"}}, Options{Secret: []byte("right")})
	// Restart B with a wrong secret: A must refuse its link, so B's updates do not reach A.
	h.stop("B")
	h.opts.Secret = []byte("wrong")
	h.start("B")
	at, _ := client.IAMAT(ctx(t), h.addr("B"), "x", "+1+1", "1")
	if !strings.HasPrefix(at, "AT B") {
		t.Fatal(at)
	}
	// Wait until B has tried to dial A at least once, then check A has nothing.
	eventually(t, 3*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(h.logDir, "A.log"))
		if !strings.Contains(string(b), "handshake refused") {
			return errors.New("no refused handshake in A's log yet")
		}
		return nil
	})
	if rep, _ := client.WHATSAT(ctx(t), h.addr("A"), "x", "1", 1); !rep.Invalid {
		t.Fatalf("A accepted an update over an unproven link: %q", rep.Raw)
	}
}

type failingPlaces struct{ hang bool }

func (f failingPlaces) Nearby(ctx context.Context, _, _ string) ([]byte, error) {
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return []byte("<html>502</html>"), nil
}

func TestPlacesFailuresGetAPromptAnswerWithAnErrorStatus(t *testing.T) {
	for _, hang := range []bool{false, true} {
		h := startHerd(t, []string{"A"}, nil, Options{Places: failingPlaces{hang}, PlacesTimeout: 200 * time.Millisecond})
		client.IAMAT(ctx(t), h.addr("A"), "x", "+1+1", "1")
		start := time.Now()
		rep, err := client.WHATSAT(ctx(t), h.addr("A"), "x", "5", 3)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("took %v", took)
		}
		if !strings.HasPrefix(rep.AT, "AT A ") || !strings.Contains(rep.JSON, `"status": "UNKNOWN_ERROR"`) ||
			!strings.Contains(rep.JSON, `"results": []`) || !strings.Contains(rep.JSON, `"error_message"`) {
			t.Fatalf("hang=%v: %q", hang, rep.Raw)
		}
	}
}

// blackHole accepts connections and never answers: a paused or black-holed peer.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

func TestABlackHoledPeerStallsNoOne(t *testing.T) {
	hole := blackHole(t)
	cfg := topology.Build([]string{"A", "B"}, [][2]string{{"A", "B"}},
		func(n string) string { return hole }, func(string) string { return "127.0.0.1:0" })
	srv, err := New(Options{Name: "A", Config: cfg, Logger: quiet(), LogDir: t.TempDir(), DeadAfter: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(c) }()
	defer func() { cancel(); <-done }()
	<-srv.Ready()
	for i := range 200 {
		rep, err := client.IAMAT(ctx(t), srv.Addr().String(), fmt.Sprint("c", i), "+1+1", "1")
		if err != nil || !strings.HasPrefix(rep, "AT A") {
			t.Fatalf("client stalled: %q %v", rep, err)
		}
	}
	if srv.PeerUp("B") {
		t.Fatal("a peer that never completes the handshake is up")
	}
}

func TestTheLogHasEveryInputAndOutputLineAndPeerConnections(t *testing.T) {
	h := fiveHerd(t, Options{})
	at, _ := client.IAMAT(ctx(t), h.addr("Welsh"), "logged", "+1+1", "1")
	eventually(t, 3*time.Second, func() error { return h.holds("Holiday", "logged", at) })
	wants := []string{`in c`, `"IAMAT logged +1+1 1"`, `out c`, fmt.Sprintf("%q", at),
		`link Welsh->Holiday up`, `link Holiday->Welsh accepted`, `"HERD-` + at + `"`}
	eventually(t, 3*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(h.logDir, "Welsh.log"))
		if err != nil {
			return err
		}
		for _, want := range wants {
			if !strings.Contains(string(b), want) {
				return fmt.Errorf("Welsh.log lacks %s", want)
			}
		}
		return nil
	})
}

func TestStaleIAMATIsNotFlooded(t *testing.T) {
	h := fiveHerd(t, Options{})
	at, _ := client.IAMAT(ctx(t), h.addr("Goloman"), "s", "+1+1", "10")
	for _, n := range topology.DefaultNames {
		eventually(t, 3*time.Second, func() error { return h.holds(n, "s", at) })
	}
	sent := h.server("Welsh").metrics.peerSent.Load()
	if rep, _ := client.IAMAT(ctx(t), h.addr("Welsh"), "s", "+9+9", "9"); !strings.HasPrefix(rep, "AT Welsh ") {
		t.Fatal(rep)
	}
	if h.server("Welsh").metrics.peerSent.Load() != sent {
		t.Fatal("a stale IAMAT was flooded")
	}
	if err := h.holds("Welsh", "s", at); err != nil {
		t.Fatal(err)
	}
}

func TestFloodingSendsAtMost2EMinusNPlus1MessagesPerUpdate(t *testing.T) {
	h := fiveHerd(t, Options{})
	// Wait for every link to be up, so counts are not muddled by resyncs.
	eventually(t, 3*time.Second, func() error {
		for _, n := range topology.DefaultNames {
			for _, p := range h.cfg.Server(n).Neighbours() {
				if !h.server(n).PeerUp(p) {
					return fmt.Errorf("%s->%s down", n, p)
				}
			}
		}
		return nil
	})
	total := func() (n int64) {
		for _, name := range topology.DefaultNames {
			n += h.server(name).metrics.peerSent.Load()
		}
		return n
	}
	before := total()
	const updates = 50
	var last string
	for i := range updates {
		last, _ = client.IAMAT(ctx(t), h.addr(topology.DefaultNames[i%5]), fmt.Sprint("m", i), "+1+1", "1")
	}
	for _, n := range topology.DefaultNames {
		eventually(t, 3*time.Second, func() error { return h.holds(n, "m49", last) })
	}
	if sent := total() - before; sent > updates*8 {
		t.Fatalf("%d peer messages for %d updates, more than 8 each", sent, updates)
	} else {
		t.Logf("%d peer messages for %d updates", sent, updates)
	}
}

func mustIAMAT(t *testing.T, clientID string) proto.IAMAT {
	cmd, _ := proto.ParseCommand("IAMAT "+clientID+" +1+1 1", nil)
	if cmd.Kind != proto.IAmAt {
		t.Fatal(cmd.Err)
	}
	return cmd.IAMAT
}

// Floods are batched per read, but never held behind a slow WHATSAT on the same
// connection: an IAMAT and a WHATSAT whose Places request hangs, written together, still
// reach the neighbour at once.
func TestAnIAMATIsFloodedWithoutWaitingForTheWHATSATAfterIt(t *testing.T) {
	h := startHerd(t, []string{"A", "B"}, [][2]string{{"A", "B"}}, Options{Places: failingPlaces{hang: true}, PlacesTimeout: 10 * time.Second})
	eventually(t, 3*time.Second, func() error {
		if !h.server("A").PeerUp("B") {
			return fmt.Errorf("link A->B not up")
		}
		return nil
	})
	conn, err := net.Dial("tcp", h.addr("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "IAMAT x +1+1 1\nWHATSAT x 5 3\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() error {
		if _, ok := h.server("B").Lookup("x"); !ok {
			return fmt.Errorf("B does not hold x")
		}
		return nil
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("B heard of x after %v: the flood waited for the WHATSAT", took)
	}
}

// A server that only listens on a link (it has no one to flood to) still hands the
// updates it hears to its log file at once, not at its next heartbeat.
func TestAListeningServerLogsWhatItHearsPromptly(t *testing.T) {
	h := startHerd(t, []string{"A", "B"}, [][2]string{{"A", "B"}}, Options{Heartbeat: time.Minute, DeadAfter: 2 * time.Minute})
	eventually(t, 3*time.Second, func() error {
		if !h.server("A").PeerUp("B") || !h.server("B").PeerUp("A") {
			return fmt.Errorf("links not up")
		}
		return nil
	})
	for i := range 3 { // several, so a write at link-up time cannot be the one that covers them
		at, err := client.IAMAT(ctx(t), h.addr("A"), fmt.Sprint("heard", i), "+1+1", fmt.Sprint(i+1))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Second, func() error {
			b, err := os.ReadFile(filepath.Join(h.logDir, "B.log"))
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), `"HERD-`+at+`"`) {
				return fmt.Errorf("B.log lacks the update it heard: %s", at)
			}
			return nil
		})
	}
}

// A line's time is when its last byte came: an IAMAT whose second half comes 300 ms
// after its first (which came with a whole line before it) is answered with a diff of at
// least 300 ms from the client's time.
func TestAnIAMATSentInPiecesIsTimedWhenItIsWhole(t *testing.T) {
	h := startHerd(t, []string{"A"}, nil, Options{})
	conn, err := net.Dial("tcp", h.addr("A"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := time.Now()
	clientTime := fmt.Sprintf("%d.%09d", sent.Unix(), sent.Nanosecond())
	io.WriteString(conn, "IAMAT y +1+1 1\nIAMAT x +1+1 ")
	<-time.After(300 * time.Millisecond) // the gap under test
	io.WriteString(conn, clientTime+"\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	r.ReadString('\n') // y's reply
	reply, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(reply)
	diff, err := strconv.ParseFloat(f[2], 64)
	if err != nil || len(f) != 6 {
		t.Fatalf("reply %q", reply)
	}
	if diff < 0.3 {
		t.Fatalf("diff %s: the IAMAT was timed at its first byte, not its last", f[2])
	}
}

// A peer whose lines come in pieces, so that part of a line is always waiting in the
// buffer, is not silent: each line it is waited for gets the full DeadAfter.
func TestAPeerTricklingLinesInPiecesIsNotDropped(t *testing.T) {
	cfg := topology.Build([]string{"A", "B"}, [][2]string{{"A", "B"}}, func(string) string { return "127.0.0.1:1" }, func(string) string { return "127.0.0.1:1" })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serveOn(t, ln, Options{Name: "B", Config: cfg, Logger: quiet(), DeadAfter: 300 * time.Millisecond, Heartbeat: 50 * time.Millisecond})

	// Be A: the handshake (no secret), then updates whose lines straddle the writes.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	io.WriteString(conn, "HERD-PEER A B n1\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "HERD-CHALLENGE ") {
		t.Fatalf("got %q", l)
	}
	io.WriteString(conn, "HERD-AUTH -\n")
	if l, _ := r.ReadString('\n'); l != "HERD-WELCOME B\n" {
		t.Fatalf("got %q", l)
	}
	go io.Copy(io.Discard, r) // the pongs
	line := func(i int) string { return fmt.Sprintf("HERD-AT A +0.000000001 t%d +1+1 %d\n", i, i+1) }
	pending := line(0)
	const n = 12 // about 1.2 s: four times DeadAfter
	for i := 1; i <= n; i++ {
		next := line(i)
		// The rest of one line and the first half of the next, every 100 ms.
		if _, err := io.WriteString(conn, pending+next[:len(next)/2]); err != nil {
			t.Fatalf("write %d: %v (B dropped the link)", i, err)
		}
		pending = next[len(next)/2:]
		<-time.After(100 * time.Millisecond)
	}
	io.WriteString(conn, pending)
	eventually(t, 2*time.Second, func() error {
		for i := 0; i <= n; i++ {
			if _, ok := srv.Lookup(fmt.Sprint("t", i)); !ok {
				return fmt.Errorf("B lacks t%d: it dropped the link", i)
			}
		}
		return nil
	})
}

// After a link drops and comes back, the dialler sends only what the listener lacks (the
// updates since the last mark it holds), not its whole state; a listener that restarted
// holds no mark and gets everything.
func TestAReconnectSendsOnlyWhatTheNeighbourLacks(t *testing.T) {
	h := startHerd(t, []string{"A", "B"}, [][2]string{{"A", "B"}}, Options{Heartbeat: 20 * time.Millisecond})
	a := h.server("A")
	eventually(t, 3*time.Second, func() error {
		if !a.PeerUp("B") {
			return errors.New("link A->B not up")
		}
		return nil
	})
	const n = 200
	for i := range n {
		if _, err := client.IAMAT(ctx(t), h.addr("A"), fmt.Sprint("r", i), "+1+1", "1"); err != nil {
			t.Fatal(err)
		}
	}
	// B holds everything, and a ping has carried the mark past it.
	eventually(t, 3*time.Second, func() error {
		b := h.server("B")
		b.mu.Lock()
		m := b.node.HeldMark("A")
		b.mu.Unlock()
		if m.Instance != a.instance || m.Seq < n {
			return fmt.Errorf("B's mark from A: %+v", m)
		}
		return nil
	})
	before := a.metrics.resyncSent.Load()

	// Cut the link at B's end; while A redials, three more updates.
	b := h.server("B")
	b.inMu.Lock()
	b.inbound["A"].conn.Close()
	b.inMu.Unlock()
	for i := range 3 {
		client.IAMAT(ctx(t), h.addr("A"), fmt.Sprint("new", i), "+1+1", "1")
	}
	eventually(t, 3*time.Second, func() error { return h.holds("B", "new2", mustLookup(t, a, "new2")) })
	if sent := a.metrics.resyncSent.Load() - before; sent > 3 {
		t.Fatalf("the reconnect resent %d records; B lacked at most 3", sent)
	}

	// A restarted B holds no mark: it gets the whole state.
	before = a.metrics.resyncSent.Load()
	h.stop("B")
	h.start("B")
	eventually(t, 5*time.Second, func() error { return h.holds("B", "r7", mustLookup(t, a, "r7")) })
	if sent := a.metrics.resyncSent.Load() - before; sent < n+3 {
		t.Fatalf("a restarted B got %d records of %d", sent, n+3)
	}
}

func mustLookup(t *testing.T, s *Server, client string) string {
	t.Helper()
	at, ok := s.Lookup(client)
	if !ok {
		t.Fatalf("%s holds no %s", s.name, client)
	}
	return at
}

// serveOn starts one server on ln until the test ends, and returns it once it serves.
func serveOn(t *testing.T, ln net.Listener, opts Options) *Server {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	<-srv.Ready()
	return srv
}
