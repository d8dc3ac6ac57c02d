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
