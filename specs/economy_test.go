package specs

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// peerMessages sums herd_peer_messages_sent_total over every server ("" when the herd
// under test does not export it).
func peerMessages(ctx context.Context) (int64, bool) {
	GinkgoHelper()
	src, ok := cluster.Backend().(chaos.MetricsSource)
	if !ok {
		return 0, false
	}
	var total int64
	for _, n := range names {
		url, err := src.MetricsURL(ctx, n)
		check(err)
		if url == "" {
			return 0, false
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		check(err, "reading ", n, "'s metrics")
		sc := bufio.NewScanner(resp.Body)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "herd_peer_messages_sent_total{") {
				f := strings.Fields(line)
				v, err := strconv.ParseInt(f[len(f)-1], 10, 64)
				check(err)
				total += v
				found = true
			}
		}
		resp.Body.Close()
		if !found {
			return 0, false
		}
	}
	return total, true
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
		// Wait until no message is in flight: the count holds still for a while.
		after, _ := peerMessages(ctx)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(300 * time.Millisecond)
			next, _ := peerMessages(ctx)
			if next == after {
				break
			}
			after = next
		}
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
