package containers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/testcontainers/testcontainers-go/wait"
)

// onLoopback runs a testcontainers-go wait strategy against the container's ports on
// 127.0.0.1, where request binds them. Left to itself, a strategy asks testcontainers'
// provider for the host, which inside a container (this machine's case) is the Docker
// bridge's gateway, and which only the environment (TESTCONTAINERS_HOST_OVERRIDE) could
// change.
type onLoopback struct{ wait.Strategy }

// WaitUntilReady implements wait.Strategy.
func (s onLoopback) WaitUntilReady(ctx context.Context, t wait.StrategyTarget) error {
	return s.Strategy.WaitUntilReady(ctx, loopbackTarget{t})
}

type loopbackTarget struct{ wait.StrategyTarget }

func (loopbackTarget) Host(context.Context) (string, error) { return "127.0.0.1", nil }

// waitFor polls cond until it succeeds or the deadline passes. It is for what no
// testcontainers-go strategy can wait on: Docker's word that a killed server is gone, for
// a herd that may be attached (herdctl), so known by container id alone, with no
// testcontainers.Container to wait on.
func waitFor(ctx context.Context, within time.Duration, what string, cond func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := cond(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: not ready within %v: %w", what, within, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// httpOK sends one request and wants a 2xx answer (the emulator's status switch).
func httpOK(ctx context.Context, method, url string) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d", method, url, resp.StatusCode)
	}
	return nil
}
