package specs

import (
	"context"
	"slices"
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
		for _, origin := range slices.Compact([]string{graph.leaf(), graph.far(graph.leaf()), graph.hub()}) {
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

var _ = Describe("One-way cuts", Label("quick", "reachable"), func() {
	It("still gets an update across a cut direct link by its detour", func(ctx SpecContext) {
		l, ok := graph.detour()
		if !ok {
			Skip("the herd's graph is a tree: no link has a detour")
		}
		inject(ctx, chaos.Cut{Links: []chaos.Link{{From: l[0], To: l[1]}}})
		Expect(cluster.Oracle().Hops(l[0], l[1])).To(Equal(graph.hops(l[0], l[1], l)))
		update(ctx, l[0])
	})

	It("keeps a server ignorant with every link into it cut, while its own updates reach the others", func(ctx SpecContext) {
		dark := graph.hub()
		inject(ctx, chaos.Cut{Links: graph.linksInto(dark)})
		far := graph.far(dark)
		Expect(cluster.Oracle().MustNotReach(far)).To(Equal([]string{dark}))
		fromFar := update(ctx, far)   // checks dark does not get it
		fromDark := update(ctx, dark) // checks the others do
		Expect(cluster.Oracle().MustReach(dark)).To(HaveLen(len(names)))
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{fromFar.Client: fromFar.AT, fromDark.Client: fromDark.AT}, 15*time.Second))
	})
})

var _ = Describe("Black holes and resets on links", Label("links", "reachable"), func() {
	It("routes around a black-holed link and converges after it heals", func(ctx SpecContext) {
		l, ok := graph.detour()
		if !ok {
			l = graph.links()[0] // a tree: the black hole cuts it in two
		}
		inject(ctx, chaos.BlackHole{Links: both(l[0], l[1])})
		a := update(ctx, l[0])
		b := update(ctx, l[1])
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{a.Client: a.AT, b.Client: b.AT}, 15*time.Second))
	})

	It("cuts a leaf off behind black holes, keeps it serving, and converges after", func(ctx SpecContext) {
		leaf := graph.leaf()
		var holes []chaos.Link
		for _, p := range graph.adj[leaf] {
			holes = append(holes, both(leaf, p)...)
		}
		inject(ctx, chaos.BlackHole{Links: holes})
		a := update(ctx, graph.far(leaf)) // must not reach the leaf
		start := time.Now()
		w := update(ctx, leaf) // the leaf still answers its clients
		Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{a.Client: a.AT, w.Client: w.AT}, 15*time.Second))
	})

	It("survives reset_peer on links and converges after", func(ctx SpecContext) {
		leaf := graph.leaf()
		first, into := graph.links()[0], graph.linksInto(leaf)[0]
		inject(ctx, chaos.ResetPeer{Links: []chaos.Link{{From: first[0], To: first[1]}, into}, After: 100 * time.Millisecond})
		a := update(ctx, first[0])
		b := update(ctx, leaf)
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{a.Client: a.AT, b.Client: b.AT}, 15*time.Second))
	})
})

var _ = Describe("Slicer and low bandwidth", Label("links", "latency"), func() {
	It("floods through links that cut every write into pieces of a few bytes", func(ctx SpecContext) {
		inject(ctx, chaos.Slicer{Links: allLinks(), AverageBytes: 3, SizeVariation: 2, Delay: 200 * time.Microsecond})
		update(ctx, graph.leaf())
		update(ctx, graph.hub())
	})

	It("answers commands written one byte at a time", func(ctx SpecContext) {
		n := graph.at(2)
		client := id("bytes")
		out := byteAtATime(ctx, n, "IAMAT "+client+" "+here+" "+now()+"\r\nWHATSAT "+client+" 5 2\n")
		lines := strings.SplitN(out, "\n", 3)
		Expect(lines[0]).To(HavePrefix("AT " + n + " "))
		Expect(lines[1]).To(Equal(lines[0]), "the WHATSAT answer starts with the stored AT line")
		Expect(out).To(HaveSuffix("}\n\n"))
	})
})

// In a herd of its own: a restarted server's resync carries every client the herd holds,
// and the suite's herd holds more with every spec added before this one.
var _ = Describe("A resync over a slow link", Ordered, Label("links", "convergence"), func() {
	ownHerdOf := ownHerdIn()

	It("completes a resync of many clients over a slow link", func(ctx SpecContext) {
		herd := ownHerdOf()
		leaf := graph.leaf()
		crash, err := herd.Inject(ctx, chaos.Crash{Node: leaf})
		check(err)
		newest := map[string]string{}
		for range 150 {
			u, err := herd.Update(ctx, graph.far(leaf), id("bulk"), here, now())
			check(err)
			newest[u.Client] = u.AT
		}
		_, err = herd.Inject(ctx, chaos.Bandwidth{Links: graph.linksInto(leaf), KBps: 4})
		check(err)
		check(herd.Heal(ctx, crash)) // the leaf restarts empty and must get all 150 through 4 KB/s
		check(herd.AwaitConvergence(ctx, newest, 45*time.Second))
	})
})

// byteAtATime writes text one byte per write, half-closes, and reads the whole answer.
func byteAtATime(ctx context.Context, node, text string) string {
	GinkgoHelper()
	conn, err := chaos.DialNode(ctx, cluster.Backend(), node)
	check(err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	for i := range len(text) {
		_, err := conn.Write([]byte{text[i]})
		check(err)
	}
	conn.(halfCloser).CloseWrite()
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
