package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/topology"
)

// Backend is one way of running a herd with every link through its own proxy: the
// containers backend, or local processes. The Cluster drives it.
type Backend interface {
	// Config is the herd's topology (names and links; addresses are the backend's).
	Config() topology.Config
	// ClientAddr is where a client on this machine reaches node now (it may change
	// after a restart).
	ClientAddr(ctx context.Context, node string) (string, error)
	// PlacesURL is the Places emulator's base URL as reachable from this process.
	PlacesURL() string

	AddToxic(ctx context.Context, link Link, name string, t Toxic) error
	RemoveToxic(ctx context.Context, link Link, name string) error
	SetLinkEnabled(ctx context.Context, link Link, enabled bool) error
	// SetPlacesStatus makes the emulator fail every request with status ("" restores).
	SetPlacesStatus(ctx context.Context, status string) error

	Kill(ctx context.Context, node string) error   // SIGKILL
	Stop(ctx context.Context, node string) error   // SIGTERM, then SIGKILL if it lingers
	Start(ctx context.Context, node string) error  // start a killed node; returns once it serves
	Pause(ctx context.Context, node string) error  // freeze
	Resume(ctx context.Context, node string) error // thaw
	// Logs are the node's own log file and its standard error, for artifacts: of each,
	// the last LogLimit bytes (TailFile, Tail).
	Logs(ctx context.Context, node string) (map[string][]byte, error)
	Close(ctx context.Context) error
}

// MetricsSource is a backend that can reach the servers' Prometheus metrics (when the
// herd under test serves them).
type MetricsSource interface {
	// MetricsURL is node's /metrics URL, or "" if the herd serves none.
	MetricsURL(ctx context.Context, node string) (string, error)
}

// NodeState is a server's lifecycle state.
type NodeState string

const (
	Running NodeState = "running"
	Paused  NodeState = "paused"
	Crashed NodeState = "crashed"
	Stopped NodeState = "stopped"
)

// ActiveFault is a fault in force.
type ActiveFault struct {
	ID      string
	Fault   Fault
	Effects Effects
	Since   time.Duration // on the history clock
}

// Cluster is a running herd under test: faults in, client operations recorded, the
// oracle and checkers on top. It is safe for concurrent use.
type Cluster struct {
	b       Backend
	cfg     topology.Config
	Seed    uint64
	Rand    *rand.Rand
	History *History
	Timing  Timing
	// Claims says which extensions beyond docs/PROTOCOL.md's common part the herd claims (see
	// HerdSpec.Extensions): the checkers hold it to those only. Nil: every one (ours).
	Claims func(ext string) bool

	mu        sync.Mutex
	nextID    int
	active    map[string]*ActiveFault
	order     []string
	cutCount  map[Link]int
	nodeFault map[string]string // node -> id of the crash or pause fault holding it

	// The Places emulator's query log, as far as it was read (see queryFor).
	qmu      sync.Mutex
	queries  []placesQuery
	querySeq int
}

// Timing is what the oracle allows a herd on top of the injected latencies.
type Timing struct {
	// Settle covers noticing a healed link and reconnecting (heartbeat timeout,
	// backoff, handshake, resync).
	Settle time.Duration
	// PerHop is the processing allowance per hop.
	PerHop time.Duration
	// SlowHop is added per hop that has a bandwidth, slicer or slow_close toxic. A link
	// that reconnects resends the sender's whole state, and a fresh update queues behind
	// it in the socket buffers: over a 7-byte slicer (about 14 KB/s through Toxiproxy) a
	// suite's thousand clients take about 7 s.
	SlowHop time.Duration
}

// DefaultTiming suits our herd (heartbeat 200ms, silence 1.5s, backoff up to 1s) on a
// loaded two-core machine.
var DefaultTiming = Timing{Settle: 4 * time.Second, PerHop: 100 * time.Millisecond, SlowHop: 15 * time.Second}

// NewCluster wraps a backend. Every random choice of the run comes from seed.
func NewCluster(b Backend, seed uint64) *Cluster {
	c := &Cluster{
		b: b, cfg: b.Config(), Seed: seed, Rand: rand.New(rand.NewPCG(seed, seed^0x5eed)),
		History: NewHistory(), Timing: DefaultTiming,
		active: map[string]*ActiveFault{}, cutCount: map[Link]int{}, nodeFault: map[string]string{},
	}
	c.History.Seed, c.History.Topology = seed, &c.cfg
	return c
}

// Backend is the backend under the cluster.
func (c *Cluster) Backend() Backend { return c.b }

// Config is the herd's topology.
func (c *Cluster) Config() topology.Config { return c.cfg }

// Nodes are the servers' names.
func (c *Cluster) Nodes() []string { return c.cfg.Names() }

// Inject applies a fault and returns its id. On error nothing of it stays applied.
func (c *Cluster) Inject(ctx context.Context, f Fault) (string, error) {
	e, err := f.Effects(c.cfg)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range slices.Concat(e.Crash, e.Stop, e.Pause, e.Restart) {
		if id, busy := c.nodeFault[n]; busy {
			return "", fmt.Errorf("%s: %s is already held by fault %s (%s)", f, n, id, c.active[id].Fault)
		}
	}
	c.nextID++
	id := fmt.Sprintf("f%d", c.nextID)
	af := &ActiveFault{ID: id, Fault: f, Effects: e, Since: c.History.Now()}
	// The window opens before the effects: a check that ends while they are being applied
	// sees a change under way.
	c.History.FaultStarted(id, SpecOf(f), f.String(), af.Since)
	if err := c.apply(ctx, id, e); err != nil {
		c.unapply(context.WithoutCancel(ctx), id, e)
		c.History.FaultEnded(id, c.History.Now()) // never applied: a change, not a fault in force
		return "", fmt.Errorf("%s: %w", f, err)
	}
	applied := c.History.Now()
	c.History.FaultApplied(id, applied)
	if len(e.Crash)+len(e.Stop)+len(e.Pause)+len(e.Toxics)+len(e.Cut) == 0 && e.PlacesFail == "" {
		// A momentary fault (restart): it is over once applied.
		c.History.FaultEnded(id, applied)
		return id, nil
	}
	c.active[id] = af
	c.order = append(c.order, id)
	return id, nil
}

func (c *Cluster) apply(ctx context.Context, id string, e Effects) error {
	for _, l := range e.Cut {
		c.cutCount[l]++
		if c.cutCount[l] == 1 {
			if err := c.b.SetLinkEnabled(ctx, l, false); err != nil {
				return err
			}
		}
	}
	for i, t := range e.Toxics {
		if err := c.b.AddToxic(ctx, t.Link, toxicName(id, i), t.Toxic); err != nil {
			return err
		}
	}
	for _, held := range []struct {
		nodes []string
		do    func(context.Context, string) error
	}{{e.Crash, c.b.Kill}, {e.Stop, c.b.Stop}, {e.Pause, c.b.Pause}} {
		for _, n := range held.nodes {
			c.nodeFault[n] = id
			if err := held.do(ctx, n); err != nil {
				return err
			}
		}
	}
	for _, n := range e.Restart {
		if err := c.b.Kill(ctx, n); err != nil {
			return err
		}
		if err := c.b.Start(ctx, n); err != nil {
			return err
		}
	}
	if e.PlacesFail != "" {
		return c.b.SetPlacesStatus(ctx, e.PlacesFail)
	}
	return nil
}

func toxicName(id string, i int) string { return fmt.Sprintf("%s-%d", id, i) }

// unapply undoes effects; it keeps going past errors and returns them all.
func (c *Cluster) unapply(ctx context.Context, id string, e Effects) error {
	var errs []error
	for _, l := range e.Cut {
		if c.cutCount[l] == 0 {
			continue
		}
		c.cutCount[l]--
		if c.cutCount[l] == 0 {
			errs = append(errs, c.b.SetLinkEnabled(ctx, l, true))
		}
	}
	for i, t := range e.Toxics {
		errs = append(errs, c.b.RemoveToxic(ctx, t.Link, toxicName(id, i)))
	}
	for _, n := range e.Pause {
		if c.nodeFault[n] == id {
			delete(c.nodeFault, n)
			errs = append(errs, c.b.Resume(ctx, n))
		}
	}
	for _, n := range slices.Concat(e.Crash, e.Stop) {
		if c.nodeFault[n] == id {
			delete(c.nodeFault, n)
			errs = append(errs, c.b.Start(ctx, n))
		}
	}
	if e.PlacesFail != "" {
		errs = append(errs, c.b.SetPlacesStatus(ctx, ""))
	}
	return errors.Join(errs...)
}

// Heal removes one fault.
func (c *Cluster) Heal(ctx context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	af, ok := c.active[id]
	if !ok {
		return fmt.Errorf("no fault %q in force", id)
	}
	delete(c.active, id)
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == id })
	c.History.FaultHealing(id, c.History.Now())
	err := c.unapply(ctx, id, af.Effects)
	c.History.FaultEnded(id, c.History.Now())
	if err != nil {
		return fmt.Errorf("healing %s (%s): %w", id, af.Fault, err)
	}
	return nil
}

// HealAll removes every fault, newest first.
func (c *Cluster) HealAll(ctx context.Context) error {
	c.mu.Lock()
	ids := slices.Clone(c.order)
	c.mu.Unlock()
	var errs []error
	for i := len(ids) - 1; i >= 0; i-- {
		errs = append(errs, c.Heal(ctx, ids[i]))
	}
	return errors.Join(errs...)
}

// Settle sends an update at every server, from a client of its own (prefix + the
// server's name), and waits until each reached every other server: the herd is whole
// again. Use it after HealAll, so the oracle allows for the links' reconnection.
func (c *Cluster) Settle(ctx context.Context, prefix string) error {
	for _, n := range c.Nodes() {
		u, err := c.Update(ctx, n, prefix+n, "+34.068930-118.445127", ClientTime())
		if err != nil {
			return fmt.Errorf("an update at %s: %w", n, err)
		}
		if _, err := c.AwaitDelivery(ctx, u); err != nil {
			return fmt.Errorf("an update at %s: %w", n, err)
		}
	}
	return nil
}

// HealAndSettle heals every fault, then settles the herd (Settle): the herd is whole
// again, as between specs, tests or the trials of a shrink.
func (c *Cluster) HealAndSettle(ctx context.Context, prefix string) error {
	if err := c.HealAll(ctx); err != nil {
		return err
	}
	return c.Settle(ctx, prefix)
}

// Calm reports whether the faults in force stayed the same from from to to, by the
// history's fault windows: no inject or heal was under way, even in part, in between (one
// still under way counts). An oracle's verdict on an update holds only over such a stretch.
func (c *Cluster) Calm(from, to time.Duration) bool {
	return calm(c.History.faults(), from, to)
}

// Active are the faults in force, oldest first.
func (c *Cluster) Active() []ActiveFault {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ActiveFault, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, *c.active[id])
	}
	return out
}

// claims says whether the herd claims an extension (see Claims).
func (c *Cluster) claims(ext string) bool { return c.Claims == nil || c.Claims(ext) }

// placesDelay is the latency the faults in force add to node's Places link: a WHATSAT
// there takes that much longer to be answered (or the herd's own timeout), so a check
// that observes through WHATSAT allows it.
func (c *Cluster) placesDelay(node string) time.Duration {
	var d time.Duration
	for _, f := range c.Active() {
		for _, t := range f.Effects.Toxics {
			if t.Link == (Link{node, Places}) && t.Toxic.Type == "latency" {
				d += time.Duration(t.Toxic.Attributes["latency"]+t.Toxic.Attributes["jitter"]) * time.Millisecond
			}
		}
	}
	return d
}

// DescribeFaults lists the faults in force, for failure messages.
func (c *Cluster) DescribeFaults() string {
	af := c.Active()
	if len(af) == 0 {
		return "no faults in force"
	}
	s := make([]string, len(af))
	for i, f := range af {
		s[i] = f.ID + " " + f.Fault.String()
	}
	return "faults in force: " + strings.Join(s, "; ")
}

// State is a node's lifecycle state.
func (c *Cluster) State(node string) NodeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.nodeFault[node]
	if !ok {
		return Running
	}
	e := c.active[id].Effects
	switch {
	case slices.Contains(e.Pause, node):
		return Paused
	case slices.Contains(e.Stop, node):
		return Stopped
	}
	return Crashed
}

// Oracle is the oracle for the faults in force now, by the history's fault windows
// (OracleAt): what the checks judge by.
func (c *Cluster) Oracle() *Oracle { return c.oracleAt(c.History.Now()) }

// oracleAt is the oracle at t by the history's fault windows.
func (c *Cluster) oracleAt(t time.Duration) *Oracle {
	o, err := OracleAt(c.cfg, c.Timing, c.History.faults(), t)
	if err != nil {
		// Every window's fault was applied, so it has effects; should one not, the faults
		// the cluster holds still say what is in force.
		return NewOracle(c.cfg, c.Active(), c.Timing)
	}
	return o
}

// Close heals nothing and removes everything the backend started.
func (c *Cluster) Close(ctx context.Context) error { return c.b.Close(ctx) }

// IAMAT sends an IAMAT to node as a one-shot client and records it. It returns the
// reply without its newline.
func (c *Cluster) IAMAT(ctx context.Context, node, clientID, location, tm string) (string, error) {
	out, _, err := c.exchange(ctx, "iamat", node, fmt.Sprintf("IAMAT %s %s %s\n", clientID, location, tm))
	return strings.TrimSuffix(out, "\n"), err
}

// WHATSAT sends a WHATSAT to node as a one-shot client and records it. The reply's Raw is
// everything the server sent.
func (c *Cluster) WHATSAT(ctx context.Context, node, clientID, radiusKm string, bound int) (client.WhatsatReply, error) {
	rep, _, err := c.whatsat(ctx, node, clientID, radiusKm, bound)
	return rep, err
}

// whatsat is WHATSAT that also returns the op's id.
func (c *Cluster) whatsat(ctx context.Context, node, clientID, radiusKm string, bound int) (client.WhatsatReply, int, error) {
	out, op, err := c.exchange(ctx, "whatsat", node, fmt.Sprintf("WHATSAT %s %s %d\n", clientID, radiusKm, bound))
	if err != nil {
		return client.WhatsatReply{Raw: out}, op, err
	}
	rep, err := client.ParseWhatsat(out)
	rep.Raw = out // the whole answer: the checkers judge every byte of it (the split stops at a blank line)
	return rep, op, err
}

// Raw sends text to node as a one-shot client (graders' style) and records it.
func (c *Cluster) Raw(ctx context.Context, node, text string) (string, error) {
	out, _, err := c.exchange(ctx, "raw", node, text)
	return out, err
}

// exchange is one recorded client operation: the request without its final newline, and
// the reply exactly as the server sent it; it returns the op's id too.
func (c *Cluster) exchange(ctx context.Context, kind, node, text string) (string, int, error) {
	op := c.History.Invoke(kind, node, strings.TrimSuffix(text, "\n"))
	addr, err := c.b.ClientAddr(ctx, node)
	var out string
	if err == nil {
		out, err = client.ExchangeVia(ctx, dialer(c.b), addr, text)
	}
	c.History.Complete(op, out, err)
	return out, op, err
}

// sortedKeys returns a map's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Persisted is what a Cluster must remember across processes (herdctl commands run in
// other terminals): the faults in force, as data.
type Persisted struct {
	NextID int              `json:"next_id"`
	Faults []PersistedFault `json:"faults"`
}

// PersistedFault is one fault in force.
type PersistedFault struct {
	ID    string    `json:"id"`
	Spec  FaultSpec `json:"fault"`
	Since time.Time `json:"since"`
}

// Persist returns the faults in force, oldest first.
func (c *Cluster) Persist() Persisted {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := Persisted{NextID: c.nextID}
	for _, id := range c.order {
		af := c.active[id]
		p.Faults = append(p.Faults, PersistedFault{ID: id, Spec: SpecOf(af.Fault), Since: c.History.start.Add(af.Since)})
	}
	return p
}

// Restore takes back the faults a previous process left in force. It changes nothing in
// the herd: the backend already has them applied.
func (c *Cluster) Restore(p Persisted) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID = p.NextID
	for _, pf := range p.Faults {
		f, err := pf.Spec.Fault()
		if err != nil {
			return fmt.Errorf("fault %s: %w", pf.ID, err)
		}
		e, err := f.Effects(c.cfg)
		if err != nil {
			return fmt.Errorf("fault %s: %w", pf.ID, err)
		}
		c.active[pf.ID] = &ActiveFault{ID: pf.ID, Fault: f, Effects: e, Since: pf.Since.Sub(c.History.start)}
		// In force since before this history began: from its start, on its clock.
		c.History.FaultStarted(pf.ID, pf.Spec, f.String(), 0)
		c.History.FaultApplied(pf.ID, 0)
		c.order = append(c.order, pf.ID)
		for _, l := range e.Cut {
			c.cutCount[l]++
		}
		for _, n := range slices.Concat(e.Crash, e.Stop, e.Pause) {
			c.nodeFault[n] = pf.ID
		}
	}
	return nil
}
