package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/proto"
	"github.com/herdchaos/herd/herd/topology"
)

// FuzzServer drives one whole server with a sequence of operations decoded from the
// input: client lines over several connections, written in random pieces; a neighbour's
// link (handshake, updates, pings, garbage); closes. It checks that the server never
// panics or hangs, answers every complete client line with exactly one reply, in order,
// and that every reply, and every line it sends to a neighbour, parses with herd/proto.
//
//	go test ./herd/server -run '^$' -fuzz FuzzServer -fuzztime 5m
func FuzzServer(f *testing.F) {
	f.Add([]byte("\x00\x00\x01\x00\x02\x03\x04\x00\x04\x01\x05\x00\x00\x02\x10"))
	f.Add([]byte("\x04\x00\x04\x01\x04\x02\x00\x01\x00\x06\x01\x07\x00\x00"))
	f.Add([]byte("\x00\x00\x00\x03\x01\x00\x01\x02\x02\x05\x01\x06\x00\x07\x03\x01"))
	f.Add([]byte("IAMAT a +1+1 1\nWHATSAT a 10 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		runFuzzServer(t, data)
	})
}

// fuzzNeighbour is C, a neighbour the server under test dials: it completes the
// handshake and checks every line it is sent. One per process, shared by the runs.
var fuzzNeighbour struct {
	once sync.Once
	addr string
	mu   sync.Mutex
	errs []string
}

func startFuzzNeighbour(t *testing.T) string {
	fuzzNeighbour.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fuzzNeighbour.addr = ln.Addr().String()
		fail := func(format string, args ...any) {
			fuzzNeighbour.mu.Lock()
			fuzzNeighbour.errs = append(fuzzNeighbour.errs, fmt.Sprintf(format, args...))
			fuzzNeighbour.mu.Unlock()
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					r := bufio.NewReader(c)
					if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "HERD-PEER A C ") {
						return
					}
					io.WriteString(c, "HERD-CHALLENGE n\n")
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					io.WriteString(c, "HERD-WELCOME C\n")
					for {
						l, err := r.ReadString('\n')
						if err != nil {
							return
						}
						line := strings.TrimSuffix(l, "\n")
						f := proto.Fields(nil, line)
						switch {
						case len(f) > 0 && f[0] == proto.PeerAT:
							u, err := proto.ParsePeerLine(line, f)
							if err != nil || u.AT == "" {
								fail("the server sent an invalid or non-canonical update %q: %v", line, err)
							} else if u.Origin != "A" && u.Origin != "B" && u.Origin != "C" {
								fail("the server sent an update with origin %q", u.Origin)
							}
						case len(f) == 4 && f[0] == proto.PeerPing:
						default:
							fail("the server sent %q", line)
						}
					}
				}()
			}
		}()
	})
	return fuzzNeighbour.addr
}

// fuzzInput hands out the fuzz input a byte or a piece at a time (zeros once it is spent).
type fuzzInput struct{ b []byte }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

// bytes is up to max bytes of input, none of them '\n'.
func (in *fuzzInput) bytes(max int) string {
	n := min(int(in.byte())%(max+1), len(in.b))
	s := strings.ReplaceAll(string(in.b[:n]), "\n", " ")
	in.b = in.b[n:]
	return s
}

func (in *fuzzInput) pick(choices ...string) string {
	i := int(in.byte())
	if i%(len(choices)+1) == len(choices) {
		return in.bytes(40) // raw bytes instead of a choice
	}
	return choices[i%(len(choices)+1)]
}

func (in *fuzzInput) clientLine() string {
	id := in.pick("a", "b", "kiwi.cs.ucla.edu", "\xff\x01", "HERD-AT")
	loc := in.pick("+34.068930-118.445127", "+1+1", "-90+180", "+90.0-180.0", "+91+0", "+1")
	tm := in.pick("1520023934.918963997", "-1.999999999", "0", "-0", "99999999999999999999.5", "1e5", "+7.", "1.0000000005")
	ws := in.pick(" ", "\t", "  ", " \v\f ")
	var line string
	switch in.byte() % 6 {
	case 0, 1:
		line = "IAMAT" + ws + id + ws + loc + ws + tm
	case 2:
		line = "WHATSAT" + ws + id + ws + in.pick("10", "50", "0", "50.0001", "1.5") + ws + in.pick("1", "20", "0", "21", "+3")
	case 3:
		line = in.bytes(60)
	case 4:
		line = ws
	default:
		line = "IAMAT" + ws + id + ws + loc
	}
	if strings.HasPrefix(line, proto.PeerHello) {
		line = "x" + line // a client line, never a handshake
	}
	return line + in.pick("\n", "\r\n", "\r\r\n")
}

func (in *fuzzInput) peerLine() string {
	switch in.byte() % 4 {
	case 0, 1:
		return strings.Join([]string{proto.PeerAT, in.pick("A", "B", "C", "Mallory"),
			in.pick("+0.000000001", "-1.500000000", "+1.5", "0"), in.pick("a", "b", "p1", "p2"),
			in.pick("+1+1", "+34.068930-118.445127", "+99+0"), in.pick("1", "2", "99999999999", "-5.5", "x")}, " ") + "\n"
	case 2:
		return "HERD-PING " + in.pick("1", "2", "x") + " inst " + in.pick("0", "5", "-1") + "\n"
	}
	return in.bytes(40) + "\n"
}

// fuzzClient is one client connection of a run: what was written and what came back.
type fuzzClient struct {
	conn net.Conn
	sent []byte // every byte written
	done int    // bytes of sent whose complete lines were checked

	mu   sync.Mutex
	out  []byte // what the server sent, not yet checked
	eof  bool
	read chan struct{} // a signal after each read
}

func runFuzzServer(t *testing.T, data []byte) {
	neighbour := startFuzzNeighbour(t)
	cfg := topology.Build([]string{"A", "B", "C"}, [][2]string{{"A", "B"}, {"A", "C"}},
		func(n string) string {
			if n == "C" {
				return neighbour
			}
			return "127.0.0.1:1" // B is only ever the fuzz input
		}, func(string) string { return "127.0.0.1:0" })
	srv, err := New(Options{Name: "A", Config: cfg, Logger: quiet(), MaxLineBytes: 1024,
		Heartbeat: time.Second, DeadAfter: 5 * time.Second, PlacesTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.ServeListener(ctx, ln) }()
	<-srv.Ready()

	var handlers sync.WaitGroup
	open := func() net.Conn {
		server, cl := net.Pipe()
		handlers.Go(func() { srv.handle(ctx, server, false) })
		return cl
	}
	deadline := func() time.Time { return time.Now().Add(5 * time.Second) }

	var clients [3]*fuzzClient
	dial := func(k int) *fuzzClient {
		if clients[k] == nil {
			c := &fuzzClient{conn: open(), read: make(chan struct{}, 1)}
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.conn.Read(buf)
					c.mu.Lock()
					c.out = append(c.out, buf[:n]...)
					c.eof = err != nil
					c.mu.Unlock()
					select {
					case c.read <- struct{}{}:
					default:
					}
					if err != nil {
						return
					}
				}
			}()
			clients[k] = c
		}
		return clients[k]
	}
	// take waits for the next reply bytes: a line, or with json the AT line, the JSON
	// and the blank line of a WHATSAT.
	next := func(c *fuzzClient, what string) string {
		until := deadline()
		for {
			c.mu.Lock()
			if i := bytes.IndexByte(c.out, '\n'); i >= 0 {
				line := string(c.out[:i+1])
				if strings.HasPrefix(line, "AT ") && what == "whatsat" {
					if j := bytes.Index(c.out, []byte("\n\n")); j >= 0 {
						line = string(c.out[:j+2])
						c.out = c.out[j+2:]
						c.mu.Unlock()
						return line
					}
				} else {
					c.out = c.out[i+1:]
					c.mu.Unlock()
					return line
				}
			}
			eof := c.eof
			c.mu.Unlock()
			if eof {
				t.Fatalf("the server closed the connection before answering a %s line (sent %q)", what, c.sent)
			}
			select {
			case <-c.read:
			case <-time.After(time.Until(until)):
				t.Fatalf("no answer within 5s to a %s line (sent %q)", what, c.sent)
			}
		}
	}
	// check reads the replies to every complete line written since the last check.
	check := func(c *fuzzClient) {
		end := bytes.LastIndexByte(c.sent, '\n') + 1
		if end <= c.done {
			return
		}
		for _, raw := range strings.SplitAfter(string(c.sent[c.done:end]), "\n") {
			if raw == "" {
				continue
			}
			line := proto.TrimLine(raw)
			cmd, _ := proto.ParseCommand(line, nil)
			switch cmd.Kind {
			case proto.Blank:
			case proto.Invalid:
				if got := next(c, "invalid"); got != proto.FormatInvalid(line) {
					t.Fatalf("%q answered %q", line, got)
				}
			case proto.IAmAt:
				got := next(c, "iamat")
				checkAT(t, line, strings.TrimSuffix(got, "\n"))
				if f := strings.Fields(got); len(f) != 6 || f[1] != "A" || f[3] != cmd.IAMAT.Client || f[4] != cmd.IAMAT.Location.Raw || f[5] != cmd.IAMAT.Time.Raw {
					t.Fatalf("%q answered %q", line, got)
				}
			case proto.WhatsAt:
				got := next(c, "whatsat")
				if got == proto.FormatInvalid(line) {
					break // an unknown client
				}
				at, body, _ := strings.Cut(got, "\n")
				checkAT(t, line, at)
				body = strings.TrimSuffix(body, "\n\n")
				if !json.Valid([]byte(body)) {
					t.Fatalf("%q answered with invalid JSON %q", line, body)
				}
			}
		}
		c.done = end
	}
	write := func(c *fuzzClient, text string, in *fuzzInput) bool {
		for text != "" {
			n := min(len(text), 1+int(in.byte())%32)
			c.conn.SetWriteDeadline(deadline())
			if _, err := io.WriteString(c.conn, text[:n]); err != nil {
				t.Fatalf("write: %v (the server stopped reading)", err)
			}
			c.sent = append(c.sent, text[:n]...)
			text = text[n:]
		}
		return true
	}
	closeClient := func(k int) {
		if c := clients[k]; c != nil {
			check(c)
			c.conn.Close()
			clients[k] = nil
		}
	}

	// The neighbour B's link, over a pipe: handshake, then lines; what comes back must be
	// pongs. The server may refuse or drop it at any time.
	var peer net.Conn
	var peerReader sync.WaitGroup
	peerErr := make(chan string, 1)
	openPeer := func() {
		peer = open()
		peer.SetDeadline(deadline())
		r := bufio.NewReader(peer)
		io.WriteString(peer, "HERD-PEER B A n1\n")
		if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "HERD-CHALLENGE ") {
			t.Fatalf("hello answered %q %v", l, err)
		}
		io.WriteString(peer, "HERD-AUTH -\n")
		l, err := r.ReadString('\n')
		if err != nil || (!strings.HasPrefix(l, "HERD-WELCOME A") && l != "? HERD-AUTH -\n") {
			t.Fatalf("auth answered %q %v", l, err)
		}
		peer.SetDeadline(time.Time{})
		peerReader.Go(func() {
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if f := strings.Fields(l); len(f) != 2 || f[0] != proto.PeerPong {
					select {
					case peerErr <- l:
					default:
					}
				}
			}
		})
	}

	in := &fuzzInput{b: data}
	for ops := 0; len(in.b) > 0 && ops < 200; ops++ {
		switch op := in.byte() % 8; op {
		case 0, 1, 2: // a client line, in pieces
			c := dial(int(in.byte()) % 3)
			write(c, in.clientLine(), in)
			check(c)
		case 3: // part of a line, finished by a later one
			c := dial(int(in.byte()) % 3)
			line := in.clientLine()
			write(c, line[:len(line)/2], in)
			check(c)
		case 4, 5: // the neighbour's link
			if peer == nil {
				openPeer()
				break
			}
			peer.SetWriteDeadline(deadline())
			io.WriteString(peer, in.peerLine()) // the server may have dropped it
		case 6:
			closeClient(int(in.byte()) % 3)
		case 7:
			if peer != nil {
				peer.Close()
				peerReader.Wait()
				peer = nil
			}
		}
	}
	for k := range clients {
		closeClient(k)
	}
	if peer != nil {
		peer.Close()
	}
	peerReader.Wait()
	select {
	case l := <-peerErr:
		t.Fatalf("the server sent a peer %q", l)
	default:
	}
	cancel()
	stopped := make(chan struct{})
	go func() { handlers.Wait(); <-served; close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop within 5s")
	}
	fuzzNeighbour.mu.Lock()
	errs := fuzzNeighbour.errs
	fuzzNeighbour.errs = nil
	fuzzNeighbour.mu.Unlock()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
}

// checkAT checks that an AT line parses as the herd's updates do.
func checkAT(t *testing.T, line, at string) {
	t.Helper()
	f := proto.Fields(nil, "HERD-"+at)
	if _, err := proto.ParsePeerLine("HERD-"+at, f); err != nil {
		t.Fatalf("%q answered %q, which does not parse: %v", line, at, err)
	}
}
