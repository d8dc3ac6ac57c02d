package simulated

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/simulated/simnet"
)

// proxy is one link's proxy on the in-memory network, with the toxics the chaos framework
// uses, each as Toxiproxy does it (its toxics/ package): latency with jitter, bandwidth,
// slicer, timeout (data dropped; the connection closed after the timeout, or when the
// toxic is removed), slow_close and reset_peer. They are not Toxiproxy's own code: its
// collection holds a mutex while it waits, with a timeout, for a link's goroutines that
// need that mutex, and a goroutine waiting on a mutex stops a synctest bubble's clock, so
// the timeout would never come. Here nothing waits while holding a lock.
type proxy struct {
	h        *Herd
	link     chaos.Link
	addr     string
	upstream string

	mu     sync.Mutex
	ln     *simnet.Listener
	conns  []*pair
	toxics []toxic // in the order they were added, as Toxiproxy chains them
}

// toxic is one toxic in force.
type toxic struct {
	name string
	chaos.Toxic
}

// pair is one connection through the proxy: the dialler's end and the upstream's.
type pair struct {
	client, up *simnet.Conn
	timers     map[string]*time.Timer // reset_peer's, once armed; timeout's with a timeout
}

func newProxy(h *Herd, pp chaos.PlannedProxy, upstream string) (*proxy, error) {
	p := &proxy{h: h, link: pp.Link, addr: pp.Addr, upstream: upstream}
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
		c.close()
	}
}

func (c *pair) close() {
	c.client.Close()
	c.up.Close()
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
		c := &pair{client: client, up: uc.(*simnet.Conn), timers: map[string]*time.Timer{}}
		p.mu.Lock()
		p.conns = slices.DeleteFunc(p.conns, func(o *pair) bool { return o.client.Closed() && o.up.Closed() })
		p.conns = append(p.conns, c)
		for _, t := range p.toxics {
			p.startTimer(c, t)
		}
		p.mu.Unlock()
		go p.pump("upstream", c, c.client, c.up)
		go p.pump("downstream", c, c.up, c.client)
	}
}

// pump carries one direction of c through the toxics of that stream.
func (p *proxy) pump(stream string, c *pair, src, dst *simnet.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if stream == "upstream" {
				p.arm(c)
			}
			if !p.carry(stream, time.Now(), bytes.Clone(buf[:n]), dst) {
				c.close()
				return
			}
		}
		if err != nil {
			if d := p.slowClose(stream); d > 0 {
				time.Sleep(d)
			}
			dst.Close() // Toxiproxy closes the other end whole when one direction ends
			return
		}
	}
}

// chain is the toxics of one stream, now.
func (p *proxy) chain(stream string) []toxic {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []toxic
	for _, t := range p.toxics {
		if t.Stream == stream {
			out = append(out, t)
		}
	}
	return out
}

// carry sends data that arrived at arrived through the stream's toxics to dst; false if
// dst failed.
func (p *proxy) carry(stream string, arrived time.Time, data []byte, dst *simnet.Conn) bool {
	pieces := [][]byte{data}
	var gap time.Duration // between pieces: a slicer's delay
	for _, t := range p.chain(stream) {
		a := t.Attributes
		switch t.Type {
		case "timeout":
			return true // dropped on the ground
		case "latency":
			delay := time.Duration(a["latency"]) * time.Millisecond
			if j := a["jitter"]; j > 0 {
				delay += time.Duration(rand.IntN(2*j)-j) * time.Millisecond
			}
			time.Sleep(time.Until(arrived.Add(delay)))
			arrived = arrived.Add(delay)
		case "bandwidth":
			if rate := a["rate"]; rate > 0 { // KB/s: rate bytes a millisecond
				var out [][]byte
				for _, b := range pieces {
					for len(b) > 0 {
						k := min(len(b), rate*100) // at most 100 ms' worth at a time
						out = append(out, b[:k])
						b = b[k:]
					}
				}
				pieces = out
				gap = max(gap, time.Duration(rate*100)*time.Millisecond/time.Duration(rate))
			}
		case "slicer":
			var out [][]byte
			for _, b := range pieces {
				for _, r := range slicesOf(a["average_size"], a["size_variation"], 0, len(b)) {
					out = append(out, b[r[0]:r[1]])
				}
			}
			pieces = out
			gap = max(gap, time.Duration(a["delay"])*time.Microsecond)
		}
	}
	for i, b := range pieces {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		if _, err := dst.Write(b); err != nil {
			return false
		}
	}
	return true
}

// slicesOf cuts [start, end) as Toxiproxy's slicer does: halves, moved by up to variation,
// until a piece is at most average+variation long.
func slicesOf(average, variation, start, end int) [][2]int {
	if average <= 0 || (end-start)-average <= variation {
		return [][2]int{{start, end}}
	}
	mid := start + (end-start)/2
	if variation > 0 {
		mid += rand.IntN(2*variation) - variation
	}
	return append(slicesOf(average, variation, start, mid), slicesOf(average, variation, mid, end)...)
}

// slowClose is how long the stream's slow_close toxics hold a close.
func (p *proxy) slowClose(stream string) time.Duration {
	var d time.Duration
	for _, t := range p.chain(stream) {
		if t.Type == "slow_close" {
			d += time.Duration(t.Attributes["delay"]) * time.Millisecond
		}
	}
	return d
}

// arm starts c's reset for each reset_peer toxic that has not started it: its timeout
// after the first bytes upstream, as Toxiproxy's reset_peer waits for a chunk.
func (p *proxy) arm(c *pair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.toxics {
		if t.Type != "reset_peer" || c.timers[t.name] != nil {
			continue
		}
		c.timers[t.name] = time.AfterFunc(time.Duration(t.Attributes["timeout"])*time.Millisecond, func() {
			c.client.Reset()
			c.up.Reset()
		})
	}
}

// startTimer starts a timeout toxic's close of c (under p.mu).
func (p *proxy) startTimer(c *pair, t toxic) {
	if t.Type == "timeout" && t.Attributes["timeout"] > 0 {
		c.timers[t.name] = time.AfterFunc(time.Duration(t.Attributes["timeout"])*time.Millisecond, c.close)
	}
}

func (p *proxy) addToxic(name string, t chaos.Toxic) error {
	switch t.Type {
	case "latency", "bandwidth", "slicer", "timeout", "slow_close", "reset_peer":
	default:
		return fmt.Errorf("toxic %s on %s: the sim backend has no toxic %q", name, p.link, t.Type)
	}
	if t.Stream != "upstream" && t.Stream != "downstream" {
		return fmt.Errorf("toxic %s on %s: stream %q: want upstream or downstream", name, p.link, t.Stream)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.toxics {
		if o.name == name {
			return fmt.Errorf("toxic %s on %s: already exists", name, p.link)
		}
	}
	tx := toxic{name, t}
	p.toxics = append(p.toxics, tx)
	for _, c := range p.conns {
		p.startTimer(c, tx)
	}
	return nil
}

func (p *proxy) removeToxic(_ context.Context, name string) error {
	p.mu.Lock()
	i := slices.IndexFunc(p.toxics, func(t toxic) bool { return t.name == name })
	if i < 0 {
		p.mu.Unlock()
		return fmt.Errorf("toxic %s on %s: not found", name, p.link)
	}
	t := p.toxics[i]
	p.toxics = slices.Delete(p.toxics, i, i+1)
	conns := slices.Clone(p.conns)
	for _, c := range conns {
		if tm := c.timers[name]; tm != nil {
			tm.Stop()
			delete(c.timers, name)
		}
	}
	p.mu.Unlock()
	if t.Type == "timeout" {
		// Toxiproxy's timeout toxic closes its link when removed (its Cleanup).
		for _, c := range conns {
			c.close()
		}
	}
	return nil
}
