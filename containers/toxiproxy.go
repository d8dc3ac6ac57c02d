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

// createProxies makes the plan's proxies in Toxiproxy, each listening on its port on
// every address of the Toxiproxy container.
func (h *Herd) createProxies() error {
	var want []toxiclient.Proxy
	for _, pp := range h.plan.Proxies {
		want = append(want, toxiclient.Proxy{Name: pp.Name(), Listen: "0.0.0.0:" + strconv.Itoa(pp.Port), Upstream: pp.Upstream, Enabled: true})
	}
	if _, err := h.tp.Populate(want); err != nil {
		return fmt.Errorf("creating proxies: %w", err)
	}
	// Read them back: the client marks proxies from Populate as not yet created, so a
	// later Enable or Disable would try to create them again (HTTP 409).
	return h.readProxies()
}

// readProxies takes Toxiproxy's proxy of every link of the herd's topology.
func (h *Herd) readProxies() error {
	byName, err := h.tp.Proxies()
	if err != nil {
		return fmt.Errorf("toxiproxy of herd %s: listing proxies: %w", h.RunID, err)
	}
	for _, l := range chaos.AllLinks(h.cfg) {
		p := byName[chaos.PlannedProxy{Link: l}.Name()]
		if p == nil {
			return fmt.Errorf("toxiproxy of herd %s has no proxy for %s", h.RunID, l)
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
