package containers

import (
	"log/slog"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/topology"
)

// An Option configures Run.
type Option func(*settings)

// settings are what the options set.
type settings struct {
	Config topology.Config // default: the five servers of docs/PROTOCOL.md
	Herd   chaos.HerdSpec
	// herdGiven says a herd option was given (WithHerd or WithHerdImage).
	herdGiven  bool
	fromSource bool
	Env        map[string]string
	Logger     *slog.Logger
	Progress   func(string)
	// BuildOverlay is a go build -overlay file for our herd's image (the mutants of
	// specs/mutants); it implies WithHerdFromSource.
	BuildOverlay string
	RunID        string
	Detached     bool
}

// DefaultHerdImage is the image Run uses for our herd when no herd option is given:
// `make image` builds it. Run never pulls it and never builds it without being asked.
const DefaultHerdImage = "herd-chaos/herd:latest"

// WithHerdImage runs our herd from image ref, which must be on this machine (Run pulls
// nothing): docker build or docker load it first.
func WithHerdImage(ref string) Option {
	return func(s *settings) {
		s.Herd, s.herdGiven = chaos.OurHerd(), true
		s.Herd.Image = ref
	}
}

// WithHerd tests the herd spec describes (see chaos.HerdSpec and the README's "Testing
// your own herd"): its image, or ours with WithHerdFromSource.
func WithHerd(spec chaos.HerdSpec) Option {
	return func(s *settings) { s.Herd, s.herdGiven = spec, true }
}

// WithHerdFromSource builds our herd's image from the framework's source (the module
// github.com/herdchaos/herd, wherever it is: this tree or the module cache) and runs the
// servers from it. The image is tagged by its content, so an unchanged source reuses it.
func WithHerdFromSource() Option { return func(s *settings) { s.fromSource = true } }

// WithTopology gives the servers and their links (default: the herd's own graph, or the
// five servers of docs/PROTOCOL.md).
func WithTopology(cfg topology.Config) Option { return func(s *settings) { s.Config = cfg } }

// WithEnv adds variables to every server's environment.
func WithEnv(env map[string]string) Option {
	return func(s *settings) {
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		for k, v := range env {
			s.Env[k] = v
		}
	}
}

// WithLogger receives testcontainers-go's messages at debug level (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.Logger = l } }

// WithProgress receives one line per start-up step (herdctl shows them).
func WithProgress(f func(string)) Option { return func(s *settings) { s.Progress = f } }

// WithBuildOverlay builds our herd from source with go build -overlay file (the mutants
// of specs/mutants). It implies WithHerdFromSource.
func WithBuildOverlay(file string) Option {
	return func(s *settings) { s.BuildOverlay, s.fromSource = file, true }
}

// WithRunID names the run (default: the time and this process's id). Every container
// and the network carry it as a label.
func WithRunID(id string) Option { return func(s *settings) { s.RunID = id } }

// WithDetached marks a herd that outlives this process (herdctl up): no reaper removes
// it when this process ends, and stale-run sweeps leave it alone. Terminate still does.
func WithDetached() Option { return func(s *settings) { s.Detached = true } }
