package containers

import (
	"context"
	"fmt"
	"log/slog"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/topology"
)

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
	cli, err := NewDockerClient(ctx)
	if err != nil {
		return nil, err
	}
	h := &Herd{opts: settings{Herd: st.Herd, Config: st.Topology, Logger: slog.New(slog.DiscardHandler)}, cfg: st.Topology, cli: cli, RunID: st.RunID,
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
	if err := h.readProxies(); err != nil {
		cli.Close()
		return nil, err
	}
	return h, nil
}
