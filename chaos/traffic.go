package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// TrafficStep is updates from concurrent clients that run alongside the steps after it,
// so faults land on updates in flight:
//
//   - traffic: {clients: 3, every: 20ms, for: 4s}
//   - inject: {kind: crash, nodes: [Holiday]}     # while the traffic runs
//
// Each update, from a client of its own, is checked as the updates step checks it
// (delivery to every server the oracle names, by its deadline, and none cut off), but
// only when the faults in force did not change while it was in flight: the oracle cannot
// judge an update a crash or a heal caught half-way. Those are left to the convergence
// check, which requires every one that some surviving server was seen holding. A check
// step waits for running traffic to end, then reports it as a delivered check at the
// traffic's line.
type TrafficStep struct {
	Clients int           `yaml:"clients,omitempty"` // default 2
	Every   time.Duration `yaml:"every,omitempty"`   // each client's pause between updates, default 50ms
	For     time.Duration `yaml:"for"`
}

func (t TrafficStep) String() string {
	return fmt.Sprintf("traffic: %d clients, an update every %v each, for %v, alongside the next steps",
		t.clients(), t.every(), t.For)
}

func (t TrafficStep) clients() int {
	if t.Clients <= 0 {
		return 2
	}
	return t.Clients
}

func (t TrafficStep) every() time.Duration {
	if t.Every <= 0 {
		return 50 * time.Millisecond
	}
	return t.Every
}

func (t TrafficStep) validate() error {
	switch {
	case t.For <= 0:
		return errors.New("traffic needs for: how long it runs (e.g. 3s)")
	case t.For > 10*time.Minute:
		return errors.New("traffic for more than 10 minutes")
	case t.Clients < 0 || t.Clients > 64:
		return errors.New("traffic clients: 1 to 64")
	case t.Every < 0:
		return errors.New("traffic every must be positive")
	}
	return nil
}

// traffic is one traffic step while it runs. Its verdict is the history's (judgeResult,
// form "traffic"): each update is a group of checks toward scenario verdict result.
type traffic struct {
	step   ScenarioStep
	result int
	done   chan struct{}

	mu  sync.Mutex
	ids int
}

// next numbers the traffic's clients.
func (tr *traffic) next() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.ids++
	return tr.ids
}

// startTraffic starts a traffic step's clients; each draws its servers from a generator
// of its own, seeded from the scenario's seed, the step's line and its index.
func (r *Runner) startTraffic(ctx context.Context, st ScenarioStep, result int) *traffic {
	tr := &traffic{step: st, result: result, done: make(chan struct{})}
	t := st.Traffic
	end := time.Now().Add(t.For)
	var wg sync.WaitGroup
	checking := make(chan struct{}, trafficCheckers)
	for i := range t.clients() {
		rng := rand.New(rand.NewPCG(r.C.Seed, uint64(st.Line)<<16|uint64(i)))
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				// The client sends at its pace; the checks follow on their own.
				if u, t, ok := tr.send(ctx, r, rng); ok {
					wg.Go(func() {
						checking <- struct{}{}
						defer func() { <-checking }()
						r.follow(ctx, u, t)
					})
				}
				select {
				case <-ctx.Done():
				case <-time.After(t.every()):
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(tr.done)
	}()
	return tr
}

// trafficCheckers bounds the updates of one traffic step being checked at once.
const trafficCheckers = 16

// send sends one update at a running server, and returns the tag its checks carry.
func (tr *traffic) send(ctx context.Context, r *Runner, rng *rand.Rand) (Accepted, tag, bool) {
	c := r.C
	from := c.History.Now() // before the oracle: a change after it makes the update in flight
	up := r.running()
	if len(up) == 0 {
		return Accepted{}, tag{}, false
	}
	// A client of its own per update: the convergence check then requires every update
	// some surviving server was seen holding, not only each shared client's newest (an
	// update a fault caught in flight is judged there, or nowhere).
	node := up[rng.IntN(len(up))]
	n := tr.next()
	client := fmt.Sprintf("traffic-%x-%d-%d", c.Seed&0xffffff, tr.step.Line, n)
	t := tag{result: tr.result, group: n, traffic: true, from: from}
	u, err := c.Update(ctx, node, client, defaultLocation, ClientTime())
	// A server a crash caught mid-request fails it: the herd's error only in calm.
	c.History.Answered(c.ask(Asked{Kind: "accepted", Op: u.Op}, t), c.History.Now(), ctx.Err() != nil)
	if err != nil {
		return Accepted{}, tag{}, false
	}
	r.accept(u)
	return u, t, true
}
