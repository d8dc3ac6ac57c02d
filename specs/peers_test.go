package specs

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

var _ = Describe("Updates of every size and origin", Label("links", "ours"), func() {
	It("floods an IAMAT of 60 KB (a 30,000-byte client id and a 30,000-digit time) to every server", func(ctx SpecContext) {
		oursOnly("a 60 KB line (our --max-line is 64 KiB)")
		// Its AT line, with a diff as long as the time, is half as long again as the
		// IAMAT: a herd that caps peer lines at its client limit drops the link for ever.
		client := id("big") + "-" + strings.Repeat("x", 30000)
		tm := strings.Repeat("9", 30000)
		u, err := cluster.Update(ctx, cluster.Nodes()[0], client, "+34.068930-118.445127", tm)
		check(err, "a 60 KB IAMAT")
		_, err = cluster.AwaitDelivery(ctx, u)
		check(err, "a 60 KB IAMAT whose AT line is 90 KB")
	})

	It("stores nothing a connection posing as a neighbour sends for an origin outside the herd", Label("secret"), func(ctx SpecContext) {
		oursOnly("our peer protocol (HERD-PEER, HERD-AUTH)")
		// The neighbour is down, so its place is free; without a peer secret, a
		// connection that says it is that neighbour is heard. It still cannot speak for
		// a server the herd does not have.
		node := cluster.Nodes()[0]
		cfg := cluster.Config()
		nb := cfg.Server(node).Neighbours()[0]
		inject(ctx, chaos.Crash{Node: nb})
		client := id("mallory")
		line := fmt.Sprintf("HERD-AUTH -\nHERD-AT Mallory +0.000000000 %s +1.000000+1.000000 99999999999.000000000\n", client)
		Eventually(ctx, func() string {
			p := dialAsPeer(ctx, cluster, node, nb, hexNonce())
			return p.sendAndDrain(line)
		}).WithTimeout(10*time.Second).WithPolling(200*time.Millisecond).Should(HavePrefix("HERD-WELCOME"),
			"%s must take a peer connection from %s once %s is down (the herd under test has no peer secret)", node, nb, nb)
		for _, n := range cluster.Nodes() {
			if !cluster.Oracle().Up(n) {
				continue
			}
			rep, err := cluster.WHATSAT(ctx, n, client, "1", 1)
			check(err, "WHATSAT at ", n)
			Expect(rep.Invalid).To(BeTrue(), fmt.Sprintf(
				"no location from outside the herd: %s holds %q, sent by a connection posing as %s for origin Mallory; seed %d; artifacts in %s",
				n, rep.AT, nb, seed, specDir()))
		}
	})
})
