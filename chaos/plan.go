package chaos

import (
	"fmt"
	"net"
	"strconv"

	"github.com/herdchaos/herd/herd/topology"
)

// A Plan is how a backend wires a herd, computed once for both backends: a proxy for
// every directed peer link and every server's Places link (AllLinks), the port and
// address each proxy gets, what each proxies to, and what each server's description
// sees (NodeInfo: its peers' and Places' addresses through its own proxies). A backend
// says where things are (PlanSites) and then starts what the plan says.
type Plan struct {
	Config  topology.Config
	Herd    HerdSpec
	Proxies []PlannedProxy // in the order of AllLinks; none when direct
	Nodes   map[string]NodeInfo
	addr    map[Link]string
}

// A PlannedProxy is one link's proxy.
type PlannedProxy struct {
	Link     Link
	Port     int    // where it listens, on the proxies' host
	Addr     string // how a server dials it: the proxies' host and Port
	Upstream string // what it forwards to: the server the link leads to, or the Places emulator
}

// Name is the proxy's name in Toxiproxy: FROM_to_TO.
func (p PlannedProxy) Name() string { return p.Link.From + "_to_" + p.Link.To }

// PlanSites are where a backend puts things.
type PlanSites struct {
	// ProxyHost is the host servers dial the proxies at (containers: Toxiproxy's address;
	// local: 127.0.0.1), and ProxyPort the port of the i-th proxy (of AllLinks).
	ProxyHost string
	ProxyPort func(i int) int
	// Server is where a server is reached from outside it: a proxy's upstream, or when
	// Direct, what its peers dial.
	Server func(name string) string
	// Places is the Places emulator's host:port.
	Places string
	// Node is a server's own part of its NodeInfo: Port, Listen, MetricsListen, LogDir,
	// WorkDir. The plan fills in the rest.
	Node func(name string) NodeInfo
	// SandboxPlaces is, for a herd that dials on loopback (HerdSpec.Sandboxed), the Places
	// URL inside a server's namespace (Google's host, relayed to its Places proxy).
	SandboxPlaces string
	// Direct wires the servers to each other and to Places with no proxy between them.
	Direct bool
}

// NewPlan computes the plan of herd on cfg at sites.
func NewPlan(cfg topology.Config, herd HerdSpec, sites PlanSites) (Plan, error) {
	if err := cfg.Validate(); err != nil {
		return Plan{}, err
	}
	if herd.Sandboxed() && sites.Direct {
		return Plan{}, fmt.Errorf("a herd that dials its neighbours on loopback runs through relays: it cannot be wired directly")
	}
	p := Plan{Config: cfg, Herd: herd, Nodes: map[string]NodeInfo{}, addr: map[Link]string{}}
	for i, l := range AllLinks(cfg) {
		up := sites.Places
		if l.To != Places {
			up = sites.Server(l.To)
		}
		if sites.Direct {
			p.addr[l] = up
			continue
		}
		port := sites.ProxyPort(i)
		if port <= 0 || port > 65535 {
			return Plan{}, fmt.Errorf("link %s: proxy port %d out of range (%d links)", l, port, len(AllLinks(cfg)))
		}
		pp := PlannedProxy{Link: l, Port: port, Addr: net.JoinHostPort(sites.ProxyHost, strconv.Itoa(port)), Upstream: up}
		p.Proxies = append(p.Proxies, pp)
		p.addr[l] = pp.Addr
	}
	for _, name := range cfg.Names() {
		n := sites.Node(name)
		n.Name, n.Here, n.PlacesKey = name, herd.Here, EmulatorKey
		n.PlacesURL = "http://" + p.addr[Link{From: name, To: Places}]
		for _, peer := range cfg.Server(name).Neighbours() {
			n.Peers = append(n.Peers, PeerInfo{Name: peer, Addr: p.addr[Link{From: name, To: peer}]})
		}
		if herd.Sandboxed() {
			// In its own namespace: its own fixed port, its neighbours' on loopback (relays
			// to their proxies), Google's Places host (a TLS relay to its Places proxy).
			fixed := herd.FixedPort(name)
			n.Port, n.Listen, n.PlacesURL = fixed, "127.0.0.1:"+strconv.Itoa(fixed), sites.SandboxPlaces
			for i := range n.Peers {
				n.Peers[i].Addr = "127.0.0.1:" + strconv.Itoa(herd.FixedPort(n.Peers[i].Name))
			}
		}
		p.Nodes[name] = n
	}
	return p, nil
}

// LinkAddr is where the server at l.From reaches l.To: l's proxy, or when direct, l.To
// itself.
func (p Plan) LinkAddr(l Link) string { return p.addr[l] }

// Proxy is link l's proxy.
func (p Plan) Proxy(l Link) (PlannedProxy, bool) {
	for _, pp := range p.Proxies {
		if pp.Link == l {
			return pp, true
		}
	}
	return PlannedProxy{}, false
}
