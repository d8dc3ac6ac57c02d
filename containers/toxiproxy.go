package containers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/herdchaos/herd/chaos"
)

func (h *Herd) startToxiproxy(ctx context.Context) error {
	req := h.request(h.Images.Toxiproxy, toxiAPIPort, toxiAlias, h.ip(hostToxiproxy))
	req.WaitingFor = onLoopback{wait.ForHTTP("/version").WithPort(toxiAPIPort).
		WithStartupTimeout(30 * time.Second).WithPollInterval(25 * time.Millisecond)}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Logger: slogAdapter{h.opts.Logger}, ContainerRequest: req, Started: true})
	if err != nil {
		return fmt.Errorf("toxiproxy container: %w", err)
	}
	if h.toxiAPI, err = h.mapped(ctx, c, toxiAPIPort); err != nil {
		return err
	}
	h.tp = toxiclient.NewClient(h.toxiAPI)
	return nil
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
