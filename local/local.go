// Package local is the chaos framework's backend without Docker: each server is a local
// process (our binary, or any command a herd description gives), Toxiproxy runs embedded
// in this process with a proxy per directed peer link and per Places link on 127.0.0.1,
// and the Places emulator is served in-process. Crash is SIGKILL, stop SIGTERM, pause
// SIGSTOP, resume SIGCONT; a started server keeps its port.
package local

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/topology"
	"github.com/herdchaos/herd/local/sandbox"
)

// Options configure a local herd.
type Options struct {
	Config   topology.Config   // default: the five servers of docs/PROTOCOL.md
	Herd     chaos.HerdSpec    // default: ours, built from this tree
	Env      map[string]string // added to every server's environment
	Progress func(string)
	// BuildOverlay, when set, is a go build -overlay file for our binary (the mutants of
	// specs/mutants).
	BuildOverlay string
	// Dir holds each server's files and logs (default: a new temporary directory,
	// removed by Close).
	Dir string
	// Direct connects the servers to each other and to the Places emulator with no proxy
	// between them: for measuring the herd alone (herdctl bench --backend direct). Link
	// faults are then refused; crash, pause and restart still work.
	Direct bool
}

// Herd is a running local herd. It implements chaos.Backend and chaos.MetricsSource.
type Herd struct {
	opts    Options
	cfg     topology.Config
	dir     string
	ownDir  bool
	binary  []string // the program (and leading args) of every server
	toxi    *toxiproxy.ApiServer
	proxies map[chaos.Link]*toxiproxy.Proxy
	emu     *places.Emulator
	emuSrv  *http.Server
	emuURL  string
	// With a herd that dials its neighbours on loopback (HerdSpec.Sandboxed), every
	// server runs in a network namespace of its own, with relays in and out.
	ca     *sandbox.CA
	relays []*sandbox.Relay

	mu    sync.Mutex
	nodes map[string]*node
}

type node struct {
	name    string
	port    int
	metrics int
	argv    []string // the program and its arguments
	env     []string
	dir     string
	logs    []string
	ns      *sandbox.NS // its network namespace (sandboxed herds only)
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd exits
}

// freePorts reserves n distinct loopback ports below the usual ephemeral range, so the
// herd's own outgoing connections cannot take one between reservation and use.
func freePorts(n int) ([]int, error) {
	base := 20000 + (os.Getpid()*7919+int(time.Now().UnixNano()/1e3))%9000
	var out []int
	for p := base; len(out) < n && p < 32000; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d free ports of %d", len(out), n)
	}
	return out, nil
}

// Start builds our binary if needed and starts the whole herd. On error it stops
// everything it started.
func Start(ctx context.Context, opts Options) (_ *Herd, err error) {
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
	if opts.Herd.Sandboxed() && opts.Direct {
		return nil, errors.New("a herd that dials its neighbours on loopback runs through relays: the direct backend cannot run it")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Herd.IsOurs() {
		opts.Herd = chaos.OurHerd()
	}
	h := &Herd{opts: opts, cfg: opts.Config, dir: opts.Dir, proxies: map[chaos.Link]*toxiproxy.Proxy{},
		nodes: map[string]*node{}, emu: &places.Emulator{}}
	defer func() {
		if err != nil {
			h.Close(context.WithoutCancel(ctx))
		}
	}()
	if h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "herd-local-"); err != nil {
			return nil, err
		}
		h.ownDir = true
	}
	if len(opts.Herd.Command) == 0 {
		opts.Progress("compiling the herd")
		root, err := chaos.SourceRoot(ctx)
		if err != nil {
			return nil, err
		}
		bin := filepath.Join(h.dir, "herd")
		if err := chaos.GoBuild(ctx, root, "./cmd/herd", bin, nil, opts.BuildOverlay); err != nil {
			return nil, err
		}
		h.binary = []string{bin}
	}

	names := h.cfg.Names()
	links := chaos.AllLinks(h.cfg)
	ports, err := freePorts(2*len(names) + len(links) + 1)
	if err != nil {
		return nil, err
	}
	take := func() int { p := ports[0]; ports = ports[1:]; return p }

	if opts.Direct {
		opts.Progress("starting the Places emulator (direct: no proxies)")
	} else {
		opts.Progress("starting the Places emulator and toxiproxy")
	}
	emuPort := take()
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(emuPort))
	if err != nil {
		return nil, err
	}
	h.emuURL = "http://" + ln.Addr().String()
	h.emuSrv = &http.Server{Handler: h.emu.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go h.emuSrv.Serve(ln)

	for _, n := range names {
		h.nodes[n] = &node{name: n, port: take(), metrics: take(), dir: filepath.Join(h.dir, n)}
	}
	if opts.Herd.Sandboxed() {
		opts.Progress("making a network namespace for each server (the herd dials its neighbours on loopback)")
		if err := h.sandboxes(); err != nil {
			return nil, err
		}
	}
	linkPorts := make([]int, len(links))
	for i := range linkPorts {
		linkPorts[i] = take()
	}
	plan, err := chaos.NewPlan(h.cfg, opts.Herd, chaos.PlanSites{
		ProxyHost:     "127.0.0.1",
		ProxyPort:     func(i int) int { return linkPorts[i] },
		Server:        func(name string) string { return "127.0.0.1:" + strconv.Itoa(h.nodes[name].port) },
		Places:        strings.TrimPrefix(h.emuURL, "http://"),
		SandboxPlaces: "https://" + sandbox.GoogleHosts[0],
		Direct:        opts.Direct,
		Node: func(name string) chaos.NodeInfo {
			n := h.nodes[name]
			return chaos.NodeInfo{Port: n.port, Listen: "127.0.0.1:" + strconv.Itoa(n.port),
				MetricsListen: "127.0.0.1:" + strconv.Itoa(n.metrics), LogDir: filepath.Join(n.dir, "logs"), WorkDir: n.dir}
		},
	})
	if err != nil {
		return nil, err
	}
	h.toxi = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	for _, pp := range plan.Proxies {
		p := toxiproxy.NewProxy(h.toxi, pp.Name(), pp.Addr, pp.Upstream)
		if err := h.toxi.Collection.Add(p, true); err != nil {
			return nil, fmt.Errorf("proxy %s: %w", pp.Link, err)
		}
		h.proxies[pp.Link] = p
	}

	opts.Progress(fmt.Sprintf("starting %d servers", len(names)))
	for _, name := range names {
		n := h.nodes[name]
		info := plan.Nodes[name]
		if n.ns != nil {
			if err := h.relayInside(n, plan, info.MetricsListen); err != nil {
				return nil, err
			}
		}
		r, err := opts.Herd.Render(info, h.cfg)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return nil, err
		}
		for _, f := range opts.Herd.Copy {
			b, err := os.ReadFile(filepath.Join(opts.Herd.Here, f))
			if err != nil {
				return nil, fmt.Errorf("herd description, copy: %w", err)
			}
			if err := os.WriteFile(filepath.Join(n.dir, filepath.Base(f)), b, 0o644); err != nil {
				return nil, err
			}
		}
		for path, content := range r.Files {
			// Absolute paths in a description are inside the server's own directory.
			p := filepath.Join(n.dir, strings.TrimPrefix(path, "/"))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.WriteFile(p, content, 0o644); err != nil {
				return nil, err
			}
			for _, argv := range [][]string{r.Command, r.Args} {
				for i, a := range argv {
					argv[i] = strings.ReplaceAll(a, path, p)
				}
			}
		}
		n.argv = append(append([]string{}, h.binary...), r.Args...)
		if len(r.Command) > 0 {
			n.argv = append(r.Command, r.Args...)
		}
		n.env = append(os.Environ(), "HERD_PLACES_KEY=")
		if h.ca != nil {
			ca := filepath.Join(h.dir, "run-ca.pem")
			n.env = append(n.env, "SSL_CERT_FILE="+ca, "REQUESTS_CA_BUNDLE="+ca, "NODE_EXTRA_CA_CERTS="+ca, "CURL_CA_BUNDLE="+ca)
		}
		for k, v := range r.Env {
			n.env = append(n.env, k+"="+v)
		}
		for k, v := range opts.Env {
			n.env = append(n.env, k+"="+v)
		}
		n.logs = r.LogFiles
	}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Go(func() { errs[i] = h.Start(ctx, name) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts.Progress("herd is up")
	return h, nil
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
	return "127.0.0.1:" + strconv.Itoa(n.port), nil
}

// MetricsURL implements chaos.MetricsSource.
func (h *Herd) MetricsURL(_ context.Context, name string) (string, error) {
	n, err := h.node(name)
	if err != nil || h.opts.Herd.MetricsPort == 0 {
		return "", err
	}
	return "http://127.0.0.1:" + strconv.Itoa(n.metrics) + "/metrics", nil
}

// PlacesURL implements chaos.Backend.
func (h *Herd) PlacesURL() string { return h.emuURL }

func (h *Herd) proxy(l chaos.Link) (*toxiproxy.Proxy, error) {
	p := h.proxies[l]
	if p == nil && h.opts.Direct {
		return nil, fmt.Errorf("link %s: the direct backend has no proxies, so no link faults (use --backend local)", l)
	}
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
	body, _ := json.Marshal(map[string]any{"name": name, "type": t.Type, "stream": t.Stream, "toxicity": 1.0, "attributes": t.Attributes})
	if _, err := p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return fmt.Errorf("toxic %s on %s: %w", t.Type, l, err)
	}
	return nil
}

// RemoveToxic implements chaos.Backend.
func (h *Herd) RemoveToxic(ctx context.Context, l chaos.Link, name string) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	return p.Toxics.RemoveToxic(ctx, name)
}

// SetLinkEnabled implements chaos.Backend.
func (h *Herd) SetLinkEnabled(_ context.Context, l chaos.Link, enabled bool) error {
	p, err := h.proxy(l)
	if err != nil {
		return err
	}
	if enabled {
		return p.Start()
	}
	p.Stop()
	return nil
}

// SetPlacesStatus implements chaos.Backend.
func (h *Herd) SetPlacesStatus(ctx context.Context, status string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.emuURL+"/emulator/status?status="+status, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Start implements chaos.Backend: start the server's process (again) and wait until it
// answers the protocol.
func (h *Herd) Start(ctx context.Context, name string) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	stderr, err := os.OpenFile(filepath.Join(n.dir, "stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.argv[0], n.argv[1:]...)
	if n.ns != nil {
		cmd = n.ns.Command(n.argv[0], n.argv[1:]...)
	}
	cmd.Dir = n.dir
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// The server dies with this process, whatever kills it: nothing is left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return fmt.Errorf("server %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); stderr.Close(); close(done) }()
	h.mu.Lock()
	n.cmd, n.done = cmd, done
	h.mu.Unlock()
	return chaos.WaitServing(ctx, name, "127.0.0.1:"+strconv.Itoa(n.port), 20*time.Second, func(context.Context) error {
		select {
		case <-done:
			return fmt.Errorf("exited (%s); the end of its output:\n%s", cmd.ProcessState, tail(filepath.Join(n.dir, "stderr"), 2048))
		default:
			return nil
		}
	})
}

// tail is the last n bytes of a file, indented, for an error message.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "  (nothing)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

func (h *Herd) signal(name string, sig syscall.Signal, wait bool) error {
	n, err := h.node(name)
	if err != nil {
		return err
	}
	h.mu.Lock()
	cmd, done := n.cmd, n.done
	h.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("server %s is not running", name)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%v to %s: %w", sig, name, err)
	}
	if !wait {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
		return nil
	}
}

// Kill implements chaos.Backend.
func (h *Herd) Kill(_ context.Context, name string) error {
	return h.signal(name, syscall.SIGKILL, true)
}

// Stop implements chaos.Backend: SIGTERM, SIGKILL after 5 seconds.
func (h *Herd) Stop(_ context.Context, name string) error {
	return h.signal(name, syscall.SIGTERM, true)
}

// Pause implements chaos.Backend.
func (h *Herd) Pause(_ context.Context, name string) error {
	return h.signal(name, syscall.SIGSTOP, false)
}

// Resume implements chaos.Backend.
func (h *Herd) Resume(_ context.Context, name string) error {
	return h.signal(name, syscall.SIGCONT, false)
}

// Logs implements chaos.Backend.
func (h *Herd) Logs(_ context.Context, name string) (map[string][]byte, error) {
	n, err := h.node(name)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	var errs []error
	for _, f := range append([]string{filepath.Join(n.dir, "stderr")}, n.logs...) {
		if !filepath.IsAbs(f) {
			f = filepath.Join(n.dir, f)
		}
		b, err := chaos.TailFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[f] = b
	}
	return out, errors.Join(errs...)
}

// Close stops every server, proxy and the emulator, and removes the directory it made.
func (h *Herd) Close(ctx context.Context) error {
	h.mu.Lock()
	nodes := h.nodes
	h.mu.Unlock()
	for _, n := range nodes {
		if n.cmd != nil {
			n.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot die of SIGKILL's wait otherwise
			n.cmd.Process.Kill()
			<-n.done
		}
	}
	var errs []error
	for _, r := range h.relays {
		r.Close()
	}
	for _, n := range nodes {
		if n.ns != nil {
			errs = append(errs, n.ns.Remove())
		}
	}
	if h.toxi != nil {
		h.toxi.Collection.Clear()
	}
	if h.emuSrv != nil {
		h.emuSrv.Close()
	}
	if h.ownDir && h.dir != "" {
		errs = append(errs, os.RemoveAll(h.dir))
	}
	return errors.Join(errs...)
}

// sandboxes makes each server's network namespace and the run's CA, and relays each
// server's port on this machine's loopback (n.port, n.metrics) to its own inside.
func (h *Herd) sandboxes() error {
	if n, err := sandbox.Sweep(); err != nil {
		return err
	} else if n > 0 {
		h.opts.Progress(fmt.Sprintf("removed %d network namespaces left by killed runs", n))
	}
	ca, err := sandbox.NewCA(sandbox.GoogleHosts)
	if err != nil {
		return err
	}
	h.ca = ca
	if err := os.WriteFile(filepath.Join(h.dir, "run-ca.pem"), ca.PEM, 0o644); err != nil {
		return err
	}
	for _, name := range h.cfg.Names() {
		n := h.nodes[name]
		if n.ns, err = sandbox.Create(sandbox.Spec{Hostname: name, CAPEM: ca.PEM}); err != nil {
			return err
		}
		var server []func(context.Context) (net.Conn, error)
		for _, a := range sandbox.Loopback(h.opts.Herd.FixedPort(name)) {
			server = append(server, n.ns.Dialer(a))
		}
		if err := h.relay(nil, "127.0.0.1:"+strconv.Itoa(n.port), sandbox.FirstOf(server...)); err != nil {
			return err
		}
		if h.opts.Herd.MetricsPort > 0 {
			m := "127.0.0.1:" + strconv.Itoa(n.metrics)
			if err := h.relay(nil, m, n.ns.Dialer(m)); err != nil {
				return err
			}
		}
	}
	return nil
}

// relayInside listens inside n's namespace on each neighbour's fixed port (IPv4 and, where
// the namespace has it, IPv6 loopback) and on Google's HTTPS and HTTP ports, relaying to
// the links' proxies.
func (h *Herd) relayInside(n *node, plan chaos.Plan, metricsListen string) error {
	to := func(l chaos.Link) func(context.Context) (net.Conn, error) { return sandbox.DialTCP(plan.LinkAddr(l)) }
	for _, p := range h.cfg.Server(n.name).Neighbours() {
		port := strconv.Itoa(h.opts.Herd.FixedPort(p))
		if err := h.relay(n.ns, "127.0.0.1:"+port, to(chaos.Link{From: n.name, To: p})); err != nil {
			return err
		}
		h.relay(n.ns, "[::1]:"+port, to(chaos.Link{From: n.name, To: p})) // no IPv6 there: IPv4 it is
	}
	places := to(chaos.Link{From: n.name, To: chaos.Places})
	for _, addr := range []string{"127.0.0.1:443", "[::1]:443", "127.0.0.1:80", "[::1]:80"} {
		ln, err := n.ns.Listen(addr)
		if err != nil {
			if strings.HasPrefix(addr, "[") {
				continue
			}
			return fmt.Errorf("server %s: the Places relay on %s: %w", n.name, addr, err)
		}
		if strings.HasSuffix(addr, ":443") {
			ln = tls.NewListener(ln, h.ca.TLSConfig())
		}
		h.relays = append(h.relays, sandbox.NewRelay(ln, places))
	}
	return nil
}

// relay listens at addr (inside ns, or on this machine's network when ns is nil) and
// relays to dial.
func (h *Herd) relay(ns *sandbox.NS, addr string, dial func(context.Context) (net.Conn, error)) error {
	var ln net.Listener
	var err error
	if ns != nil {
		ln, err = ns.Listen(addr)
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("relay on %s: %w", addr, err)
	}
	h.relays = append(h.relays, sandbox.NewRelay(ln, dial))
	return nil
}

// ResidentBytes is a running server's resident set size (VmRSS), for memory benchmarks.
func (h *Herd) ResidentBytes(name string) (int64, error) {
	b, err := h.procFile(name, "status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// CPUTime is the processor time (user and system) the server's process has used so far
// (Linux), for benchmarks to report CPU per operation.
func (h *Herd) CPUTime(name string) (time.Duration, error) {
	b, err := h.procFile(name, "stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat %q", b)
	}
	var ticks int64
	for _, s := range f[11:13] { // utime and stime, fields 14 and 15 of the whole line
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ is 100 on Linux
}

// procFile reads /proc/PID/file of the server's process.
func (h *Herd) procFile(name, file string) ([]byte, error) {
	n, err := h.node(name)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	cmd := n.cmd
	h.mu.Unlock()
	if cmd == nil {
		return nil, fmt.Errorf("server %s is not running", name)
	}
	return os.ReadFile(fmt.Sprintf("/proc/%d/%s", cmd.Process.Pid, file))
}
