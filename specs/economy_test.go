package specs

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// peerMessages sums herd_peer_messages_sent_total over every server.
func peerMessages(ctx context.Context) (int64, bool) {
	GinkgoHelper()
	total, ok, err := chaos.PeerMessages(ctx, cluster.Backend(), names)
	check(err, "reading the servers' metrics")
	return total, ok
}

var _ = Describe("Flooding economy", Label("economy"), func() {
	It("sends at most 2E-N+1 peer messages per update, so duplicates are suppressed", func(ctx SpecContext) {
		before, ok := peerMessages(ctx)
		if !ok {
			Skip("the herd under test exports no herd_peer_messages_sent_total")
		}
		const updates = 20
		var sent []chaos.Accepted
		for i := range updates {
			u, err := cluster.Update(ctx, names[i%len(names)], id("economy"), "+34.068930-118.445127", now())
			check(err)
			sent = append(sent, u)
		}
		// Count once no message is in flight: the count holds still for a while.
		after, _, err := chaos.SettledPeerMessages(ctx, cluster.Backend(), names, 300*time.Millisecond, 5*time.Second)
		check(err, "reading the servers' metrics")
		cfg := cluster.Config()
		links := len(cfg.Links())
		each := 2*links - len(names) + 1
		messages := after - before
		Expect(messages).To(BeNumerically("<=", updates*each), fmt.Sprintf(
			"flooding economy: %d peer messages for %d updates, more than 2E-N+1 = %d each: duplicates are not suppressed (seed %d; artifacts in %s)",
			messages, updates, each, seed, specDir()))
		AddReportEntry("peer messages per update", fmt.Sprintf("%.2f", float64(messages)/updates))
		for _, u := range sent {
			_, err := cluster.AwaitDelivery(ctx, u)
			check(err)
		}
	})
})

var _ = Describe("Flooding economy of IAMATs that are not newer", Label("economy"), func() {
	It("sends no peer message at all for stale or duplicate IAMATs, and changes nothing anywhere", func(ctx SpecContext) {
		nodes := cluster.Nodes()
		if _, ok, err := chaos.PeerMessages(ctx, cluster.Backend(), nodes); !ok {
			check(err, "reading the servers' metrics")
			Skip("the herd under test exports no herd_peer_messages_sent_total")
		}
		base := now()
		older, newest := base+"0000001", base+"0000002" // apart only past a float64's precision
		stale := []string{older, base, longAgo() + ".918963997", "-1", "0"}
		origin := nodes[0]
		u, err := cluster.Update(ctx, origin, id("stale"), "+34.068930-118.445127", newest)
		check(err)
		_, err = cluster.AwaitDelivery(ctx, u)
		check(err)
		before, _, err := chaos.SettledPeerMessages(ctx, cluster.Backend(), nodes, 500*time.Millisecond, 10*time.Second)
		check(err, "reading the servers' metrics")

		sent := 0
		for i, n := range nodes {
			iamat := func(loc, tm, what string) {
				GinkgoHelper()
				reply, err := cluster.IAMAT(ctx, n, u.Client, loc, tm)
				check(err)
				Expect(reply).To(HavePrefix("AT "+n+" "), "%s IAMAT at %s is still answered; seed %d; artifacts in %s", what, n, seed, specDir())
				sent++
			}
			iamat("-33.868800+151.209300", stale[i%len(stale)], "a stale")
			iamat("+1.000000+1.000000", older, "a stale")
			iamat(u.Location, u.Time, "a duplicate")
			iamat(u.Location, u.Time, "a duplicate")
			iamat("-33.868800+151.209300", u.Time, "a same-time")
		}
		after, _, err := chaos.SettledPeerMessages(ctx, cluster.Backend(), nodes, 500*time.Millisecond, 10*time.Second)
		check(err, "reading the servers' metrics")
		Expect(after-before).To(BeZero(), fmt.Sprintf(
			"an IAMAT that is not newer than what the server holds floods nothing: %d stale or duplicate IAMATs for %s (newest %q) at %v caused %d peer messages (herd_peer_messages_sent_total %d -> %d); seed %d; artifacts in %s",
			sent, u.Client, u.AT, nodes, after-before, before, after, seed, specDir()))
		for _, n := range nodes {
			rep, err := cluster.WHATSAT(ctx, n, u.Client, "1", 1)
			check(err)
			Expect(rep.AT).To(Equal(u.AT), "an IAMAT that is not newer changes nothing: %s answers %q, not the newest %q; seed %d; artifacts in %s",
				n, rep.AT, u.AT, seed, specDir())
		}
	})
})
