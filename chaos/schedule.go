package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// RandomSchedule draws a scenario of the given number of rounds from seed: in each, a
// fault of a kind drawn uniformly from the registered kinds that are drawn (each kind's
// Draw picks its parameters; at most three faults in force at once) or the heal of one,
// then a few updates from concurrent clients, each checked; then the heal of everything
// and the checks that nothing acknowledged was lost and no answer went back in time. It
// is an ordinary scenario: RunScenario runs it, Marshal saves it, Shrink shrinks it.
func RandomSchedule(seed uint64, cfg topology.Config, rounds int) *Scenario {
	rng := rand.New(rand.NewPCG(seed, 11))
	sc := &Scenario{Name: fmt.Sprintf("random schedule, seed %d, %d rounds", seed, rounds), Seed: seed}
	add := func(st ScenarioStep) { sc.Steps = append(sc.Steps, st) }
	drawn := drawnKinds()
	var active []string
	d := &Draw{Rand: rng, Config: cfg, held: map[string]string{}}
	for i := range rounds {
		updates := 1 + rng.IntN(3)
		if len(active) > 0 && (len(active) >= 3 || rng.IntN(3) == 0) {
			j := rng.IntN(len(active))
			heal := active[j]
			active = slices.Delete(active, j, j+1)
			for n, l := range d.held {
				if l == heal {
					delete(d.held, n)
				}
			}
			add(ScenarioStep{Heal: heal})
			add(ScenarioStep{Updates: updates})
			continue
		}
		label := fmt.Sprintf("s%d", i)
		k := drawn[rng.IntN(len(drawn))]
		f := k.draw(d)
		e, err := f.Effects(cfg)
		if err != nil {
			panic(fmt.Sprintf("chaos: fault kind %s drew %s, which this herd cannot take: %v", k.name, f, err))
		}
		for _, n := range slices.Concat(e.Crash, e.Stop, e.Pause) {
			d.held[n] = label
		}
		spec := SpecOf(f)
		add(ScenarioStep{Inject: &spec, As: label})
		add(ScenarioStep{Updates: updates})
		if !e.momentary() {
			active = append(active, label)
		}
	}
	add(ScenarioStep{Heal: "all"})
	add(ScenarioStep{Check: "converged"})
	add(ScenarioStep{Check: "fresh"})
	return sc
}

// momentary reports whether the effects leave nothing to heal (a restart).
func (e Effects) momentary() bool {
	return len(e.Restart) > 0 && len(e.Cut) == 0 && len(e.Toxics) == 0 && len(e.Crash) == 0 &&
		len(e.Stop) == 0 && len(e.Pause) == 0 && e.PlacesFail == ""
}

// Runner runs a scenario against a cluster (RunScenario) and keeps what its checks need:
// each acknowledged update, the servers seen holding it, the names of injected faults.
type Runner struct {
	C *Cluster
	// Clients is how many clients send updates concurrently (default 2).
	Clients int
	// ClientIDs is the pool of client ids, so later updates overwrite earlier ones.
	ClientIDs []string
	// ConvergeWithin bounds the final convergence (default 20s).
	ConvergeWithin time.Duration
	// Log gets one line per step.
	Log func(string)

	mu      sync.Mutex
	labels  map[string]string        // step label -> fault id
	holders map[string]Delivery      // AT line -> servers seen holding it, and when
	wiped   map[string]time.Duration // server -> when a crash, stop or restart last wiped it
	acked   []Accepted
}

func (r *Runner) init() {
	if r.Clients <= 0 {
		r.Clients = 2
	}
	if len(r.ClientIDs) == 0 {
		for i := range 6 {
			r.ClientIDs = append(r.ClientIDs, fmt.Sprintf("sched-%x-%d", r.C.Seed, i))
		}
	}
	if r.ConvergeWithin <= 0 {
		r.ConvergeWithin = 20 * time.Second
	}
	if r.Log == nil {
		r.Log = func(string) {}
	}
	if r.labels == nil {
		r.labels = map[string]string{}
		r.holders = map[string]Delivery{}
		r.wiped = map[string]time.Duration{}
	}
}

// forget notes when a crash, stop or restart wiped its servers: what they were seen
// holding before counts no more (held).
func (r *Runner) forget(f Fault) {
	e, err := f.Effects(r.C.cfg)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range slices.Concat(e.Crash, e.Stop, e.Restart) {
		r.wiped[n] = r.C.History.Now()
	}
}

// accept records an acknowledged update, held by its origin.
func (r *Runner) accept(u Accepted) {
	r.mu.Lock()
	r.acked = append(r.acked, u)
	r.mu.Unlock()
	r.hold(u, Delivery{u.Origin: u.At})
}

// hold records the servers seen holding u, and when (the latest sighting of each).
func (r *Runner) hold(u Accepted, got Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.holders[u.AT]
	if h == nil {
		h = Delivery{}
		r.holders[u.AT] = h
	}
	for s, when := range got {
		h[s] = max(h[s], when)
	}
}

// held reports whether some server was seen holding u since the last wipe of that server
// (the caller holds r.mu).
func (r *Runner) held(u Accepted) bool {
	for s, when := range r.holders[u.AT] {
		if wiped, ok := r.wiped[s]; !ok || wiped < when {
			return true
		}
	}
	return false
}

// follow checks an acknowledged update: it reaches every server the oracle says it must
// by its deadline, and none cut off from it; whoever was seen holding it is recorded.
// The checks count toward the scenario verdict t names.
func (r *Runner) follow(ctx context.Context, u Accepted, t tag) error {
	got, err := r.C.awaitDelivery(ctx, u, t)
	r.hold(u, got)
	if err != nil {
		return err
	}
	return r.C.checkNotDelivered(ctx, u, t)
}

// running are the servers the oracle says are up now.
func (r *Runner) running() []string {
	o := r.C.Oracle()
	var up []string
	for _, n := range r.C.Nodes() {
		if o.Up(n) {
			up = append(up, n)
		}
	}
	return up
}

// Updates sends n IAMATs from concurrent clients at running servers and checks each.
func (r *Runner) Updates(ctx context.Context, n int) error {
	r.init()
	res := r.C.History.AddResult(ResultSpec{Check: "delivered", Form: "all"})
	r.updates(ctx, n, res)
	cr, _ := judgeResult(r.C.History, res)
	if !cr.OK {
		return errors.New(cr.Error)
	}
	return nil
}

// updates is Updates, its checks counting toward scenario verdict res (judged "all").
func (r *Runner) updates(ctx context.Context, n, res int) {
	up := r.running()
	if len(up) == 0 || n == 0 {
		return
	}
	type job struct{ node, client, tm string }
	var jobs []job
	r.mu.Lock()
	for range n {
		jobs = append(jobs, job{
			node:   up[r.C.Rand.IntN(len(up))],
			client: r.ClientIDs[r.C.Rand.IntN(len(r.ClientIDs))],
			tm:     ClientTime(),
		})
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.Clients)
	for i, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t := tag{result: res, group: i + 1}
			u, err := r.C.Update(ctx, j.node, j.client, defaultLocation, j.tm)
			r.C.History.Answered(r.C.ask(Asked{Kind: "accepted", Op: u.Op}, t), r.C.History.Now(), ctx.Err() != nil)
			if err == nil {
				r.accept(u)
				r.follow(ctx, u, t)
			}
		})
	}
	wg.Wait()
	r.C.checkFresh(ctx, tag{result: res})
}

var (
	clockMu   sync.Mutex
	lastClock time.Time
)

// clientTimeGap is the least difference between two client times the framework makes:
// more than a float64 resolves at today's times (about 240 ns), so a spec about
// anything else never turns on exact time comparison; the precision specs make their
// own times, apart only in the last digits.
const clientTimeGap = time.Microsecond

// ClientTime is a client time from this machine's clock, strictly increasing within
// the process, each at least clientTimeGap after the last: every update a runner sends
// is newer than every one sent before it (by this runner, an earlier scenario, or an
// earlier run against the same herd), so newer-wins is never ambiguous. The seed still
// picks every server and client.
func ClientTime() string {
	clockMu.Lock()
	defer clockMu.Unlock()
	t := time.Now()
	if t.Sub(lastClock) < clientTimeGap {
		t = lastClock.Add(clientTimeGap)
	}
	lastClock = t
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}
