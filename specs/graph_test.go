package specs

import (
	"math/rand/v2"
	"slices"
	"sort"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/topology"
)

// graph is the herd under test's topology, known when the spec tree is built: the
// servers and links of HERD_DESCRIPTION, or the five of docs/PROTOCOL.md. Specs take their
// cases from it (the hub, a leaf, a link with a detour, cuts) and name no server, so the
// same suite tests a herd of any names and links.
var graph = loadGraph()

// herdGraph is an undirected graph of the herd's servers.
type herdGraph struct {
	names []string            // sorted as the topology lists them
	adj   map[string][]string // neighbours, sorted
}

func loadGraph() herdGraph {
	cfg := topology.Default("127.0.0.1")
	if described != nil { // a description that does not load is reported by BeforeSuite
		if c, err := described.Graph(cfg); err == nil {
			cfg = c
		}
	}
	return newGraph(cfg)
}

func newGraph(cfg topology.Config) herdGraph {
	g := herdGraph{names: cfg.Names(), adj: map[string][]string{}}
	for _, n := range g.names {
		g.adj[n] = cfg.Server(n).Neighbours()
		sort.Strings(g.adj[n])
	}
	return g
}

// at is the i-th server, wrapping: specs that need "some server" spread over the herd.
func (g herdGraph) at(i int) string { return g.names[i%len(g.names)] }

func (g herdGraph) degree(n string) int { return len(g.adj[n]) }

// hops is the number of links between a and b over the links not in without (-1: none).
func (g herdGraph) hops(a, b string, without ...[2]string) int {
	skip := func(x, y string) bool {
		for _, l := range without {
			if (l[0] == x && l[1] == y) || (l[0] == y && l[1] == x) {
				return true
			}
		}
		return false
	}
	dist := map[string]int{a: 0}
	queue := []string{a}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if x == b {
			return dist[x]
		}
		for _, y := range g.adj[x] {
			if _, seen := dist[y]; !seen && !skip(x, y) {
				dist[y] = dist[x] + 1
				queue = append(queue, y)
			}
		}
	}
	return -1
}

// hub is a server of the highest degree (the first by name among equals).
func (g herdGraph) hub() string {
	best := g.names[0]
	for _, n := range g.names {
		if g.degree(n) > g.degree(best) {
			best = n
		}
	}
	return best
}

// leaf is a server of the lowest degree, the farthest from the hub among equals.
func (g herdGraph) leaf() string {
	hub, best := g.hub(), ""
	for _, n := range g.names {
		if n == hub && len(g.names) > 1 {
			continue
		}
		if best == "" || g.degree(n) < g.degree(best) || (g.degree(n) == g.degree(best) && g.hops(hub, n) > g.hops(hub, best)) {
			best = n
		}
	}
	return best
}

// far is a server the most hops from a.
func (g herdGraph) far(a string) string {
	best := a
	for _, n := range g.names {
		if g.hops(a, n) > g.hops(a, best) {
			best = n
		}
	}
	return best
}

// other is a server that is not any of these (the first by name), or "" when there is none.
func (g herdGraph) other(not ...string) string {
	for _, n := range g.names {
		if !slices.Contains(not, n) {
			return n
		}
	}
	return ""
}

// links are the herd's undirected links, each once, in name order.
func (g herdGraph) links() [][2]string {
	var out [][2]string
	for _, a := range g.names {
		for _, b := range g.adj[a] {
			if a < b {
				out = append(out, [2]string{a, b})
			}
		}
	}
	return out
}

// detour is a link whose ends stay connected without it (it lies on a cycle), preferring
// one at the hub; ok is false in a tree.
func (g herdGraph) detour() (l [2]string, ok bool) {
	hub := g.hub()
	var found [][2]string
	for _, l := range g.links() {
		if g.hops(l[0], l[1], l) > 0 {
			found = append(found, l)
		}
	}
	for _, l := range found {
		if l[0] == hub || l[1] == hub {
			if l[1] == hub {
				l[0], l[1] = l[1], l[0]
			}
			return l, true
		}
	}
	if len(found) > 0 {
		return found[0], true
	}
	return l, false
}

// linksInto are the directed links into n.
func (g herdGraph) linksInto(n string) []chaos.Link {
	var out []chaos.Link
	for _, p := range g.adj[n] {
		out = append(out, chaos.Link{From: p, To: n})
	}
	return out
}

// both are a link's two directions.
func both(a, b string) []chaos.Link { return []chaos.Link{{From: a, To: b}, {From: b, To: a}} }

// halves splits the herd in two along a cut: the servers nearest to from (by hops, then
// name), half of them, against the rest (a side may be in pieces: the oracle knows).
func (g herdGraph) halves(from string) [][]string {
	order := slices.Clone(g.names)
	sort.SliceStable(order, func(i, j int) bool { return g.hops(from, order[i]) < g.hops(from, order[j]) })
	k := (len(order) + 1) / 2
	return [][]string{slices.Clone(order[:k]), slices.Clone(order[k:])}
}

// reach is the part of group that an update at from reaches over links inside group.
func (g herdGraph) reach(from string, group []string) []string {
	seen := map[string]bool{from: true}
	queue := []string{from}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		for _, y := range g.adj[x] {
			if !seen[y] && slices.Contains(group, y) {
				seen[y] = true
				queue = append(queue, y)
			}
		}
	}
	var out []string
	for _, n := range group {
		if seen[n] {
			out = append(out, n)
		}
	}
	return out
}

// sample is every item when there are at most max, else max of them drawn from the
// suite's seed (printed at the start), so big herds keep the suite's length.
func sample[T any](items []T, max int) []T {
	if len(items) <= max {
		return items
	}
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	idx := r.Perm(len(items))[:max]
	sort.Ints(idx)
	out := make([]T, 0, max)
	for _, i := range idx {
		out = append(out, items[i])
	}
	return out
}

// entries turns names into table entries, each named by itself.
func entries(ns []string) []TableEntry {
	var out []TableEntry
	for _, n := range ns {
		out = append(out, Entry(n, n))
	}
	return out
}
