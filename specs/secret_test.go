package specs

import (
	"bufio"
	"context"
	"crypto/aes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
	"golang.org/x/crypto/poly1305" //nolint:staticcheck // the herd's peer MAC is Poly1305-AES
)

// peerProof is our herd's handshake proof (herd/server/peer.go, proof): an HMAC-SHA256 of
// both names and both nonces under the shared secret.
func peerProof(secret, from, to, nonceA, nonceB string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("herd-peer\x00" + from + "\x00" + to + "\x00" + nonceA + "\x00" + nonceB))
	return hex.EncodeToString(m.Sum(nil))
}

// streamMACLine is the HERD-MAC line that authenticates text as the first bytes a dialler
// sends after the handshake (herd/server/peer.go: linkKey, streamMAC). A herd that does
// not know HERD-MAC lines applies the update before it and drops the link at the line.
func streamMACLine(secret, from, to, nonceA, nonceB, text string) string {
	k := hmac.New(sha256.New, []byte(secret))
	k.Write([]byte("herd-link-key\x00dialler\x00" + from + "\x00" + to + "\x00" + nonceA + "\x00" + nonceB))
	// Poly1305-AES: the first batch's one-time key is AES-256(link key) of (0, 0), (0, 1).
	block, err := aes.NewCipher(k.Sum(nil))
	if err != nil {
		panic(err)
	}
	var key [32]byte
	key[31] = 1
	block.Encrypt(key[0:16], key[0:16])
	block.Encrypt(key[16:32], key[16:32])
	var tag [16]byte
	poly1305.Sum(&tag, []byte(text), &key)
	return "HERD-MAC " + hex.EncodeToString(tag[:]) + "\n"
}

func hexNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// fakePeer is a connection to a server's client address that claims to be a neighbour.
type fakePeer struct {
	conn      net.Conn
	r         *bufio.Reader
	nonceA    string
	challenge string
}

// dialAsPeer connects to node's client address, says "HERD-PEER from node nonceA" and
// reads the challenge.
func dialAsPeer(ctx context.Context, c *chaos.Cluster, node, from, nonceA string) *fakePeer {
	GinkgoHelper()
	conn, err := chaos.DialNode(ctx, c.Backend(), node)
	check(err, "dialling ", node, " as ", from)
	DeferCleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	p := &fakePeer{conn: conn, r: bufio.NewReader(conn), nonceA: nonceA}
	_, err = fmt.Fprintf(conn, "HERD-PEER %s %s %s\n", from, node, nonceA)
	check(err)
	line, err := p.r.ReadString('\n')
	check(err, "reading the challenge of ", node)
	f := strings.Fields(line)
	Expect(len(f) == 2 && f[0] == "HERD-CHALLENGE").To(BeTrue(),
		"a server with a peer secret challenges a peer handshake: %s answered %q to \"HERD-PEER %s %s %s\"; seed %d; artifacts in %s",
		node, line, from, node, nonceA, seed, specDir())
	p.challenge = f[1]
	return p
}

// sendAndDrain writes text, half-closes and reads what the server sends until it closes
// (or 5 s pass).
func (p *fakePeer) sendAndDrain(text string) string {
	GinkgoHelper()
	p.conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(p.conn, text) // the server may have closed already: that is fine
	p.conn.(halfCloser).CloseWrite()
	b, _ := io.ReadAll(p.r)
	return string(b)
}

// recordedHandshake finds in from's own log the last handshake it completed on its link to
// node: the nonce it sent and the proof it sent (what anyone watching that link saw; the
// log mirrors the wire).
func recordedHandshake(ctx context.Context, c *chaos.Cluster, from, node string) (nonceA, proof string) {
	GinkgoHelper()
	logs, err := c.Backend().Logs(ctx, from)
	check(err, "reading the log of ", from)
	hello := regexp.MustCompile(`HERD-PEER ` + regexp.QuoteMeta(from+" "+node) + ` ([0-9a-f]+)`)
	auth := regexp.MustCompile(`out peer:` + regexp.QuoteMeta(node) + ` "HERD-AUTH ([0-9a-f]{64})"`)
	for _, b := range logs {
		na := ""
		for _, line := range strings.Split(string(b), "\n") {
			if m := hello.FindStringSubmatch(line); m != nil {
				na = m[1]
			} else if m := auth.FindStringSubmatch(line); m != nil && na != "" {
				nonceA, proof, na = na, m[1], ""
			}
		}
	}
	Expect(proof).NotTo(BeEmpty(), "no completed handshake %s->%s in %s's log to replay; seed %d; artifacts in %s", from, node, from, seed, specDir())
	return nonceA, proof
}

var _ = Describe("The peer secret", Ordered, Label("secret", "description", "ours"), func() {
	var other *chaos.Cluster
	var secret string
	// The target is the hub, the fake peer poses as one of its neighbours: an update the
	// hub took "from" it would go on to the hub's other neighbours and everywhere.
	var target, from string
	BeforeAll(func(ctx SpecContext) {
		oursOnly("the peer secret")
		spec, err := chaos.LoadHerdSpec("testdata/herd-from-flags.yaml")
		check(err)
		secret = spec.Env["HERD_SECRET"]
		Expect(secret).NotTo(BeEmpty(), "testdata/herd-from-flags.yaml sets HERD_SECRET")
		// Our herd with a secret; a mutant of it when the suite tests one (HERD_OVERLAY).
		opts := herdOptions{herd: spec, overlay: os.Getenv("HERD_OVERLAY")}
		if os.Getenv("HERD_BACKEND") == "sim" { // the herd compiled in, with the description's environment
			opts = herdOptions{env: spec.Env}
		}
		other = startHerd(ctx, opts)
		g := newGraph(other.Config())
		target = g.hub()
		from = g.adj[target][0]
		settle(ctx, other) // every link up, its handshake done and logged
	}, NodeTimeout(3*time.Minute))
	AfterEach(func(ctx SpecContext) {
		if CurrentSpecReport().Failed() {
			saveArtifacts(ctx, other, specDir()+"/secret-herd")
		}
		check(other.HealAll(ctx))
	}, NodeTimeout(time.Minute))

	herdAT := func(clientID string) string {
		return fmt.Sprintf("HERD-AT %s +0.000000000 %s +1+1 %s\n", from, clientID, now())
	}

	It("stores and floods nothing from a connection that does not prove the secret", func(ctx SpecContext) {
		// An earlier handshake whose nonces are spent: its valid proof is replayed below.
		old := dialAsPeer(ctx, other, target, from, hexNonce())
		oldProof := peerProof(secret, from, target, old.nonceA, old.challenge)
		old.conn.Close()
		// The real neighbour's last handshake, as an eavesdropper on the link saw it.
		wireNonce, wireProof := recordedHandshake(ctx, other, from, target)

		attempts := []struct {
			name  string
			nonce string // "" for a fresh one
			auth  func(p *fakePeer) string
		}{
			{"a wrong proof", "", func(p *fakePeer) string {
				return "HERD-AUTH " + peerProof("not-the-secret", from, target, p.nonceA, p.challenge) + "\n"
			}},
			{"64 hex digits of nothing", "", func(*fakePeer) string { return "HERD-AUTH " + strings.Repeat("0", 64) + "\n" }},
			{"an empty proof", "", func(*fakePeer) string { return "HERD-AUTH \n" }},
			{"no proof field", "", func(*fakePeer) string { return "HERD-AUTH\n" }},
			{"the placeholder '-'", "", func(*fakePeer) string { return "HERD-AUTH -\n" }},
			{"no auth line at all", "", func(*fakePeer) string { return "" }},
			{"a proof replayed from an earlier handshake", "", func(*fakePeer) string { return "HERD-AUTH " + oldProof + "\n" }},
			{"a proof replayed with the earlier nonce again", old.nonceA, func(*fakePeer) string { return "HERD-AUTH " + oldProof + "\n" }},
			{"a proof for another link (names swapped)", "", func(p *fakePeer) string {
				return "HERD-AUTH " + peerProof(secret, target, from, p.nonceA, p.challenge) + "\n"
			}},
			{"a proof with the nonces swapped", "", func(p *fakePeer) string {
				return "HERD-AUTH " + peerProof(secret, from, target, p.challenge, p.nonceA) + "\n"
			}},
			{"the real neighbour's proof recorded from its link, replayed with its nonce", wireNonce, func(*fakePeer) string { return "HERD-AUTH " + wireProof + "\n" }},
		}
		clients := map[string]string{}
		for _, a := range attempts {
			nonce := a.nonce
			if nonce == "" {
				nonce = hexNonce()
			}
			p := dialAsPeer(ctx, other, target, from, nonce)
			c := id("forged")
			clients[c] = a.name
			got := p.sendAndDrain(a.auth(p) + herdAT(c))
			GinkgoWriter.Printf("%s: %q\n", a.name, got)
			Expect(got).NotTo(ContainSubstring("HERD-WELCOME"),
				"with a peer secret set, the handshake of a connection that does not prove it (%s) is refused: %s welcomed it (%q); seed %d; artifacts in %s",
				a.name, target, got, seed, specDir())
		}
		// Links are FIFO: a forged update stored and flooded would arrive before this one.
		barrier, err := other.Update(ctx, target, id("barrier"), here, now())
		check(err)
		_, err = other.AwaitDelivery(ctx, barrier)
		check(err)
		for c, how := range clients {
			for _, n := range other.Nodes() {
				rep, err := other.WHATSAT(ctx, n, c, "1", 1)
				check(err)
				Expect(rep.Invalid).To(BeTrue(),
					"with a peer secret set, a connection that does not prove it (%s) stores and floods nothing: %s posed as %s at %s, and %s holds %q; seed %d; artifacts in %s",
					how, c, from, target, n, strings.TrimSpace(rep.Raw), seed, specDir())
			}
		}
	})

	It("stores and floods an update from a connection that proves the secret (the control)", func(ctx SpecContext) {
		// The real neighbour's link is cut meanwhile: its reconnection would replace this
		// connection (a server keeps the newest connection of each neighbour).
		_, err := other.Inject(ctx, chaos.Cut{Links: []chaos.Link{{From: from, To: target}}})
		check(err)
		p := dialAsPeer(ctx, other, target, from, hexNonce())
		p.conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.WriteString(p.conn, "HERD-AUTH "+peerProof(secret, from, target, p.nonceA, p.challenge)+"\n")
		check(err)
		welcome, err := p.r.ReadString('\n')
		check(err, "reading the welcome")
		Expect(welcome).To(HavePrefix("HERD-WELCOME "+target), "a valid proof is welcomed; seed %d; artifacts in %s", seed, specDir())
		c := id("proven")
		line := herdAT(c)
		_, err = io.WriteString(p.conn, line+streamMACLine(secret, from, target, p.nonceA, p.challenge, line))
		check(err)
		at := strings.TrimSuffix(strings.TrimPrefix(line, "HERD-"), "\n")
		check(other.AwaitConvergence(ctx, map[string]string{c: at}, 10*time.Second),
			"the control: an update from a neighbour that proved the secret is stored and flooded (else the spec above proves nothing)")
		p.conn.Close()
	})
})
