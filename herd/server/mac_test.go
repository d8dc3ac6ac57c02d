package server

import (
	"bufio"
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/proto"
	"github.com/herdchaos/herd/herd/topology"
	"golang.org/x/crypto/poly1305" //nolint:staticcheck // the herd's peer MAC is Poly1305-AES
)

// relay is a man in the middle on the link A dials to B: it forwards B's lines to A as
// they are, and A's lines through tamper, line by line. Connections after the first are
// closed at once unless later is set (then they are forwarded through tamper too). It
// records every line in both directions.
type relay struct {
	ln     net.Listener
	target string
	// tamper returns what to forward for a line (with its "\n") A sent on connection n
	// (1 for the first); nil for the relay as a plain forwarder.
	tamper func(n int, line string) []string
	later  bool

	mu    sync.Mutex
	n     int
	conns []net.Conn
	toB   []string // the lines A sent, as they came
	toA   []string // the lines B sent
	wg    sync.WaitGroup
}

func (r *relay) start(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.ln = ln
	r.wg.Go(func() {
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.n++
			n := r.n
			r.conns = append(r.conns, a)
			r.mu.Unlock()
			if n > 1 && !r.later {
				a.Close()
				continue
			}
			b, err := net.Dial("tcp", r.target)
			if err != nil {
				a.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, b)
			r.mu.Unlock()
			r.wg.Go(func() { r.pipe(b, a, &r.toA, nil, n) })
			r.wg.Go(func() { r.pipe(a, b, &r.toB, r.tamper, n) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.conns {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
}

// pipe forwards the lines from src to dst, recording them, until either end closes.
func (r *relay) pipe(src, dst net.Conn, record *[]string, tamper func(int, string) []string, n int) {
	defer src.Close()
	defer dst.Close()
	br := bufio.NewReader(src)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		r.mu.Lock()
		*record = append(*record, line)
		r.mu.Unlock()
		out := []string{line}
		if tamper != nil {
			out = tamper(n, line)
		}
		for _, l := range out {
			if _, err := io.WriteString(dst, l); err != nil {
				return
			}
		}
	}
}

// lines returns a copy of what was recorded one way.
func (r *relay) lines(toB bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if toB {
		return append([]string(nil), r.toB...)
	}
	return append([]string(nil), r.toA...)
}

// relayedPair starts servers A and B linked to each other, with rel on the connection A
// dials to B (B dials A directly).
func relayedPair(t *testing.T, opts Options, rel *relay) *testHerd {
	t.Helper()
	lns := map[string]net.Listener{}
	listen := map[string]string{}
	for _, n := range []string{"A", "B"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[n], listen[n] = ln, ln.Addr().String()
	}
	rel.target = listen["B"]
	rel.start(t)
	dial := map[string]string{"A": listen["A"], "B": rel.ln.Addr().String()}
	cfg := topology.Build([]string{"A", "B"}, [][2]string{{"A", "B"}}, func(n string) string { return dial[n] }, func(n string) string { return listen[n] })
	h := &testHerd{t: t, cfg: cfg, logDir: t.TempDir(), opts: opts, running: map[string]*runningServer{}, first: lns}
	h.start("A")
	h.start("B")
	t.Cleanup(func() {
		h.stop("A")
		h.stop("B")
	})
	eventually(t, 3*time.Second, func() error {
		if !h.server("A").PeerUp("B") {
			return errors.New("link A->B (through the relay) not up")
		}
		return nil
	})
	return h
}

// logHas waits until server's log has a line containing want.
func (h *testHerd) logHas(t *testing.T, server, want string) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(h.logDir, server+".log"))
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("no %q in %s's log yet", want, server)
		}
		return nil
	})
}

// refuses waits until server logs a link dropped for want, or stores one of the clients
// (what a server that applied tampered lines would do); it fails in the second case, and
// if server holds any of them once the drop is logged.
func (h *testHerd) refuses(t *testing.T, server, want string, clients ...string) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		for _, c := range clients {
			if _, ok := h.server(server).Lookup(c); ok {
				return nil
			}
		}
		b, _ := os.ReadFile(filepath.Join(h.logDir, server+".log"))
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("no %q in %s's log yet, and none of %q stored", want, server, clients)
		}
		return nil
	})
	h.lacks(t, server, clients...)
	h.logHas(t, server, want)
}

// lacks fails the test if server holds any of the clients.
func (h *testHerd) lacks(t *testing.T, server string, clients ...string) {
	t.Helper()
	for _, c := range clients {
		if at, ok := h.server(server).Lookup(c); ok {
			t.Fatalf("%s stored %q from a link that was tampered with", server, at)
		}
	}
}

var macSecret = []byte("mac-test-secret")

// With a secret every link carries HERD-MAC lines, and a herd floods and converges as
// without one, a restarted server included (its resync and the marks go over verified
// lines). It fails if a sender stops sending MACs: nothing would ever be applied.
func TestWithASecretAHerdOfThreeFloodsAndConverges(t *testing.T) {
	names := []string{"A", "B", "C"}
	h := startHerd(t, names, [][2]string{{"A", "B"}, {"B", "C"}}, Options{Secret: macSecret, Heartbeat: 20 * time.Millisecond})
	for _, origin := range names {
		at, err := client.IAMAT(ctx(t), h.addr(origin), "phone-"+origin, "+34.068930-118.445127", "1520023934.918963997")
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			eventually(t, 3*time.Second, func() error { return h.holds(n, "phone-"+origin, at) })
		}
	}
	// A restarted C gets what it missed from B, over a new connection with new keys.
	h.stop("C")
	at, _ := client.IAMAT(ctx(t), h.addr("A"), "while-C-was-down", "+1+1", "2")
	eventually(t, 3*time.Second, func() error { return h.holds("B", "while-C-was-down", at) })
	h.start("C")
	eventually(t, 5*time.Second, func() error { return h.holds("C", "while-C-was-down", at) })
	b, _ := os.ReadFile(filepath.Join(h.logDir, "B.log"))
	for _, want := range []string{`out peer:C "HERD-MAC `, `in peer:C "HERD-MAC `, `"HERD-MAC `} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("no %s in B's log", want)
		}
	}
	if strings.Contains(string(b), "dropped: bad") {
		t.Fatal("a link was dropped for a bad MAC in a herd nobody tampered with")
	}
}

// A man in the middle that alters one byte of an update (into another valid update) gets
// nothing stored, and the link is dropped and logged.
func TestAManInTheMiddleAlteringAnUpdateGetsNothingStored(t *testing.T) {
	altered := make(chan string, 1)
	rel := &relay{tamper: func(n int, line string) []string {
		if strings.HasPrefix(line, proto.PeerAT+" ") && strings.Contains(line, " victim ") {
			b := []byte(line)
			b[len(b)-2]++ // the time's last digit: "...7" becomes "...8"
			select {
			case altered <- string(b):
			default:
			}
			return []string{string(b)}
		}
		return []string{line}
	}}
	h := relayedPair(t, Options{Secret: macSecret}, rel)
	if _, err := client.IAMAT(ctx(t), h.addr("A"), "victim", "+1+1", "1520023934.7"); err != nil {
		t.Fatal(err)
	}
	h.refuses(t, "B", "dropped: bad HERD-MAC", "victim")
	t.Logf("the relay sent %q", <-altered)
}

// A man in the middle that injects an update of its own gets nothing stored, and the link
// is dropped and logged.
func TestAManInTheMiddleInjectingAnUpdateGetsNothingStored(t *testing.T) {
	injected := false
	rel := &relay{tamper: func(n int, line string) []string {
		if strings.HasPrefix(line, proto.PeerPing+" ") && !injected {
			injected = true
			return []string{"HERD-AT A +0.000000000 injected +1+1 4000000000\n", line}
		}
		return []string{line}
	}}
	h := relayedPair(t, Options{Secret: macSecret, Heartbeat: 20 * time.Millisecond}, rel)
	h.refuses(t, "B", "dropped: bad HERD-MAC", "injected")
}

// A man in the middle that drops every HERD-MAC line gets nothing applied, and once more
// than a bounded number of bytes came without one the link is dropped and logged.
func TestARelayDroppingTheMACLinesGetsNothingApplied(t *testing.T) {
	rel := &relay{tamper: func(n int, line string) []string {
		if strings.HasPrefix(line, proto.PeerMAC+" ") {
			return nil
		}
		return []string{line}
	}}
	// Short lines make the bound (macEvery and one line) small: a few hundred updates.
	h := relayedPair(t, Options{Secret: macSecret, MaxLineBytes: 1024}, rel)
	first, err := client.IAMAT(ctx(t), h.addr("A"), "u0", "+1+1", "1")
	if err != nil {
		t.Fatal(err)
	}
	// B has read u0's line and a ping after it (each with a HERD-MAC the relay dropped),
	// and applied nothing.
	h.logHas(t, "B", `in peer:A/`)
	h.logHas(t, "B", "HERD-"+first)
	eventually(t, 5*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(h.logDir, "B.log"))
		_, after, _ := strings.Cut(string(b), "HERD-"+first)
		if !strings.Contains(after, `"HERD-PING `) {
			return errors.New("no ping after u0 in B's log yet")
		}
		return nil
	})
	h.lacks(t, "B", "u0")
	const n = 1000 // about 45 KB of lines: over macEvery (16 KB) and a peer line (2 KB)
	clients := []string{"u0"}
	for i := 1; i < n; i++ {
		clients = append(clients, fmt.Sprint("u", i))
		if _, err := client.IAMAT(ctx(t), h.addr("A"), clients[i], "+1+1", "1"); err != nil {
			t.Fatal(err)
		}
	}
	h.refuses(t, "B", "without a HERD-MAC", clients...)
}

// A man in the middle that removes a whole batch (an update and its HERD-MAC) makes the
// next MAC fail: the next update is not applied either, and the link is dropped.
func TestARelayRemovingABatchGetsTheNextOneRefused(t *testing.T) {
	var mu sync.Mutex
	removed := 0 // 1: u1's line removed, 2: its MAC too
	rel := &relay{tamper: func(n int, line string) []string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case removed == 0 && strings.HasPrefix(line, proto.PeerAT+" "):
			removed = 1
			return nil
		case removed == 1 && strings.HasPrefix(line, proto.PeerMAC+" "):
			removed = 2
			return nil
		}
		return []string{line}
	}}
	h := relayedPair(t, Options{Secret: macSecret}, rel)
	if _, err := client.IAMAT(ctx(t), h.addr("A"), "u1", "+1+1", "1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if removed < 2 {
			return errors.New("the relay has not removed u1's batch yet")
		}
		return nil
	})
	if _, err := client.IAMAT(ctx(t), h.addr("A"), "u2", "+1+1", "1"); err != nil {
		t.Fatal(err)
	}
	h.refuses(t, "B", "dropped: bad HERD-MAC", "u1", "u2")
}

// Without a secret nothing changes on the wire: no HERD-MAC line either way (and with
// one, both ways carry them: the control).
func TestWithoutASecretNoMACGoesOnTheWire(t *testing.T) {
	for _, secret := range [][]byte{nil, macSecret} {
		t.Run(fmt.Sprintf("secret=%t", secret != nil), func(t *testing.T) {
			rel := &relay{}
			h := relayedPair(t, Options{Secret: secret, Heartbeat: 20 * time.Millisecond}, rel)
			at, err := client.IAMAT(ctx(t), h.addr("A"), "x", "+1+1", "1")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 3*time.Second, func() error { return h.holds("B", "x", at) })
			count := func(lines []string, prefix string) int {
				k := 0
				for _, l := range lines {
					if strings.HasPrefix(l, prefix) {
						k++
					}
				}
				return k
			}
			eventually(t, 3*time.Second, func() error {
				if p, q := count(rel.lines(true), proto.PeerPing), count(rel.lines(false), proto.PeerPong); p < 3 || q < 3 {
					return fmt.Errorf("%d pings and %d pongs on the wire so far", p, q)
				}
				return nil
			})
			toB, toA := count(rel.lines(true), proto.PeerMAC), count(rel.lines(false), proto.PeerMAC)
			if secret == nil && toB+toA != 0 {
				t.Fatalf("without a secret, %d HERD-MAC lines A->B and %d B->A", toB, toA)
			}
			if secret != nil && (toB < 3 || toA < 3) {
				t.Fatalf("with a secret, only %d HERD-MAC lines A->B and %d B->A", toB, toA)
			}
		})
	}
}

// The wire format spelled out, as a peer written from the description in peer.go must
// speak it (the specs' fake peers do): the listener's welcome is followed by the tag of
// the welcome line, batch 0 under its key; a dialler's updates are applied once the tag of
// their batch follows them, and not before; each batch has the one-time key of its index.
func TestTheMACWireFormatAsDocumented(t *testing.T) {
	cfg := topology.Build([]string{"A", "B"}, [][2]string{{"A", "B"}}, func(string) string { return "127.0.0.1:1" }, func(string) string { return "127.0.0.1:1" })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv := serveOn(t, ln, Options{Name: "B", Config: cfg, Logger: quiet(), Secret: macSecret, LogDir: dir})

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	hmacHex := func(key []byte, data string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return hex.EncodeToString(m.Sum(nil))
	}
	const na = "0123456789abcdef"
	io.WriteString(conn, "HERD-PEER A B "+na+"\n")
	challenge, _ := r.ReadString('\n')
	nb := strings.TrimPrefix(strings.TrimSuffix(challenge, "\n"), "HERD-CHALLENGE ")
	io.WriteString(conn, "HERD-AUTH "+hmacHex(macSecret, "herd-peer\x00A\x00B\x00"+na+"\x00"+nb)+"\n")
	key := func(dir string) []byte {
		m := hmac.New(sha256.New, macSecret)
		m.Write([]byte("herd-link-key\x00" + dir + "\x00A\x00B\x00" + na + "\x00" + nb))
		return m.Sum(nil)
	}
	// Poly1305-AES: batch seq's one-time key is AES-256(link key) of (seq, 0) and (seq, 1).
	batchTag := func(key []byte, seq uint64, data string) string {
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		var k [32]byte
		binary.BigEndian.PutUint64(k[0:8], seq)
		binary.BigEndian.PutUint64(k[16:24], seq)
		k[31] = 1
		block.Encrypt(k[0:16], k[0:16])
		block.Encrypt(k[16:32], k[16:32])
		var tag [16]byte
		poly1305.Sum(&tag, []byte(data), &k)
		return hex.EncodeToString(tag[:])
	}
	welcome, _ := r.ReadString('\n')
	mac, _ := r.ReadString('\n')
	if welcome != "HERD-WELCOME B\n" || mac != "HERD-MAC "+batchTag(key("listener"), 0, welcome)+"\n" {
		t.Fatalf("welcome %q then %q", welcome, mac)
	}
	go io.Copy(io.Discard, r) // the pongs and their MACs

	sent := ""
	send := func(lines ...string) {
		for _, l := range lines {
			sent += l
			if _, err := io.WriteString(conn, l); err != nil {
				t.Fatal(err)
			}
		}
	}
	send("HERD-AT A +0.000000001 first +1+1 1\n", "HERD-AT A +0.000000001 second +1+1 1\n")
	// Not applied before their MAC: B has read the lines (they are in its log) and holds
	// neither.
	eventually(t, 3*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(dir, "B.log"))
		if !strings.Contains(string(b), `in peer:A/c1 "HERD-AT A +0.000000001 second +1+1 1"`) {
			return errors.New("B has not read the updates yet")
		}
		return nil
	})
	for _, c := range []string{"first", "second"} {
		if at, ok := srv.Lookup(c); ok {
			t.Fatalf("B applied %q before its MAC", at)
		}
	}
	send("HERD-MAC " + batchTag(key("dialler"), 0, sent) + "\n")
	eventually(t, 3*time.Second, func() error {
		for _, c := range []string{"first", "second"} {
			if _, ok := srv.Lookup(c); !ok {
				return fmt.Errorf("B lacks %s after its MAC", c)
			}
		}
		return nil
	})
	// The next batch is tagged under the next key, and covers only what follows.
	third := "HERD-AT A +0.000000001 third +1+1 1\n"
	send(third, "HERD-MAC "+batchTag(key("dialler"), 1, third)+"\n")
	eventually(t, 3*time.Second, func() error {
		if _, ok := srv.Lookup("third"); !ok {
			return errors.New("B lacks third after its MAC")
		}
		return nil
	})
	// A batch tagged under another batch's key (a replay of its place) is refused.
	fourth := "HERD-AT A +0.000000001 fourth +1+1 1\n"
	send(fourth, "HERD-MAC "+batchTag(key("dialler"), 1, fourth)+"\n")
	eventually(t, 3*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(dir, "B.log"))
		if !strings.Contains(string(b), "tampered") {
			return errors.New("B has not dropped the link yet")
		}
		return nil
	})
	if at, ok := srv.Lookup("fourth"); ok {
		t.Fatalf("B applied %q under another batch's tag", at)
	}
}
