package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// Step is one step of a schedule: inject a fault, heal one or all, and send updates from
// concurrent clients, each followed by the checkers.
type Step struct {
	Inject  Fault  // a fault to inject, or nil
	Label   string // names the injected fault, for a later Heal
	Heal    string // the Label of a fault to heal
	HealAll bool
	Updates int // IAMATs from concurrent clients at random running servers
}

func (s Step) String() string {
	switch {
	case s.Inject != nil:
		return fmt.Sprintf("inject %s as %s, %d updates", s.Inject, s.Label, s.Updates)
	case s.Heal != "":
		return fmt.Sprintf("heal %s, %d updates", s.Heal, s.Updates)
	case s.HealAll:
		return fmt.Sprintf("heal all, %d updates", s.Updates)
	}
	return fmt.Sprintf("%d updates", s.Updates)
}

// RandomSchedule draws steps from rng: faults from the whole catalogue, at most three in
// force at once, each healed by a later step or by the final heal.
func RandomSchedule(rng *rand.Rand, cfg topology.Config, steps int) []Step {
	var out []Step
	var active []string
	held := map[string]string{} // node -> label holding it
	names := cfg.Names()
	links := cfg.Links()
	pickLink := func() Link {
		l := links[rng.IntN(len(links))]
		if rng.IntN(2) == 0 {
			return Link{l[0], l[1]}
		}
		return Link{l[1], l[0]}
	}
	freeNode := func() (string, bool) {
		var free []string
		for _, n := range names {
			if held[n] == "" {
				free = append(free, n)
			}
		}
		if len(free) <= 1 { // keep at least one server up
			return "", false
		}
		return free[rng.IntN(len(free))], true
	}
	for i := range steps {
		st := Step{Updates: 1 + rng.IntN(3)}
		if len(active) > 0 && (len(active) >= 3 || rng.IntN(3) == 0) {
			j := rng.IntN(len(active))
			st.Heal = active[j]
			active = slices.Delete(active, j, j+1)
			for n, l := range held {
				if l == st.Heal {
					delete(held, n)
				}
			}
			out = append(out, st)
			continue
		}
		label := fmt.Sprintf("s%d", i)
		var f Fault
		switch k := rng.IntN(13); k {
		case 0:
			f = Latency{Links: []Link{pickLink()}, Latency: time.Duration(50+rng.IntN(150)) * time.Millisecond, Jitter: time.Duration(rng.IntN(30)) * time.Millisecond}
		case 1:
			f = Slicer{Links: []Link{pickLink()}, AverageBytes: 1 + rng.IntN(16), SizeVariation: 0, Delay: time.Duration(rng.IntN(500)) * time.Microsecond}
		case 2:
			f = ResetPeer{Links: []Link{pickLink()}, After: time.Duration(rng.IntN(500)) * time.Millisecond}
		case 3:
			f = BlackHole{Links: []Link{pickLink()}}
		case 4:
			f = Cut{Links: []Link{pickLink()}}
		case 5:
			perm := rng.Perm(len(names))
			cut := 1 + rng.IntN(len(names)-1)
			var a, b []string
			for j, p := range perm {
				if j < cut {
					a = append(a, names[p])
				} else {
					b = append(b, names[p])
				}
			}
			sort.Strings(a)
			sort.Strings(b)
			f = Partition{Groups: [][]string{a, b}}
		case 6:
			f = Isolate{Node: names[rng.IntN(len(names))]}
		case 7, 8, 9, 12:
			n, ok := freeNode()
			if !ok {
				f = Cut{Links: []Link{pickLink()}}
				break
			}
			switch k {
			case 7:
				f = Crash{Node: n}
				held[n] = label
			case 8:
				f = Pause{Node: n}
				held[n] = label
			case 9:
				f = Restart{Node: n}
			case 12:
				f = Stop{Node: n}
				held[n] = label
			}
		case 10:
			f = PlacesSlow{Latency: time.Duration(100+rng.IntN(400)) * time.Millisecond}
		case 11:
			f = PlacesDown{Nodes: []string{names[rng.IntN(len(names))]}}
		}
		st.Inject, st.Label = f, label
		if _, momentary := f.(Restart); !momentary {
			active = append(active, label)
		}
		out = append(out, st)
	}
	return out
}

// Runner runs steps against a cluster and checks the invariants after every one: each
// acknowledged update reaches every server the oracle says it must by its deadline and no
// server cut off from it; answers never go back in time. At the end it heals everything
// and checks that no acknowledged update was lost.
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
	labels  map[string]string          // step label -> fault id
	holders map[string]map[string]bool // AT line -> servers confirmed to hold it
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
		r.holders = map[string]map[string]bool{}
	}
}

// Run runs every step, then heals and checks convergence.
func (r *Runner) Run(ctx context.Context, steps []Step) error {
	r.init()
	for i, st := range steps {
		r.Log(fmt.Sprintf("step %d: %s", i+1, st))
		r.C.History.Note(fmt.Sprintf("step %d: %s", i+1, st))
		if err := r.step(ctx, st); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, st, err)
		}
	}
	r.Log("final: heal all, check convergence")
	return r.Finish(ctx)
}

func (r *Runner) step(ctx context.Context, st Step) error {
	c := r.C
	switch {
	case st.Inject != nil:
		id, err := c.Inject(ctx, st.Inject)
		if err != nil {
			return err
		}
		r.labels[st.Label] = id
		r.forget(st.Inject)
	case st.Heal != "":
		id, ok := r.labels[st.Heal]
		if !ok {
			return fmt.Errorf("no fault labelled %q was injected", st.Heal)
		}
		if err := c.Heal(ctx, id); err != nil {
			return err
		}
	case st.HealAll:
		if err := c.HealAll(ctx); err != nil {
			return err
		}
	}
	return r.Updates(ctx, st.Updates)
}

// forget drops the servers a crash or restart wipes from the holders of every update.
func (r *Runner) forget(f Fault) {
	e, err := f.Effects(r.C.cfg)
	if err != nil {
		return
	}
	for _, n := range slices.Concat(e.Crash, e.Stop, e.Restart) {
		for _, h := range r.holders {
			delete(h, n)
		}
	}
}

// Updates sends n IAMATs from concurrent clients at running servers and checks each.
func (r *Runner) Updates(ctx context.Context, n int) error {
	r.init()
	o := r.C.Oracle()
	var up []string
	for _, name := range r.C.Nodes() {
		if o.Up(name) {
			up = append(up, name)
		}
	}
	if len(up) == 0 || n == 0 {
		return nil
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
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, r.Clients)
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			u, err := r.C.Update(ctx, j.node, j.client, "+34.068930-118.445127", j.tm)
			if err == nil {
				var got Delivery
				got, err = r.C.AwaitDelivery(ctx, u)
				r.mu.Lock()
				r.acked = append(r.acked, u)
				h := map[string]bool{}
				for s := range got {
					h[s] = true
				}
				r.holders[u.AT] = h
				r.mu.Unlock()
			}
			if err == nil {
				err = r.C.CheckNotDelivered(ctx, u)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return CheckFreshness(r.C.History)
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

// Finish heals everything and checks that every server holds, for each client, the
// newest acknowledged update that some server still held (a crash may legitimately wipe
// an update whose every holder crashed).
func (r *Runner) Finish(ctx context.Context) error {
	r.init()
	if err := r.C.HealAll(ctx); err != nil {
		return err
	}
	newest := map[string]Accepted{}
	for _, u := range r.acked {
		if len(r.holders[u.AT]) == 0 {
			continue
		}
		if old, ok := newest[u.Client]; !ok || newerOrSame(u.AT, old.AT) {
			newest[u.Client] = u
		}
	}
	want := map[string]string{}
	for cl, u := range newest {
		want[cl] = u.AT
	}
	if err := r.C.AwaitConvergence(ctx, want, r.ConvergeWithin); err != nil {
		return fmt.Errorf("no acknowledged IAMAT lost: %w", err)
	}
	return CheckFreshness(r.C.History)
}
