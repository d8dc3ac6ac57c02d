// Package containers is the chaos framework's testcontainers-go backend: one network per
// run, one Toxiproxy container with a proxy per directed peer link and per Places link,
// the herd's servers and a Places emulator, every one labelled with the run id so a sweep
// can remove what a killed run left. Images are built offline, FROM scratch.
package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"

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
// when Docker says one overlaps a network that exists.
func (h *Herd) createNetwork(ctx context.Context) error {
	start := (os.Getpid() + int(time.Now().UnixNano()/1e6)) % 250
	var lastErr error
	for i := range 250 {
		third := (start + i) % 250
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(third), 0}), 24)
		gw := netip.AddrFrom4([4]byte{10, 213, byte(third), 1})
		n, err := network.New(ctx, network.WithLabels(h.labels()),
			network.WithIPAM(&dnetwork.IPAM{Driver: "default", Config: []dnetwork.IPAMConfig{{Subnet: subnet, Gateway: gw}}}))
		if err == nil {
			h.net, h.subnet = n, subnet
			return nil
		}
		lastErr = err
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return fmt.Errorf("network: %w", lastErr)
}

// ip is host number n on the run's subnet.
func (h *Herd) ip(n int) netip.Addr {
	a := h.subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

func (h *Herd) nodeIP(name string) netip.Addr {
	return h.ip(hostFirstNode + slices.Index(h.cfg.Names(), name))
}

func (h *Herd) labels() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{labelManaged: "true", labelRun: h.RunID, labelPID: strconv.Itoa(h.ownerPID), labelHost: host}
}

var notAlias = regexp.MustCompile(`[^a-z0-9-]+`)

// alias is a server's DNS name on the run's network.
func alias(name string) string {
	return "node-" + notAlias.ReplaceAllString(strings.ToLower(name), "-")
}

func (h *Herd) request(image string, port string, aliasName string, ip netip.Addr) testcontainers.ContainerRequest {
	p := dnetwork.MustParsePort(port)
	netName := h.net.Name
	return testcontainers.ContainerRequest{
		EndpointSettingsModifier: func(eps map[string]*dnetwork.EndpointSettings) {
			if ep := eps[netName]; ep != nil {
				ep.IPAMConfig = &dnetwork.EndpointIPAMConfig{IPv4Address: ip}
			}
		},
		Image:          image,
		ExposedPorts:   []string{port},
		Labels:         h.labels(),
		Networks:       []string{h.net.Name},
		NetworkAliases: map[string][]string{h.net.Name: {aliasName}},
		HostConfigModifier: func(hc *container.HostConfig) {
			// Reachable from this machine only.
			hc.PortBindings = dnetwork.PortMap{p: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}}
		},
	}
}

func (h *Herd) mapped(ctx context.Context, c testcontainers.Container, port string) (string, error) {
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + p.Port(), nil
}

// waitFor polls cond until it succeeds or the deadline passes.
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

func (h *Herd) startToxiproxy(ctx context.Context) error {
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: h.request(h.Images.Toxiproxy, toxiAPIPort, toxiAlias, h.ip(hostToxiproxy)), Started: true,
	})
	if err != nil {
		return fmt.Errorf("toxiproxy container: %w", err)
	}
	if h.toxiAPI, err = h.mapped(ctx, c, toxiAPIPort); err != nil {
		return err
	}
	h.tp = toxiclient.NewClient(h.toxiAPI)
	return waitFor(ctx, 30*time.Second, "toxiproxy", func(ctx context.Context) error {
		return httpOK(ctx, http.MethodGet, "http://"+h.toxiAPI+"/version")
	})
}

func (h *Herd) startEmulator(ctx context.Context) error {
	req := h.request(h.Images.Herd, emulatorPort, placesAlias, h.ip(hostPlaces))
	req.Cmd = []string{"places", "--listen", ":8080"}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		return fmt.Errorf("places emulator container: %w", err)
	}
	addr, err := h.mapped(ctx, c, emulatorPort)
	if err != nil {
		return err
	}
	h.placesURL = "http://" + addr
	return waitFor(ctx, 30*time.Second, "places emulator", func(ctx context.Context) error {
		return httpOK(ctx, http.MethodGet, h.placesURL+"/healthz")
	})
}

func proxyName(l chaos.Link) string { return l.From + "_to_" + l.To }

// linkPort is where, inside the toxiproxy container, link l's proxy listens.
func (h *Herd) linkPorts() map[chaos.Link]int {
	ports := map[chaos.Link]int{}
	for i, l := range chaos.PeerLinks(h.cfg) {
		ports[l] = firstLinkPort + i
	}
	for j, n := range h.cfg.Names() {
		ports[chaos.Link{From: n, To: chaos.Places}] = firstPlacesPort + j
	}
	return ports
}

func (h *Herd) createProxies() error {
	var want []toxiclient.Proxy
	for l, port := range h.linkPorts() {
		upstream := h.ip(hostPlaces).String() + ":8080"
		if l.To != chaos.Places {
			upstream = h.nodeIP(l.To).String() + ":" + strconv.Itoa(h.clientPort())
		}
		want = append(want, toxiclient.Proxy{Name: proxyName(l), Listen: "0.0.0.0:" + strconv.Itoa(port), Upstream: upstream, Enabled: true})
	}
	if _, err := h.tp.Populate(want); err != nil {
		return fmt.Errorf("creating proxies: %w", err)
	}
	// Read them back: the client marks proxies from Populate as not yet created, so a
	// later Enable or Disable would try to create them again (HTTP 409).
	byName, err := h.tp.Proxies()
	if err != nil {
		return fmt.Errorf("listing proxies: %w", err)
	}
	for l := range h.linkPorts() {
		p := byName[proxyName(l)]
		if p == nil {
			return fmt.Errorf("toxiproxy did not create %s", l)
		}
		h.proxies[l] = p
	}
	return nil
}

// nodeInfo is what the herd description's templates see for server name.
func (h *Herd) nodeInfo(name string) chaos.NodeInfo {
	ports := h.linkPorts()
	n := chaos.NodeInfo{
		Name: name, Port: h.opts.Herd.Port, Listen: ":" + strconv.Itoa(h.opts.Herd.Port), LogDir: logDir,
		MetricsListen: ":" + strconv.Itoa(h.opts.Herd.MetricsPort),
		PlacesURL:     fmt.Sprintf("http://%s:%d", h.ip(hostToxiproxy), ports[chaos.Link{From: name, To: chaos.Places}]),
		PlacesKey:     chaos.EmulatorKey, Here: h.opts.Herd.Here,
	}
	for _, p := range h.cfg.Server(name).Neighbours() {
		n.Peers = append(n.Peers, chaos.PeerInfo{Name: p, Addr: fmt.Sprintf("%s:%d", h.ip(hostToxiproxy), ports[chaos.Link{From: name, To: p}])})
	}
	if h.opts.Herd.Sandboxed() {
		// In its holder's namespace: its own fixed port, its neighbours' on loopback (the
		// holder's relays), Google's Places host (the holder's TLS relay).
		fixed := h.opts.Herd.FixedPort(name)
		n.Port, n.Listen, n.PlacesURL = fixed, "127.0.0.1:"+strconv.Itoa(fixed), "https://"+sandbox.GoogleHosts[0]
		for i := range n.Peers {
			n.Peers[i].Addr = "127.0.0.1:" + strconv.Itoa(h.opts.Herd.FixedPort(n.Peers[i].Name))
		}
	}
	return n
}

// clientPort is the port a server is reached at on its address: the herd's port, or for
// a herd that dials on loopback a port its holder relays to the server's fixed one on
// loopback, which no server of the herd uses.
func (h *Herd) clientPort() int {
	if !h.opts.Herd.Sandboxed() {
		return h.opts.Herd.Port
	}
	p := 19000
	for used := true; used; p++ {
		used = false
		for _, n := range h.cfg.Names() {
			used = used || h.opts.Herd.FixedPort(n) == p
		}
		if !used {
			return p
		}
	}
	return p
}

// sandboxHolder makes a holder also relay, inside the server's namespace, its
// neighbours' fixed ports on loopback to the links' proxies, Google's Places ports (TLS
// on 443) to its Places proxy, and its client port to the server's fixed port; and makes
// Google's names resolve to loopback there. The server sees the run's CA as its trusted
// bundle.
func (h *Herd) sandboxHolder(name string, hreq, sreq *testcontainers.ContainerRequest) error {
	ports := h.linkPorts()
	toxi := func(l chaos.Link) string { return fmt.Sprintf("%s:%d", h.ip(hostToxiproxy), ports[l]) }
	cmd := []string{"hold",
		"--relay", fmt.Sprintf("%s:%d=%s", h.nodeIP(name), h.clientPort(), strings.Join(sandbox.Loopback(h.opts.Herd.FixedPort(name)), ",")),
		"--relay", "127.0.0.1:80=" + toxi(chaos.Link{From: name, To: chaos.Places}),
		"--tls-relay", "127.0.0.1:443=" + toxi(chaos.Link{From: name, To: chaos.Places}),
		"--tls-cert", "/run/herd-chaos/cert.pem", "--tls-key", "/run/herd-chaos/key.pem"}
	for _, p := range h.cfg.Server(name).Neighbours() {
		cmd = append(cmd, "--relay", fmt.Sprintf("127.0.0.1:%d=%s", h.opts.Herd.FixedPort(p), toxi(chaos.Link{From: name, To: p})))
	}
	hreq.Cmd = cmd
	chain, key, err := h.ca.ServerPEM()
	if err != nil {
		return err
	}
	hreq.Files = append(hreq.Files,
		testcontainers.ContainerFile{Reader: bytes.NewReader(chain), ContainerFilePath: "/run/herd-chaos/cert.pem", FileMode: 0o644},
		testcontainers.ContainerFile{Reader: bytes.NewReader(key), ContainerFilePath: "/run/herd-chaos/key.pem", FileMode: 0o644}) // the holder runs as a user of its own; the key is the run's, thrown away with it
	modify := hreq.HostConfigModifier
	hreq.HostConfigModifier = func(hc *container.HostConfig) {
		modify(hc)
		for _, g := range sandbox.GoogleHosts {
			hc.ExtraHosts = append(hc.ExtraHosts, g+":127.0.0.1")
		}
	}
	for _, path := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/cert.pem", "/run/herd-chaos/ca.pem"} {
		sreq.Files = append(sreq.Files, testcontainers.ContainerFile{Reader: bytes.NewReader(h.ca.PEM), ContainerFilePath: path, FileMode: 0o644})
	}
	for _, k := range []string{"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} {
		sreq.Env[k] = "/run/herd-chaos/ca.pem"
	}
	return nil
}

func (h *Herd) startNode(ctx context.Context, name string) error {
	r, err := h.opts.Herd.Render(h.nodeInfo(name), h.cfg)
	if err != nil {
		return err
	}
	image := h.opts.Herd.Image
	if image == "" {
		image = h.Images.Herd
	}
	port := strconv.Itoa(h.clientPort()) + "/tcp"
	hreq := h.request(h.Images.Herd, port, alias(name), h.nodeIP(name))
	if mp := h.opts.Herd.MetricsPort; mp != 0 {
		metrics := dnetwork.MustParsePort(strconv.Itoa(mp) + "/tcp")
		hreq.ExposedPorts = append(hreq.ExposedPorts, metrics.String())
		bind := hreq.HostConfigModifier
		hreq.HostConfigModifier = func(hc *container.HostConfig) {
			bind(hc)
			hc.PortBindings[metrics] = []dnetwork.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "0"}}
		}
	}
	hreq.Cmd = []string{"hold"}
	var holderID string
	req := testcontainers.ContainerRequest{
		Image:  image,
		Labels: h.labels(),
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = container.NetworkMode("container:" + holderID)
		},
	}
	req.Cmd = r.Args
	req.Env = r.Env
	for k, v := range h.opts.Env {
		req.Env[k] = v
	}
	for path, content := range r.Files {
		req.Files = append(req.Files, testcontainers.ContainerFile{Reader: bytes.NewReader(content), ContainerFilePath: path, FileMode: 0o644})
	}
	if h.opts.Herd.Sandboxed() {
		if err := h.sandboxHolder(name, &hreq, &req); err != nil {
			return fmt.Errorf("server %s: %w", name, err)
		}
	}
	holder, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: hreq, Started: true})
	if err != nil {
		return fmt.Errorf("server %s: holder: %w", name, err)
	}
	holderID = holder.GetContainerID()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	if err != nil {
		return fmt.Errorf("server %s: %w", name, err)
	}
	addr, err := h.mapped(ctx, holder, port)
	if err != nil {
		return fmt.Errorf("server %s: %w", name, err)
	}
	n := &node{name: name, Holder: holderID, Server: c.GetContainerID(), Addr: addr, LogFiles: r.LogFiles}
	if mp := h.opts.Herd.MetricsPort; mp != 0 {
		if n.Metrics, err = h.mapped(ctx, holder, strconv.Itoa(mp)+"/tcp"); err != nil {
			return fmt.Errorf("server %s: metrics port: %w", name, err)
		}
	}
	h.mu.Lock()
	h.nodes[name] = n
	h.mu.Unlock()
	return h.waitServing(ctx, n)
}

// waitServing waits until the server answers the protocol on the holder's address
// (which does not change when the server restarts).
func (h *Herd) waitServing(ctx context.Context, n *node) error {
	return chaos.WaitServing(ctx, n.name, n.Addr, 30*time.Second, func(ctx context.Context) error {
		if running, code, err := h.running(ctx, n.Server); err == nil && !running {
			return fmt.Errorf("container exited (code %d)", code)
		}
		return nil
	})
}

func (h *Herd) node(name string) (*node, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodes[name]
	if n == nil {
		return nil, fmt.Errorf("no server %q", name)
	}
	return n, nil
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

func (h *Herd) proxy(l chaos.Link) (*toxiclient.Proxy, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.proxies[l]
	if p == nil {
		return nil, fmt.Errorf("no proxy for link %s", l)
	}
	return p, nil
}

// AddToxic implements chaos.Backend. Toxicity is always 1 (0 would never fire).
func (h *Herd) AddToxic(_ context.Context, l chaos.Link, name string, t chaos.Toxic) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	attrs := toxiclient.Attributes{}
	for k, v := range t.Attributes {
		attrs[k] = v
	}
	if _, err := p.AddToxic(name, t.Type, t.Stream, 1.0, attrs); err != nil {
		return fmt.Errorf("toxic %s on %s: %w", t.Type, l, err)
	}
	return nil
}

// RemoveToxic implements chaos.Backend.
func (h *Herd) RemoveToxic(_ context.Context, l chaos.Link, name string) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	if err := p.RemoveToxic(name); err != nil {
		return fmt.Errorf("removing toxic %s from %s: %w", name, l, err)
	}
	return nil
}

// SetLinkEnabled implements chaos.Backend.
func (h *Herd) SetLinkEnabled(_ context.Context, l chaos.Link, enabled bool) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if enabled {
		err = p.Enable()
	} else {
		err = p.Disable()
	}
	if err != nil {
		return fmt.Errorf("link %s enabled=%v: %w", l, enabled, err)
	}
	return nil
}

// SetPlacesStatus implements chaos.Backend.
func (h *Herd) SetPlacesStatus(ctx context.Context, status string) error {
	return httpOK(ctx, http.MethodPost, h.placesURL+"/emulator/status?status="+status)
}

// Kill implements chaos.Backend: SIGKILL, a crash.
func (h *Herd) Kill(ctx context.Context, name string) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	if _, err := h.cli.ContainerKill(ctx, n.Server, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	// Wait until Docker says it is gone, so a following start does not race it.
	return waitFor(ctx, 10*time.Second, "kill "+name, func(ctx context.Context) error {
		running, _, err := h.running(ctx, n.Server)
		if err != nil {
			return err
		}
		if running {
			return errors.New("still running")
		}
		return nil
	})
}

// Stop implements chaos.Backend: SIGTERM, and SIGKILL after 5 seconds.
func (h *Herd) Stop(ctx context.Context, name string) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	timeout := 5
	if _, err := h.cli.ContainerStop(ctx, n.Server, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// Start implements chaos.Backend: start a killed server again; it keeps its container
// but loses its memory, and its host port may change.
func (h *Herd) Start(ctx context.Context, name string) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	if _, err := h.cli.ContainerStart(ctx, n.Server, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	return h.waitServing(ctx, n)
}

// Pause implements chaos.Backend (the cgroup freezer: like SIGSTOP for every process).
func (h *Herd) Pause(ctx context.Context, name string) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	_, err = h.cli.ContainerPause(ctx, n.Server, client.ContainerPauseOptions{})
	return err
}

// Resume implements chaos.Backend.
func (h *Herd) Resume(ctx context.Context, name string) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	_, err = h.cli.ContainerUnpause(ctx, n.Server, client.ContainerUnpauseOptions{})
	return err
}

// Logs implements chaos.Backend: the server's output and its log files.
func (h *Herd) Logs(ctx context.Context, name string) (map[string][]byte, error) {
	n, err := h.node(name)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	var errs []error
	if rc, err := h.cli.ContainerLogs(ctx, n.Server, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
		var t chaos.Tail
		_, err := stdcopy.StdCopy(&t, &t, rc)
		rc.Close()
		out["stderr"] = t.Bytes()
		errs = append(errs, err)
	} else {
		errs = append(errs, err)
	}
	for _, f := range n.LogFiles {
		b, err := h.copyFile(ctx, n.Server, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		out[f] = b
	}
	return out, errors.Join(errs...)
}

// copyFile reads the end of one file out of a container (running or not): chaos.LogLimit.
func (h *Herd) copyFile(ctx context.Context, id, path string) ([]byte, error) {
	res, err := h.cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return nil, err
	}
	var t chaos.Tail
	_, err = io.Copy(&t, tr)
	return t.Bytes(), err
}

// running reports whether a container runs, and its exit code if not.
func (h *Herd) running(ctx context.Context, id string) (bool, int, error) {
	res, err := h.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return false, 0, err
	}
	st := res.Container.State
	if st == nil {
		return false, 0, errors.New("no state")
	}
	return st.Running, st.ExitCode, nil
}

// NodeStatus is what Docker says of a server: running, paused or exited.
func (h *Herd) NodeStatus(ctx context.Context, name string) (string, error) {
	n, err := h.node(name)
	if err != nil {
		return "", err
	}
	res, err := h.cli.ContainerInspect(ctx, n.Server, client.ContainerInspectOptions{})
	if err != nil {
		return "", err
	}
	return string(res.Container.State.Status), nil
}

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

// State is what a detached herd leaves for later commands (herdctl in another terminal)
// to attach to it.
type State struct {
	RunID        string           `json:"run_id"`
	Topology     topology.Config  `json:"topology"`
	Herd         chaos.HerdSpec   `json:"herd"`
	Images       Images           `json:"images"`
	ToxiproxyAPI string           `json:"toxiproxy_api"`
	PlacesURL    string           `json:"places_url"`
	Nodes        map[string]*Node `json:"nodes"`
}

// State describes the running herd.
func (h *Herd) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := State{RunID: h.RunID, Topology: h.cfg, Herd: h.opts.Herd, Images: h.Images,
		ToxiproxyAPI: h.toxiAPI, PlacesURL: h.placesURL, Nodes: map[string]*Node{}}
	for name, n := range h.nodes {
		cp := *n
		st.Nodes[name] = &cp
	}
	return st
}

// Attach takes over a herd another process started and described in st.
func Attach(ctx context.Context, st State) (*Herd, error) {
	ApplyDefaults()
	cli, err := NewDockerClient(ctx)
	if err != nil {
		return nil, err
	}
	h := &Herd{opts: Options{Herd: st.Herd, Config: st.Topology}, cfg: st.Topology, cli: cli, RunID: st.RunID,
		Images: st.Images, toxiAPI: st.ToxiproxyAPI, placesURL: st.PlacesURL,
		proxies: map[chaos.Link]*toxiclient.Proxy{}, nodes: map[string]*node{}}
	for name, n := range st.Nodes {
		if _, _, err := h.running(ctx, n.Holder); err != nil {
			cli.Close()
			return nil, fmt.Errorf("the herd %s is gone (%s: %v): run herdctl down, or herdctl clean", st.RunID, name, err)
		}
		cp := *n
		cp.name = name
		h.nodes[name] = &cp
	}
	h.tp = toxiclient.NewClient(st.ToxiproxyAPI)
	byName, err := h.tp.Proxies()
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("toxiproxy of herd %s: %w", st.RunID, err)
	}
	for l := range h.linkPorts() {
		p := byName[proxyName(l)]
		if p == nil {
			cli.Close()
			return nil, fmt.Errorf("toxiproxy of herd %s has no proxy for %s", st.RunID, l)
		}
		h.proxies[l] = p
	}
	return h, nil
}
