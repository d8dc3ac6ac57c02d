package containers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	dnetwork "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/local/sandbox"
)

// makePlan computes the herd's wiring (chaos.Plan) on the run's network: every proxy in
// the Toxiproxy container from port firstLinkPort on, each server on its own address.
func (h *Herd) makePlan() error {
	port := h.opts.Herd.Port
	p, err := chaos.NewPlan(h.cfg, h.opts.Herd, chaos.PlanSites{
		ProxyHost: h.ip(hostToxiproxy).String(),
		ProxyPort: func(i int) int { return firstLinkPort + i },
		Server: func(name string) string {
			return net.JoinHostPort(h.nodeIP(name).String(), strconv.Itoa(h.clientPort()))
		},
		Places:        net.JoinHostPort(h.ip(hostPlaces).String(), strings.TrimSuffix(emulatorPort, "/tcp")),
		SandboxPlaces: "https://" + sandbox.GoogleHosts[0],
		Node: func(string) chaos.NodeInfo {
			return chaos.NodeInfo{Port: port, Listen: ":" + strconv.Itoa(port), LogDir: logDir,
				MetricsListen: ":" + strconv.Itoa(h.opts.Herd.MetricsPort)}
		},
	})
	h.plan = p
	return err
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
	toxi := h.plan.LinkAddr
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
	r, err := h.opts.Herd.Render(h.plan.Nodes[name], h.cfg)
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
	holder, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Logger: slogAdapter{h.opts.Logger}, ContainerRequest: hreq, Started: true})
	if err != nil {
		return fmt.Errorf("server %s: holder: %w", name, err)
	}
	holderID = holder.GetContainerID()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Logger: slogAdapter{h.opts.Logger}, ContainerRequest: req, Started: true})
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
// (which does not change when the server restarts). No testcontainers-go strategy fits:
// the server's container has no ports of its own (it lives in its holder's namespace,
// and the holder's port is the holder's, listening or not), ready means answering a
// protocol line, not accepting a connection, and the same wait runs after Start of a
// killed server, which for an attached herd is a container known by id alone.
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
