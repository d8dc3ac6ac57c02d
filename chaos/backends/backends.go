// Package backends starts a herd on a backend named at run time (HERD_BACKEND, herdctl's
// --backend, herdtest.WithBackend): the one place that knows the names.
//
//	b, err := backends.Start(ctx, "local", backends.WithProgress(log))
//	if err != nil { ... }
//	defer b.Close(context.Background())
package backends

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/containers"
	"github.com/herdchaos/herd/herd/topology"
	"github.com/herdchaos/herd/local"
	"github.com/herdchaos/herd/simulated"
)

// Names are the backends Start knows ("" is containers).
var Names = []string{"containers", "local", "direct", "sim"}

// ErrNoDocker is containers.ErrNoDocker: errors.Is(err, backends.ErrNoDocker) tells a
// caller of Start("containers") to fall back to "local" or to skip.
var ErrNoDocker = containers.ErrNoDocker

// An Option configures Start, whatever the backend.
type Option func(*settings)

type settings struct {
	cfg      topology.Config
	herd     chaos.HerdSpec
	env      map[string]string
	overlay  string
	progress func(string)
	logger   *slog.Logger
	detached bool
}

// WithTopology gives the servers and links (default: the herd's own graph, or the five
// servers of docs/PROTOCOL.md).
func WithTopology(cfg topology.Config) Option { return func(s *settings) { s.cfg = cfg } }

// WithHerd tests the herd spec describes (default: ours).
func WithHerd(spec chaos.HerdSpec) Option { return func(s *settings) { s.herd = spec } }

// WithEnv adds variables to every server's environment.
func WithEnv(env map[string]string) Option { return func(s *settings) { s.env = env } }

// WithBuildOverlay builds our herd with go build -overlay file (specs/mutants).
func WithBuildOverlay(file string) Option { return func(s *settings) { s.overlay = file } }

// WithProgress receives one line per start-up step.
func WithProgress(f func(string)) Option { return func(s *settings) { s.progress = f } }

// WithLogger receives testcontainers-go's messages (containers only).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.logger = l } }

// WithDetached marks a herd that outlives this process (containers only: herdctl up), so
// stale-run sweeps and the reaper leave it alone.
func WithDetached() Option { return func(s *settings) { s.detached = true } }

// Start starts a herd on the backend called name:
//
//   - "containers" or "": under Docker (containers.Run), our herd, or a described herd
//     without an image of its own, built from the framework's source; a described herd
//     with an image runs from it. When Docker does not answer, the error wraps
//     ErrNoDocker and says to use the local backend.
//   - "local": each server a local process, Toxiproxy in this process (local.Start).
//   - "direct": local with no proxies (no link faults), for measuring the herd alone.
//   - "sim": our herd in this process on an in-memory network (simulated.Start), in
//     simulated time when run inside a testing/synctest bubble.
//
// On error nothing it started is left running. The caller removes the herd with Close.
func Start(ctx context.Context, name string, opts ...Option) (chaos.Backend, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	switch name {
	case "", "containers":
		copts := []containers.Option{containers.WithHerd(s.herd), containers.WithTopology(s.cfg), containers.WithEnv(s.env)}
		if s.herd.Image == "" { // ours, or a described herd run in our image
			copts = append(copts, containers.WithHerdFromSource(), containers.WithBuildOverlay(s.overlay))
		} else if s.overlay != "" {
			return nil, fmt.Errorf("a build overlay is for our herd built from source, not the image %q", s.herd.Image)
		}
		if s.progress != nil {
			copts = append(copts, containers.WithProgress(s.progress))
		}
		if s.logger != nil {
			copts = append(copts, containers.WithLogger(s.logger))
		}
		if s.detached {
			copts = append(copts, containers.WithDetached())
		}
		h, err := containers.Run(ctx, copts...)
		if err != nil {
			h.Terminate(context.WithoutCancel(ctx))
			return nil, err
		}
		return h, nil
	case "local", "direct":
		h, err := local.Start(ctx, local.Options{Config: s.cfg, Herd: s.herd, Env: s.env, BuildOverlay: s.overlay,
			Progress: s.progress, Direct: name == "direct"})
		if err != nil {
			return nil, err
		}
		return h, nil
	case "sim":
		if !s.herd.IsOurs() {
			return nil, fmt.Errorf("the sim backend runs our herd, compiled into this process: %q is another program (use local or containers)", s.herd.Name)
		}
		if s.overlay != "" {
			return nil, fmt.Errorf("the sim backend runs the herd compiled into this process: build the test itself with go test -overlay %s", s.overlay)
		}
		h, err := simulated.Start(ctx, simulated.Options{Config: s.cfg, Env: s.env, Progress: s.progress})
		if err != nil {
			return nil, err
		}
		return h, nil
	default:
		return nil, fmt.Errorf("backend %q: want containers, local, direct or sim", name)
	}
}
