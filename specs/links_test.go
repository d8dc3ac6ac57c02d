package specs

import (
	"context"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

var _ = Describe("Latency with jitter on every link", Label("latency"), func() {
	It("delivers by the oracle's deadline, and not sooner than the injected latency allows", func(ctx SpecContext) {
		inject(ctx, chaos.Latency{Links: allLinks(), Latency: 200 * time.Millisecond, Jitter: 50 * time.Millisecond})
		o := cluster.Oracle()
		for _, origin := range []string{"Welsh", "Hands", "Goloman"} {
			u, err := cluster.Update(ctx, origin, id("lat"), "+34.068930-118.445127", now())
			check(err)
			got, err := cluster.AwaitDelivery(ctx, u)
			check(err)
			for target, seen := range got {
				if target == origin {
					continue
				}
				Expect(seen-u.At).To(BeNumerically(">=", o.MinDelay(origin, target)),
					"%s held the update from %s %v after it was accepted, sooner than the %v the latency toxics allow: they did not apply",
					target, origin, seen-u.At, o.MinDelay(origin, target))
			}
		}
	})
})

var _ = Describe("One-way cuts", Label("quick"), func() {
	It("still gets an update from Goloman to Hands via Wilkes when Goloman->Hands is cut", func(ctx SpecContext) {
		inject(ctx, chaos.Cut{Links: []chaos.Link{{From: "Goloman", To: "Hands"}}})
		Expect(cluster.Oracle().Hops("Goloman", "Hands")).To(Equal(2))
		update(ctx, "Goloman")
	})

	It("keeps Hands ignorant with every link into it cut, while its own updates reach the others", func(ctx SpecContext) {
		inject(ctx, chaos.Cut{Links: []chaos.Link{{From: "Goloman", To: "Hands"}, {From: "Wilkes", To: "Hands"}}})
		Expect(cluster.Oracle().MustNotReach("Welsh")).To(Equal([]string{"Hands"}))
		fromWelsh := update(ctx, "Welsh") // checks Hands does not get it
		fromHands := update(ctx, "Hands") // checks the other four do
		Expect(cluster.Oracle().MustReach("Hands")).To(HaveLen(5))
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{fromWelsh.Client: fromWelsh.AT, fromHands.Client: fromHands.AT}, 15*time.Second))
	})
})

var _ = Describe("Black holes and resets on links", Label("links"), func() {
	It("routes around a black-holed link and converges after it heals", func(ctx SpecContext) {
		inject(ctx, chaos.BlackHole{Links: []chaos.Link{{From: "Goloman", To: "Hands"}, {From: "Hands", To: "Goloman"}}})
		a := update(ctx, "Goloman")
		b := update(ctx, "Hands")
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{a.Client: a.AT, b.Client: b.AT}, 15*time.Second))
	})

	It("cuts Welsh off behind a black hole, keeps it serving, and converges after", func(ctx SpecContext) {
		inject(ctx, chaos.BlackHole{Links: []chaos.Link{{From: "Holiday", To: "Welsh"}, {From: "Welsh", To: "Holiday"}}})
		a := update(ctx, "Goloman") // must not reach Welsh
		start := time.Now()
		w := update(ctx, "Welsh") // Welsh still answers its clients
		Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{a.Client: a.AT, w.Client: w.AT}, 15*time.Second))
	})

	It("survives reset_peer on links and converges after", func(ctx SpecContext) {
		inject(ctx, chaos.ResetPeer{Links: []chaos.Link{{From: "Goloman", To: "Hands"}, {From: "Holiday", To: "Welsh"}}, After: 100 * time.Millisecond})
		a := update(ctx, "Goloman")
		b := update(ctx, "Welsh")
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{a.Client: a.AT, b.Client: b.AT}, 15*time.Second))
	})
})

var _ = Describe("Slicer and low bandwidth", Label("links"), func() {
	It("floods through links that cut every write into pieces of a few bytes", func(ctx SpecContext) {
		inject(ctx, chaos.Slicer{Links: allLinks(), AverageBytes: 3, SizeVariation: 2, Delay: 200 * time.Microsecond})
		update(ctx, "Welsh")
		update(ctx, "Hands")
	})

	It("answers commands written one byte at a time", func(ctx SpecContext) {
		addr, err := cluster.Backend().ClientAddr(ctx, "Holiday")
		check(err)
		client := id("bytes")
		out := byteAtATime(ctx, addr, "IAMAT "+client+" +34.068930-118.445127 "+now()+"\r\nWHATSAT "+client+" 5 2\n")
		lines := strings.SplitN(out, "\n", 3)
		Expect(lines[0]).To(HavePrefix("AT Holiday "))
		Expect(lines[1]).To(Equal(lines[0]), "the WHATSAT answer starts with the stored AT line")
		Expect(out).To(HaveSuffix("}\n\n"))
	})
})

// In a herd of its own: a restarted server's resync carries every client the herd holds,
// and the suite's herd holds more with every spec added before this one.
var _ = Describe("A resync over a slow link", Ordered, Label("links"), func() {
	ownHerdOf := ownHerdIn()

	It("completes a resync of many clients over a slow link", func(ctx SpecContext) {
		herd := ownHerdOf()
		crash, err := herd.Inject(ctx, chaos.Crash{Node: "Welsh"})
		check(err)
		newest := map[string]string{}
		for range 150 {
			u, err := herd.Update(ctx, "Goloman", id("bulk"), "+34.068930-118.445127", now())
			check(err)
			newest[u.Client] = u.AT
		}
		_, err = herd.Inject(ctx, chaos.Bandwidth{Links: []chaos.Link{{From: "Holiday", To: "Welsh"}}, KBps: 4})
		check(err)
		check(herd.Heal(ctx, crash)) // Welsh restarts empty and must get all 150 through 4 KB/s
		check(herd.AwaitConvergence(ctx, newest, 45*time.Second))
	})
})

// byteAtATime writes text one byte per write, half-closes, and reads the whole answer.
func byteAtATime(ctx context.Context, addr, text string) string {
	GinkgoHelper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	check(err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	for i := range len(text) {
		_, err := conn.Write([]byte{text[i]})
		check(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}
