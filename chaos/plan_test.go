package chaos

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herdchaos/herd/herd/topology"
)

func testSites() PlanSites {
	return PlanSites{
		ProxyHost:     "10.0.0.2",
		ProxyPort:     func(i int) int { return 20000 + i },
		Server:        func(name string) string { return "srv-" + name + ":12000" },
		Places:        "10.0.0.3:8080",
		SandboxPlaces: "https://places.example",
		Node:          func(name string) NodeInfo { return NodeInfo{Port: 12000, Listen: ":12000", LogDir: "/logs/" + name} },
	}
}

// The plan gives every directed peer link and every Places link a proxy of its own, on
// its own port, forwarding to the server the link leads to (or to Places), and each
// server's description sees its neighbours and Places through its own proxies.
func TestPlanWiresEveryLinkThroughItsOwnProxy(t *testing.T) {
	cfg := topology.Default("127.0.0.1")
	p, err := NewPlan(cfg, OurHerd(), testSites())
	if err != nil {
		t.Fatal(err)
	}
	all := AllLinks(cfg)
	if len(p.Proxies) != len(all) || len(all) != 2*len(cfg.Links())+len(cfg.Names()) {
		t.Fatalf("%d proxies for %d links (%d undirected, %d servers)", len(p.Proxies), len(all), len(cfg.Links()), len(cfg.Names()))
	}
	ports := map[int]Link{}
	for i, pp := range p.Proxies {
		if pp.Link != all[i] {
			t.Errorf("proxy %d is %s, want %s (the order of AllLinks)", i, pp.Link, all[i])
		}
		if other, dup := ports[pp.Port]; dup {
			t.Errorf("%s and %s share port %d", pp.Link, other, pp.Port)
		}
		ports[pp.Port] = pp.Link
		if want := fmt.Sprintf("10.0.0.2:%d", pp.Port); pp.Addr != want {
			t.Errorf("%s: addr %s, want %s", pp.Link, pp.Addr, want)
		}
		want := "srv-" + pp.Link.To + ":12000"
		if pp.Link.To == Places {
			want = "10.0.0.3:8080"
		}
		if pp.Upstream != want {
			t.Errorf("%s: upstream %s, want %s", pp.Link, pp.Upstream, want)
		}
		if pp.Name() != pp.Link.From+"_to_"+pp.Link.To {
			t.Errorf("%s: name %s", pp.Link, pp.Name())
		}
	}
	for _, name := range cfg.Names() {
		n := p.Nodes[name]
		if n.Name != name || n.Listen != ":12000" || n.LogDir != "/logs/"+name || n.PlacesKey != EmulatorKey {
			t.Errorf("%s: node info %+v", name, n)
		}
		places, _ := p.Proxy(Link{From: name, To: Places})
		if n.PlacesURL != "http://"+places.Addr {
			t.Errorf("%s: Places URL %s, want its own Places proxy %s", name, n.PlacesURL, places.Addr)
		}
		neighbours := cfg.Server(name).Neighbours()
		if len(n.Peers) != len(neighbours) {
			t.Fatalf("%s: peers %v, want %v", name, n.Peers, neighbours)
		}
		for i, peer := range n.Peers {
			pp, ok := p.Proxy(Link{From: name, To: neighbours[i]})
			if !ok || peer.Name != neighbours[i] || peer.Addr != pp.Addr || p.LinkAddr(pp.Link) != pp.Addr {
				t.Errorf("%s: peer %+v, want %s through proxy %s", name, peer, neighbours[i], pp.Addr)
			}
		}
	}
}

// Direct: no proxies, each link dials what it leads to.
func TestPlanDirectDialsUpstreams(t *testing.T) {
	cfg := topology.Default("127.0.0.1")
	sites := testSites()
	sites.Direct = true
	p, err := NewPlan(cfg, OurHerd(), sites)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Proxies) != 0 {
		t.Fatalf("%d proxies when direct", len(p.Proxies))
	}
	n := p.Nodes["Goloman"]
	if n.PlacesURL != "http://10.0.0.3:8080" || n.Peers[0].Addr != "srv-"+n.Peers[0].Name+":12000" {
		t.Errorf("direct node info %+v", n)
	}
}

// A herd that dials on loopback sees its own fixed port and its neighbours' on loopback;
// the plan's proxies are the same (the backend relays loopback to them).
func TestPlanSandboxedHerdDialsLoopback(t *testing.T) {
	cfg := topology.Default("127.0.0.1")
	herd := HerdSpec{Name: "fixed", Command: []string{"x"}, Dial: DialLoopback, Servers: map[string]int{}}
	for i, n := range cfg.Names() {
		herd.Servers[n] = 15000 + i
	}
	p, err := NewPlan(cfg, herd, testSites())
	if err != nil {
		t.Fatal(err)
	}
	n := p.Nodes["Hands"]
	if n.Port != 15001 || n.Listen != "127.0.0.1:15001" || n.PlacesURL != "https://places.example" {
		t.Errorf("sandboxed node info %+v", n)
	}
	for _, peer := range n.Peers {
		if want := fmt.Sprintf("127.0.0.1:%d", herd.FixedPort(peer.Name)); peer.Addr != want {
			t.Errorf("peer %s at %s, want %s", peer.Name, peer.Addr, want)
		}
	}
	if pp, _ := p.Proxy(Link{From: "Hands", To: "Goloman"}); !strings.HasPrefix(pp.Addr, "10.0.0.2:") {
		t.Errorf("sandboxed herd's proxy %+v", pp)
	}
	sites := testSites()
	sites.Direct = true
	if _, err := NewPlan(cfg, herd, sites); err == nil {
		t.Error("a sandboxed herd wired directly: no error")
	}
}

func TestPlanRefusesPortsOutOfRange(t *testing.T) {
	sites := testSites()
	sites.ProxyPort = func(i int) int { return 65530 + i }
	if _, err := NewPlan(topology.Default("127.0.0.1"), OurHerd(), sites); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("err = %v, want a port out of range", err)
	}
}
