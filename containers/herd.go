// Package containers is the chaos framework's testcontainers-go backend: one network per
// run, one Toxiproxy container with a proxy per directed peer link and per Places link,
// the herd's servers and a Places emulator, every one labelled with the run id so a sweep
// can remove what a killed run left. Images are built offline, FROM scratch.
package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/topology"
	"github.com/herdchaos/herd/local/sandbox"
)

// Labels on everything the framework creates.
const (
	labelManaged = "io.herd-chaos.managed"
	labelRun     = "io.herd-chaos.run"
	labelImage   = "io.herd-chaos.image"
	labelPID     = "io.herd-chaos.pid"  // the process that owns the run
	labelHost    = "io.herd-chaos.host" // and its machine
)

const (
	toxiAPIPort     = "8474/tcp"
	emulatorPort    = "8080/tcp"
	firstLinkPort   = 20000
	firstPlacesPort = 30000
	toxiAlias       = "toxiproxy"
	placesAlias     = "places"
	logDir          = "/data/logs"
)

// Every container has a fixed address on the run's own subnet, and every address the
// herd, Toxiproxy and the emulator use is an IP: nothing resolves a name. (Resolving the
// alias of a killed container makes Docker's DNS ask the host's resolvers, off this
// machine, and Toxiproxy dials upstreams inside its accept loop, so one slow lookup
// wedges a proxy.) A restarted server keeps its address.
const (
	hostToxiproxy = 2
	hostPlaces    = 3
	hostFirstNode = 10
)

// ApplyDefaults sets the air-gapped defaults this machine needs, unless the user set
// them: Ryuk off (its image cannot be pulled) and containers reached on 127.0.0.1.
func ApplyDefaults() {
	if _, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); !ok {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if _, ok := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !ok {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
}

// Options configure a herd under containers.
type Options struct {
	Config   topology.Config // default: the five servers of docs/PROTOCOL.md
	Herd     chaos.HerdSpec  // default: ours; Image "" builds ours from this tree
	Env      map[string]string
	Logger   *slog.Logger
	Progress func(string) // one line per start-up step (herdctl shows them)
	// BuildOverlay, when set, is a go build -overlay file for our herd's image (the
	// mutants of specs/mutants).
	BuildOverlay string
	RunID        string // default: generated
	// Detached marks a herd that outlives this process (herdctl up): stale-run sweeps
	// leave it alone.
	Detached bool
}

// Herd is a running herd under containers. It implements chaos.Backend.
type Herd struct {
	opts   Options
	cfg    topology.Config
	cli    *client.Client
	RunID  string
	Images Images
	// ownerPID is the process that owns the run: a sweep of stale runs removes runs whose
	// owner is gone. herdctl up hands its herd to no process (0): only down or clean end it.
	ownerPID int

	net       *testcontainers.DockerNetwork
	subnet    netip.Prefix
	toxiAPI   string
	tp        *toxiclient.Client
	placesURL string

	// ca signs the certificate the holders of a herd that dials on loopback show for
	// Google's Places names (nil for other herds).
	ca *sandbox.CA

	mu      sync.Mutex
	proxies map[chaos.Link]*toxiclient.Proxy
	nodes   map[string]*node
}

// A Node is two containers. The holder owns the server's network namespace: its address
// on the run's network and its client port mapped on 127.0.0.1. The server runs inside
// that namespace, so when it is killed its address stays and answers RST at once, as a
// real host whose process died would (with the address gone, connects to it would hang
// in SYN retries for minutes, and Toxiproxy dials upstreams inside its accept loop).
type node = Node

// Node is one server's containers and addresses.
type Node struct {
	Holder   string   `json:"holder"`  // container id
	Server   string   `json:"server"`  // container id
	Addr     string   `json:"addr"`    // client address on 127.0.0.1 (the holder's mapping: stable)
	Metrics  string   `json:"metrics"` // metrics address on 127.0.0.1, if the herd serves them
	LogFiles []string `json:"log_files"`
	name     string
}

// ErrNoDocker is what every function that needs Docker returns, wrapped, when Docker does
// not answer: errors.Is(err, ErrNoDocker) tells a caller to fall back or skip.
var ErrNoDocker = errors.New("docker does not answer")

// NewDockerClient connects to the Docker engine, with a clear error when it does not answer.
func NewDockerClient(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoDocker, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("%w (%v): start the Docker engine, or use the local backend (HERD_BACKEND=local)", ErrNoDocker, err)
	}
	return cli, nil
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Printf(format string, v ...any) {
	a.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "from", "testcontainers")
}

// Start builds the images if needed and starts the whole herd. On error it removes
// everything it started.
func Start(ctx context.Context, opts Options) (_ *Herd, err error) {
	ApplyDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tclog.SetDefault(slogAdapter{opts.Logger})
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	if len(opts.Config.Servers) == 0 {
		cfg, err := opts.Herd.Graph(topology.Default("127.0.0.1"))
		if err != nil {
			return nil, err
		}
		opts.Config = cfg
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if n := len(opts.Config.Servers); hostFirstNode+n > 254 {
		return nil, fmt.Errorf("%d servers: the containers backend gives each an address on one /24, so at most %d", n, 254-hostFirstNode)
	}
	if opts.Herd.IsOurs() {
		img := opts.Herd.Image
		opts.Herd = chaos.OurHerd()
		opts.Herd.Image = img
	}
	if opts.Herd.Port == 0 {
		opts.Herd.Port = 12000
	}
	if opts.RunID == "" {
		opts.RunID = fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid())
	}
	cli, err := NewDockerClient(ctx)
	if err != nil {
		return nil, err
	}
	h := &Herd{opts: opts, cfg: opts.Config, cli: cli, RunID: opts.RunID,
		proxies: map[chaos.Link]*toxiclient.Proxy{}, nodes: map[string]*node{}}
	if opts.Herd.Sandboxed() {
		if h.ca, err = sandbox.NewCA(sandbox.GoogleHosts); err != nil {
			return nil, err
		}
	}
	if !opts.Detached {
		h.ownerPID = os.Getpid()
		if err := startReaper(); err != nil { // removes what we leave, however we end
			opts.Progress(fmt.Sprintf("warning: %v: a killed run leaves its containers until the next run's sweep", err))
		}
	}
	defer func() {
		if err != nil {
			h.Close(context.WithoutCancel(ctx))
		}
	}()
	if h.Images, err = BuildImages(ctx, cli, opts.BuildOverlay, opts.Progress); err != nil {
		return nil, err
	}
	opts.Progress("creating network")
	if err := h.createNetwork(ctx); err != nil {
		return nil, err
	}
	opts.Progress("starting toxiproxy and the Places emulator")
	var wg sync.WaitGroup
	var toxiErr, emuErr error
	wg.Go(func() { toxiErr = h.startToxiproxy(ctx) })
	wg.Go(func() { emuErr = h.startEmulator(ctx) })
	wg.Wait()
	if err := errors.Join(toxiErr, emuErr); err != nil {
		return nil, err
	}
	if err := h.createProxies(); err != nil {
		return nil, err
	}
	opts.Progress(fmt.Sprintf("starting %d servers", len(h.cfg.Servers)))
	errs := make([]error, len(h.cfg.Servers))
	for i, s := range h.cfg.Servers {
		wg.Go(func() { errs[i] = h.startNode(ctx, s.Name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts.Progress("herd is up")
	return h, nil
}

// createNetwork makes the run's network on a free /24 of 10.213.0.0/16, trying another

// Config implements chaos.Backend.
func (h *Herd) Config() topology.Config { return h.cfg }

// ClientAddr implements chaos.Backend.
func (h *Herd) ClientAddr(_ context.Context, name string) (string, error) {
	n, err := h.node(name)
	if err != nil {
		return "", err
	}
	return n.Addr, nil
}

// MetricsURL implements chaos.MetricsSource.
func (h *Herd) MetricsURL(_ context.Context, name string) (string, error) {
	n, err := h.node(name)
	if err != nil || n.Metrics == "" {
		return "", err
	}
	return "http://" + n.Metrics + "/metrics", nil
}

// PlacesURL implements chaos.Backend.
func (h *Herd) PlacesURL() string { return h.placesURL }

// ToxiproxyAPI is the Toxiproxy API address on 127.0.0.1.
func (h *Herd) ToxiproxyAPI() string { return h.toxiAPI }

// Release lets go of the herd without stopping it (herdctl commands attach, act, release).
func (h *Herd) Release() error { return h.cli.Close() }

// Close removes every container and the network of the run.
func (h *Herd) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := Sweep(ctx, h.cli, h.RunID)
	h.cli.Close()
	return err
}
