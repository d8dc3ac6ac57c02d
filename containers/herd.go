// Package containers is the chaos framework's testcontainers-go backend: one network per
// run, one Toxiproxy container with a proxy per directed peer link and per Places link,
// the herd's servers and a Places emulator, every one labelled with the run id so a sweep
// can remove what a killed run left. Images are built offline, FROM scratch.
//
// Start a herd with Run and functional options, as a testcontainers-go module:
//
//	h, err := containers.Run(ctx, containers.WithHerdFromSource())
//	defer h.Terminate(context.Background())
//	if err != nil { ... }
//
// The files: herd.go (Run, the Herd), options.go, ryuk.go (testcontainers' settings),
// network.go, wait.go, toxiproxy.go (proxies, links, toxics), places.go (the emulator),
// nodes.go (holders and servers: kill, stop, start, pause), logs.go, attach.go (a herd
// another process started), images.go, reaper.go, sweep.go.
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
	toxiAPIPort   = "8474/tcp"
	emulatorPort  = "8080/tcp"
	firstLinkPort = 20000
	toxiAlias     = "toxiproxy"
	placesAlias   = "places"
	logDir        = "/data/logs"
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

// Herd is a running herd under containers. It implements chaos.Backend.
type Herd struct {
	opts   settings
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
	plan    chaos.Plan // the wiring, made once the network is (Attach has none)
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

// Run starts a herd: the run's network, Toxiproxy, the Places emulator and the servers,
// as a testcontainers-go module does. Which herd it runs:
//
//   - WithHerdImage(ref): ours, from an image on this machine;
//   - WithHerd(spec): the herd spec describes, from spec.Image (or from ours built from
//     source, with WithHerdFromSource too);
//   - WithHerdFromSource(): ours, built from the framework's source;
//   - none of these: ours from DefaultHerdImage if it is on this machine, else an error
//     naming these options. Run never builds the herd under test unless asked to.
//
// Toxiproxy and our herd's binary (each server's holder and the Places emulator) always
// run from images built from the framework's module, once, tagged by content.
//
// On error Run returns, with the error, the herd as far as it got (nil only when nothing
// was created), as testcontainers-go does, so the caller's deferred Terminate removes it
// and its logs can still be read:
//
//	h, err := containers.Run(ctx, containers.WithHerdFromSource())
//	defer h.Terminate(context.Background())
//	if err != nil { ... }
func Run(ctx context.Context, opts ...Option) (*Herd, error) {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.Progress == nil {
		s.Progress = func(string) {}
	}
	if s.fromSource && s.herdGiven && s.Herd.Image != "" {
		return nil, fmt.Errorf("the herd's image %q and WithHerdFromSource: choose one", s.Herd.Image)
	}
	if s.herdGiven && !s.fromSource && s.Herd.Image == "" {
		return nil, fmt.Errorf("the herd %q names no image: give it one (image: in its description), or add containers.WithHerdFromSource() to run it in ours", s.Herd.Name)
	}
	if len(s.Config.Servers) == 0 {
		cfg, err := s.Herd.Graph(topology.Default("127.0.0.1"))
		if err != nil {
			return nil, err
		}
		s.Config = cfg
	}
	if err := s.Config.Validate(); err != nil {
		return nil, err
	}
	if n := len(s.Config.Servers); hostFirstNode+n > 254 {
		return nil, fmt.Errorf("%d servers: the containers backend gives each an address on one /24, so at most %d", n, 254-hostFirstNode)
	}
	if s.Herd.IsOurs() {
		img := s.Herd.Image
		s.Herd = chaos.OurHerd()
		s.Herd.Image = img
	}
	if s.Herd.Port == 0 {
		s.Herd.Port = 12000
	}
	if s.RunID == "" {
		s.RunID = fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid())
	}
	disableRyuk()
	cli, err := NewDockerClient(ctx)
	if err != nil {
		return nil, err
	}
	if !s.herdGiven && !s.fromSource {
		if _, err := cli.ImageInspect(ctx, DefaultHerdImage); err != nil {
			cli.Close()
			return nil, fmt.Errorf("which herd? %s is not on this machine (make image builds it): pass containers.WithHerdImage(ref) for a herd image you have, containers.WithHerd(spec) for a described herd, or containers.WithHerdFromSource() to build ours from source", DefaultHerdImage)
		}
		s.Herd.Image = DefaultHerdImage
	} else if s.Herd.Image != "" {
		if _, err := cli.ImageInspect(ctx, s.Herd.Image); err != nil {
			cli.Close()
			return nil, fmt.Errorf("the herd's image %q is not on this machine, and Run pulls nothing: docker build or docker load it first (%v)", s.Herd.Image, err)
		}
	}
	h := &Herd{opts: s, cfg: s.Config, cli: cli, RunID: s.RunID,
		proxies: map[chaos.Link]*toxiclient.Proxy{}, nodes: map[string]*node{}}
	if s.Herd.Sandboxed() {
		if h.ca, err = sandbox.NewCA(sandbox.GoogleHosts); err != nil {
			cli.Close()
			return nil, err
		}
	}
	if !s.Detached {
		h.ownerPID = os.Getpid()
		if err := startReaper(); err != nil { // removes what we leave, however we end
			s.Progress(fmt.Sprintf("warning: %v: a killed run leaves its containers until the next run's sweep", err))
		}
	}
	return h, h.start(ctx)
}

// start builds the images if needed and starts everything, in order.
func (h *Herd) start(ctx context.Context) error {
	s := h.opts
	var err error
	if h.Images, err = BuildImages(ctx, h.cli, s.BuildOverlay, s.Progress); err != nil {
		return err
	}
	s.Progress("creating network")
	if err := h.createNetwork(ctx); err != nil {
		return err
	}
	s.Progress("starting toxiproxy and the Places emulator")
	var wg sync.WaitGroup
	var toxiErr, emuErr error
	wg.Go(func() { toxiErr = h.startToxiproxy(ctx) })
	wg.Go(func() { emuErr = h.startEmulator(ctx) })
	wg.Wait()
	if err := errors.Join(toxiErr, emuErr); err != nil {
		return err
	}
	if err := h.makePlan(); err != nil {
		return err
	}
	if err := h.createProxies(); err != nil {
		return err
	}
	s.Progress(fmt.Sprintf("starting %d servers", len(h.cfg.Servers)))
	errs := make([]error, len(h.cfg.Servers))
	for i, srv := range h.cfg.Servers {
		wg.Go(func() { errs[i] = h.startNode(ctx, srv.Name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.Progress("herd is up")
	return nil
}

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

// Terminate removes every container and the network of the run, however far Run got.
// It does nothing on a nil *Herd (Run created nothing), so `defer h.Terminate(ctx)`
// may follow Run before its error is checked.
func (h *Herd) Terminate(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return h.Close(ctx)
}

// Close implements chaos.Backend: it is Terminate.
func (h *Herd) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := Sweep(ctx, h.cli, h.RunID)
	h.cli.Close()
	return err
}
