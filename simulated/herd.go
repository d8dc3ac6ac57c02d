// Package simulated is the sim backend (HERD_BACKEND=sim): the whole herd in this
// process. Each server is our herd's own code (herd/server over herd/core), every peer
// and Places link passes through a proxy applying Toxiproxy's toxics, and the Places
// emulator answers in process too, all on an in-memory network (simnet) where a paused
// server is frozen and a crashed one loses every connection and all its state.
//
// Run inside a testing/synctest bubble, nothing waits on the machine's clock or sockets,
// so time is simulated: the suite's minutes of faults, latencies and timeouts pass in
// seconds of CPU (see specs/suite_test.go). Outside a bubble it runs in real time.
//
// It runs only our herd, compiled into the process: a described herd is another
// program, and a mutant is this package built with go test -overlay.
package simulated

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/server"
	"github.com/herdchaos/herd/herd/topology"
	"github.com/herdchaos/herd/simulated/simnet"
)

// Options configure Start.
type Options struct {
	Config topology.Config // default: the five servers of docs/PROTOCOL.md
	// Env is what the servers would find in their environment: HERD_SECRET is the peer
	// secret; nothing else is read.
	Env      map[string]string
	Progress func(string)
}

// Herd is a herd running in this process. It implements chaos.Backend, chaos.Network
// and chaos.MetricsSource.
type Herd struct {
	cfg  topology.Config
	opts Options
	dir  string // the servers' log folders

	net     *simnet.Network
	clients *simnet.Host // this process's clients: the suite, herdctl
	proxies *simnet.Host // where the proxies run
	httpc   *http.Client

	plan   chaos.Plan
	links  map[chaos.Link]*proxy
	emu    *places.Emulator
	emuSrv *http.Server
	emuURL string

	mu    sync.Mutex
	nodes map[string]*node
}

// node is one server.
type node struct {
	name    string
	info    chaos.NodeInfo
	metrics string // its metrics address

	mu     sync.Mutex
	host   *simnet.Host // this incarnation's; nil when not running
	cancel context.CancelFunc
	done   chan struct{}
	stderr chaos.Tail
}

// Start starts the herd. On error nothing is left running.
func Start(ctx context.Context, opts Options) (_ *Herd, err error) {
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	if len(opts.Config.Servers) == 0 {
		opts.Config = topology.Default("127.0.0.1")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	h := &Herd{cfg: opts.Config, opts: opts, net: simnet.New(), links: map[chaos.Link]*proxy{},
		nodes: map[string]*node{}, emu: &places.Emulator{}}
	defer func() {
		if err != nil {
			h.Close(context.WithoutCancel(ctx))
		}
	}()
	if h.dir, err = os.MkdirTemp("", "herd-sim-"); err != nil {
		return nil, err
	}
	h.clients = h.net.Host("clients")
	h.proxies = h.net.Host("proxies")
	h.httpc = &http.Client{Transport: &http.Transport{DialContext: h.clients.DialContext}}

	opts.Progress("starting the Places emulator and the proxies (in memory)")
	// Addresses are names on the in-memory network; they look like this machine's so
	// that logs and histories read the same as the local backend's.
	const emu = "127.0.0.1:9000"
	ln, err := h.net.Host("places").Listen(emu)
	if err != nil {
		return nil, err
	}
	h.emuURL = "http://" + emu
	h.emuSrv = &http.Server{Handler: h.emu.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go h.emuSrv.Serve(ln)

	names := h.cfg.Names()
	port := map[string]int{}
	for i, name := range names {
		port[name] = 12000 + i
		h.nodes[name] = &node{name: name, metrics: "127.0.0.1:" + strconv.Itoa(9100+i)}
	}
	listen := func(name string) string { return "127.0.0.1:" + strconv.Itoa(port[name]) }
	h.plan, err = chaos.NewPlan(h.cfg, chaos.OurHerd(), chaos.PlanSites{
		ProxyHost: "127.0.0.1",
		ProxyPort: func(i int) int { return 20000 + i },
		Server:    listen,
		Places:    emu,
		Node: func(name string) chaos.NodeInfo {
			dir := filepath.Join(h.dir, name)
			return chaos.NodeInfo{Port: port[name], Listen: listen(name), MetricsListen: h.nodes[name].metrics,
				LogDir: filepath.Join(dir, "logs"), WorkDir: dir}
		},
	})
	if err != nil {
		return nil, err
	}
	for name, info := range h.plan.Nodes {
		h.nodes[name].info = info
		if err := os.MkdirAll(info.LogDir, 0o755); err != nil {
			return nil, err
		}
	}
	for _, pp := range h.plan.Proxies {
		p, err := newProxy(h, pp)
		if err != nil {
			return nil, err
		}
		h.links[pp.Link] = p
	}

	opts.Progress(fmt.Sprintf("starting %d servers (in memory)", len(names)))
	for _, name := range names {
		if err := h.Start(ctx, name); err != nil {
			return nil, err
		}
	}
	opts.Progress("herd is up")
	return h, nil
}

func (h *Herd) node(name string) (*node, error) {
	n := h.nodes[name]
	if n == nil {
		return nil, fmt.Errorf("no server %q (the herd has %s)", name, strings.Join(h.cfg.Names(), ", "))
	}
	return n, nil
}

// Config implements chaos.Backend.
func (h *Herd) Config() topology.Config { return h.cfg }

// ClientAddr implements chaos.Backend: an address on the in-memory network (DialContext).
func (h *Herd) ClientAddr(_ context.Context, name string) (string, error) {
	n, err := h.node(name)
	if err != nil {
		return "", err
	}
	return n.info.Listen, nil
}

// PlacesURL implements chaos.Backend: a URL on the in-memory network (HTTPClient).
func (h *Herd) PlacesURL() string { return h.emuURL }

// DialContext implements chaos.Network: a client's connection on the in-memory network.
func (h *Herd) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return h.clients.DialContext(ctx, network, addr)
}

// HTTPClient implements chaos.Network.
func (h *Herd) HTTPClient() *http.Client { return h.httpc }

// MetricsURL implements chaos.MetricsSource.
func (h *Herd) MetricsURL(_ context.Context, name string) (string, error) {
	n, err := h.node(name)
	if err != nil {
		return "", err
	}
	return "http://" + n.metrics + "/metrics", nil
}

// serverOptions are node n's server options, as cmd/herd would make them from its
// config file and environment, on host's sockets.
func (h *Herd) serverOptions(n *node, host *simnet.Host) (server.Options, error) {
	cfg := n.info.HerdConfig(h.cfg)
	for i := range cfg.Servers {
		if cfg.Servers[i].Name == n.name {
			cfg.Servers[i].Metrics = n.metrics
		}
	}
	api := cfg.PlacesAPI
	if api == "" {
		api = places.APILegacy
	}
	timeout := cfg.PlacesTimeout.Duration
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	src, err := places.NewHTTPAPI(api, n.info.PlacesURL, "", timeout)
	if err != nil {
		return server.Options{}, err
	}
	src.Client.Transport = &http.Transport{DialContext: host.DialContext}
	var secret []byte
	if v := h.opts.Env["HERD_SECRET"]; v != "" {
		secret = []byte(v)
	}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: &n.mu, w: &n.stderr}, nil))
	return server.Options{
		Name: n.name, Config: cfg, Places: src, PlacesTimeout: timeout, LogDir: cfg.LogDir, Secret: secret,
		Logger: logger,
		Listen: func(addr string) (net.Listener, error) { return host.Listen(addr) },
		Dial:   host.Dial,
	}, nil
}

// lockedWriter writes to w under mu (slog's handler writes from many goroutines).
type lockedWriter struct {
	mu *sync.Mutex
	w  *chaos.Tail
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Start implements chaos.Backend: a new incarnation of the server, empty, on a new host.
func (h *Herd) Start(ctx context.Context, name string) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	running := n.host != nil
	n.mu.Unlock()
	if running {
		return fmt.Errorf("%s is already running", name)
	}
	host := h.net.Host(name)
	opts, err := h.serverOptions(n, host)
	if err != nil {
		return err
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	serveErr := make(chan error, 1)
	go func() {
		defer close(done)
		if err := srv.Serve(sctx); err != nil && sctx.Err() == nil {
			serveErr <- err
			n.mu.Lock()
			fmt.Fprintf(&n.stderr, "serve: %v\n", err)
			n.mu.Unlock()
		}
	}()
	select {
	case <-srv.Ready():
	case err := <-serveErr:
		cancel()
		host.Down()
		return fmt.Errorf("%s: %w", name, err)
	case <-ctx.Done():
		cancel()
		host.Down()
		return ctx.Err()
	}
	n.mu.Lock()
	n.host, n.cancel, n.done = host, cancel, done
	n.mu.Unlock()
	return nil
}

// end ends the running incarnation: abruptly (Kill: every socket torn down, then its
// goroutines told to stop) or gracefully (Stop: the server closes what it has).
func (h *Herd) end(name string, graceful bool) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	host, cancel, done := n.host, n.cancel, n.done
	n.host = nil
	n.mu.Unlock()
	if host == nil {
		return nil // already down, as killing a dead process is
	}
	host.Thaw() // a paused process dies too
	if !graceful {
		host.Down()
	}
	cancel()
	<-done
	host.Down()
	return nil
}

// Kill implements chaos.Backend.
func (h *Herd) Kill(_ context.Context, name string) error { return h.end(name, false) }

// Stop implements chaos.Backend.
func (h *Herd) Stop(_ context.Context, name string) error { return h.end(name, true) }

// Pause implements chaos.Backend: the server's sockets freeze (its goroutines wait on
// them), as SIGSTOP freezes a process.
func (h *Herd) Pause(_ context.Context, name string) error { return h.freeze(name, true) }

// Resume implements chaos.Backend.
func (h *Herd) Resume(_ context.Context, name string) error { return h.freeze(name, false) }

func (h *Herd) freeze(name string, on bool) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	host := n.host
	n.mu.Unlock()
	if host == nil {
		return fmt.Errorf("%s is not running", name)
	}
	if on {
		host.Freeze()
	} else {
		host.Thaw()
	}
	return nil
}

// Logs implements chaos.Backend: the server's log file and what it logged (its stderr).
func (h *Herd) Logs(_ context.Context, name string) (map[string][]byte, error) {
	n, err := h.node(name)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	stderr := bytes.Clone(n.stderr.Bytes())
	n.mu.Unlock()
	out := map[string][]byte{filepath.Join(n.info.WorkDir, "stderr"): stderr}
	f := filepath.Join(n.info.LogDir, name+".log")
	b, err := chaos.TailFile(f)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return out, err
	}
	if err == nil {
		out[f] = b
	}
	return out, nil
}

// SetPlacesStatus implements chaos.Backend.
func (h *Herd) SetPlacesStatus(ctx context.Context, status string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.emuURL+"/emulator/status?status="+status, nil)
	resp, err := h.httpc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (h *Herd) proxy(l chaos.Link) (*proxy, error) {
	p := h.links[l]
	if p == nil {
		return nil, fmt.Errorf("no proxy for link %s", l)
	}
	return p, nil
}

// AddToxic implements chaos.Backend.
func (h *Herd) AddToxic(_ context.Context, l chaos.Link, name string, t chaos.Toxic) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	return p.addToxic(name, t)
}

// RemoveToxic implements chaos.Backend.
func (h *Herd) RemoveToxic(ctx context.Context, l chaos.Link, name string) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	return p.removeToxic(ctx, name)
}

// SetLinkEnabled implements chaos.Backend.
func (h *Herd) SetLinkEnabled(_ context.Context, l chaos.Link, enabled bool) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	if enabled {
		return p.start()
	}
	p.stop()
	return nil
}

// Close implements chaos.Backend: every server killed, every proxy, the emulator and
// the clients' connections closed, the log folders removed.
func (h *Herd) Close(ctx context.Context) error {
	names := make([]string, 0, len(h.nodes))
	for name := range h.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h.end(name, false)
	}
	for _, p := range h.links {
		p.stop()
	}
	if h.emuSrv != nil {
		h.emuSrv.Close()
	}
	if h.httpc != nil {
		h.httpc.CloseIdleConnections()
	}
	for _, host := range []*simnet.Host{h.clients, h.proxies} {
		if host != nil {
			host.Down()
		}
	}
	if h.dir != "" {
		return os.RemoveAll(h.dir)
	}
	return nil
}
