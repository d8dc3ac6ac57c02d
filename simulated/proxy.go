package simulated

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/simulated/simnet"
)

// proxy is one link's proxy: Toxiproxy's own toxic chains (latency, bandwidth, slicer,
// timeout, slow_close) between connections of the in-memory network. reset_peer is the
// one toxic done here: Toxiproxy's sets SO_LINGER on a *net.TCPConn, which an in-memory
// connection is not, so the proxy resets both ends itself, as that toxic does: after
// its timeout from the first bytes sent upstream.
type proxy struct {
	h        *Herd
	link     chaos.Link
	addr     string
	upstream string
	tp       *toxiproxy.Proxy

	mu     sync.Mutex
	ln     *simnet.Listener
	conns  []*pair
	resets map[string]time.Duration // reset_peer toxics by name: their timeouts
}

// pair is one connection through the proxy: the dialler's and the upstream's.
type pair struct {
	client, up *simnet.Conn
	reset      *time.Timer // a reset_peer toxic's, once armed
}

func newProxy(h *Herd, pp chaos.PlannedProxy, upstream string) (*proxy, error) {
	p := &proxy{h: h, link: pp.Link, addr: pp.Addr, upstream: upstream, resets: map[string]time.Duration{},
		tp: toxiproxy.NewProxy(h.toxi, pp.Name(), pp.Addr, upstream)}
	return p, p.start()
}

// start listens (again): a disabled proxy refuses connections, as Toxiproxy's does.
func (p *proxy) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := p.h.proxies.Listen(p.addr)
	if err != nil {
		return fmt.Errorf("proxy %s: %w", p.link, err)
	}
	p.ln = ln
	go p.serve(ln)
	return nil
}

// stop stops listening and closes every connection through the proxy.
func (p *proxy) stop() {
	p.mu.Lock()
	ln, conns := p.ln, p.conns
	p.ln, p.conns = nil, nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.client.Close()
		c.up.Close()
	}
}

func (p *proxy) serve(ln *simnet.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		client := nc.(*simnet.Conn)
		uc, err := p.h.proxies.Dial(context.Background(), p.upstream)
		if err != nil {
			client.Close()
			continue
		}
		c := &pair{client: client, up: uc.(*simnet.Conn)}
		p.mu.Lock()
		live := p.conns[:0]
		for _, o := range p.conns {
			if !o.client.Closed() || !o.up.Closed() {
				live = append(live, o)
			}
		}
		p.conns = append(live, c)
		p.mu.Unlock()
		name := client.RemoteAddr().String()
		p.tp.Toxics.StartLink(p.h.toxi, name+"upstream", watched{p, c}, c.up, stream.Upstream)
		p.tp.Toxics.StartLink(p.h.toxi, name+"downstream", c.up, c.client, stream.Downstream)
	}
}

// watched reads what the dialler sends upstream, arming a reset_peer toxic.
type watched struct {
	p *proxy
	c *pair
}

func (w watched) Read(b []byte) (int, error) {
	n, err := w.c.client.Read(b)
	if n > 0 {
		w.p.arm(w.c)
	}
	return n, err
}

// arm starts the reset of c if a reset_peer toxic is in force and c's is not started.
func (p *proxy) arm(c *pair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.resets) == 0 || c.reset != nil {
		return
	}
	after := time.Duration(-1)
	for _, d := range p.resets {
		if after < 0 || d < after {
			after = d
		}
	}
	c.reset = time.AfterFunc(after, func() {
		c.client.Reset()
		c.up.Reset()
	})
}

func (p *proxy) addToxic(name string, t chaos.Toxic) error {
	if t.Type == "reset_peer" {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, dup := p.resets[name]; dup {
			return fmt.Errorf("toxic %s on %s: already exists", name, p.link)
		}
		p.resets[name] = time.Duration(t.Attributes["timeout"]) * time.Millisecond
		return nil
	}
	if _, err := p.tp.Toxics.AddToxicJson(bytes.NewReader(toxicJSON(name, t))); err != nil {
		return fmt.Errorf("toxic %s on %s: %w", t.Type, p.link, err)
	}
	return nil
}

func (p *proxy) removeToxic(ctx context.Context, name string) error {
	p.mu.Lock()
	if _, ok := p.resets[name]; ok {
		delete(p.resets, name)
		if len(p.resets) == 0 {
			for _, c := range p.conns {
				if c.reset != nil && c.reset.Stop() {
					c.reset = nil
				}
			}
		}
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	return p.tp.Toxics.RemoveToxic(ctx, name)
}
