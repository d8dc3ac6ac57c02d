package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PeerMessages sums herd_peer_messages_sent_total (updates flooded to neighbours) over
// every server, read from their Prometheus metrics. ok is false when the backend or the
// herd under test exports none.
func PeerMessages(ctx context.Context, b Backend, nodes []string) (total int64, ok bool, err error) {
	src, isSource := b.(MetricsSource)
	if !isSource {
		return 0, false, nil
	}
	for _, n := range nodes {
		url, err := src.MetricsURL(ctx, n)
		if err != nil || url == "" {
			return 0, false, err
		}
		v, found, err := readCounter(ctx, httpClient(b), url, "herd_peer_messages_sent_total")
		if err != nil {
			return 0, false, fmt.Errorf("metrics of %s: %w", n, err)
		}
		if !found {
			return 0, false, nil
		}
		total += v
	}
	return total, true, nil
}

func readCounter(ctx context.Context, hc *http.Client, url, name string) (int64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var sum int64
	found := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("%s: %w", line, err)
			}
			sum += v
			found = true
		}
	}
	return sum, found, sc.Err()
}

// SettledPeerMessages is PeerMessages once no update is in flight: the count has held
// still for quiet, or within has passed (then the last count, which a checker compares
// and fails on if floods never stop).
func SettledPeerMessages(ctx context.Context, b Backend, nodes []string, quiet, within time.Duration) (int64, bool, error) {
	last, ok, err := PeerMessages(ctx, b, nodes)
	if err != nil || !ok {
		return last, ok, err
	}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return last, ok, ctx.Err()
		case <-time.After(quiet):
		}
		next, _, err := PeerMessages(ctx, b, nodes)
		if err != nil {
			return last, ok, err
		}
		if next == last {
			return next, true, nil
		}
		last = next
	}
	return last, true, nil
}
