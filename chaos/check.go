package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/proto"
)

// PollInterval is how often checkers ask a server again.
var PollInterval = 20 * time.Millisecond

// Accepted is an IAMAT a server acknowledged: what the checkers follow.
type Accepted struct {
	Origin   string
	Client   string
	Location string
	Time     string
	AT       string        // the AT reply, which every server must come to answer with
	At       time.Duration // when it was invoked, on the history clock
}

// Update sends an IAMAT to origin and returns what the checkers need to follow it.
func (c *Cluster) Update(ctx context.Context, origin, clientID, location, tm string) (Accepted, error) {
	at := c.History.Now()
	reply, err := c.IAMAT(ctx, origin, clientID, location, tm)
	if err != nil {
		return Accepted{}, fmt.Errorf("IAMAT at %s: %w", origin, err)
	}
	want := " " + clientID + " " + location + " " + tm
	if !strings.HasPrefix(reply, "AT "+origin+" ") || !strings.HasSuffix(reply, want) {
		return Accepted{}, fmt.Errorf("IAMAT at %s: reply %q is not an AT line naming %s and copying %q", origin, reply, origin, want[1:])
	}
	return Accepted{Origin: origin, Client: clientID, Location: location, Time: tm, AT: reply, At: at}, nil
}

// whatsatAT asks node for client's AT line ("" for an unknown client), without
// recording it: checkers poll.
func (c *Cluster) whatsatAT(ctx context.Context, node, clientID string) (string, error) {
	addr, err := c.b.ClientAddr(ctx, node)
	if err != nil {
		return "", err
	}
	rep, err := client.WHATSAT(ctx, addr, clientID, "1", 1)
	if err != nil {
		return "", err
	}
	if rep.Invalid {
		return "", nil
	}
	return rep.AT, nil
}

// newerOrSame reports whether AT line got is the same update as want or a newer one for
// the same client.
func newerOrSame(got, want string) bool {
	if got == want {
		return true
	}
	g := proto.Fields(nil, got)
	w := proto.Fields(nil, want)
	if len(g) != 6 || len(w) != 6 || g[3] != w[3] {
		return false
	}
	gt, err1 := proto.ParseTime(g[5])
	wt, err2 := proto.ParseTime(w[5])
	return err1 == nil && err2 == nil && gt.Compare(wt) > 0
}

// describeAnswer says how an AT line a server answered differs from the expected one.
func describeAnswer(got, want string) string {
	g := proto.Fields(nil, got)
	w := proto.Fields(nil, want)
	if len(g) == 6 && len(w) == 6 && g[3] == w[3] && g[4] == w[4] && g[5] == w[5] && g[1] != w[1] {
		return fmt.Sprintf("answers with the update but names %s as its origin, not %s: WHATSAT must name the server that received the IAMAT (%q)", g[1], w[1], got)
	}
	return fmt.Sprintf("answers %q", got)
}

// Delivery is when a checker first saw an update at each server, on the history clock.
type Delivery map[string]time.Duration

// AwaitDelivery waits until every server the oracle says the update must reach answers
// WHATSAT with it (or a newer one), each by its own deadline.
func (c *Cluster) AwaitDelivery(ctx context.Context, u Accepted) (Delivery, error) {
	o := c.Oracle()
	must := o.MustReach(u.Origin)
	var mu sync.Mutex
	got := Delivery{}
	var errs []error
	var wg sync.WaitGroup
	for _, n := range must {
		deadline := u.At + o.Deadline(u.Origin, n)
		wg.Go(func() {
			for {
				now := c.History.Now()
				pctx, cancel := context.WithTimeout(ctx, max(deadline-now, 500*time.Millisecond))
				at, err := c.whatsatAT(pctx, n, u.Client)
				cancel()
				done := c.History.Now()
				if err == nil && newerOrSame(at, u.AT) {
					c.History.Saw(u.AT, n, done)
					mu.Lock()
					got[n] = done
					mu.Unlock()
					return
				}
				if done > deadline || ctx.Err() != nil {
					mu.Lock()
					last := describeAnswer(at, u.AT)
					if err != nil {
						last = "errs: " + err.Error()
					}
					errs = append(errs, fmt.Errorf("%s did not hold it %v after it was accepted (oracle deadline %v); it %s",
						n, (done-u.At).Round(time.Millisecond), (deadline-u.At).Round(time.Millisecond), last))
					mu.Unlock()
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(PollInterval):
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return got, fmt.Errorf("delivery to every reachable server: update %q from %s must reach %v: %w; %s (seed %d)",
			u.AT, u.Origin, must, errors.Join(errs...), c.DescribeFaults(), c.Seed)
	}
	return got, nil
}

// CheckNotDelivered checks that no running server the faults cut off from the update's
// origin holds it.
func (c *Cluster) CheckNotDelivered(ctx context.Context, u Accepted) error {
	o := c.Oracle()
	for _, n := range o.MustNotReach(u.Origin) {
		at, err := c.whatsatAT(ctx, n, u.Client)
		if err != nil {
			return fmt.Errorf("no delivery across a cut: asking %s: %w", n, err)
		}
		// Exactly this update: the server may hold a newer one from its own side of the cut.
		if at == u.AT {
			return fmt.Errorf("no delivery across a cut: %s holds %q although the faults cut it off from %s; %s (seed %d)",
				n, at, u.Origin, c.DescribeFaults(), c.Seed)
		}
	}
	return nil
}

// AwaitConvergence waits until every running server answers each client with its newest
// acknowledged AT line (or newer), within the given time.
func (c *Cluster) AwaitConvergence(ctx context.Context, newest map[string]string, within time.Duration) error {
	deadline := time.Now().Add(within)
	o := c.Oracle()
	var lastErr error
	for {
		lastErr = nil
	check:
		for _, n := range c.Nodes() {
			if !o.Up(n) {
				continue
			}
			for _, cl := range sortedKeys(newest) {
				at, err := c.whatsatAT(ctx, n, cl)
				if err != nil {
					lastErr = fmt.Errorf("asking %s for %s: %w", n, cl, err)
					break check
				}
				if !newerOrSame(at, newest[cl]) {
					lastErr = fmt.Errorf("%s answers %q for %s; the newest acknowledged is %q", n, at, cl, newest[cl])
					break check
				}
			}
		}
		if lastErr == nil {
			for _, cl := range sortedKeys(newest) {
				for _, n := range c.Nodes() {
					if o.Up(n) {
						c.History.Saw(newest[cl], n, c.History.Now())
					}
				}
			}
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("convergence: not converged %v after the last heal: %w; %s (seed %d)", within, lastErr, c.DescribeFaults(), c.Seed)
		}
		select {
		case <-ctx.Done():
		case <-time.After(PollInterval * 5):
		}
	}
}

// CheckFreshness checks the history: a server never answers a WHATSAT with an older
// client time than it answered before, unless it crashed or restarted in between (a
// restarted server may be ignorant until it resyncs).
func CheckFreshness(h *History) error {
	s := h.Snapshot()
	type answer struct {
		op Op
		t  proto.Time
		at string
	}
	last := map[[2]string]answer{}
	ops := slices.Clone(s.Ops)
	slices.SortFunc(ops, func(a, b Op) int { return int(a.Invoke - b.Invoke) })
	for _, op := range ops {
		if op.Kind != "whatsat" || op.Err != "" || op.Complete < 0 || strings.HasPrefix(op.Reply, "? ") {
			continue
		}
		rep, err := client.ParseWhatsat(op.Reply)
		if err != nil {
			continue
		}
		f := proto.Fields(nil, rep.AT)
		if len(f) != 6 {
			continue
		}
		t, err := proto.ParseTime(f[5])
		if err != nil {
			continue
		}
		key := [2]string{op.Node, f[3]}
		prev, ok := last[key]
		if ok && prev.op.Complete < op.Invoke && t.Compare(prev.t) < 0 && !restartedBetween(s.Faults, op.Node, prev.op.Complete, op.Invoke) {
			return fmt.Errorf("freshness: %s answered %q at %v after answering the newer %q at %v",
				op.Node, rep.AT, op.Invoke, prev.at, prev.op.Complete)
		}
		if !ok || t.Compare(prev.t) >= 0 {
			last[key] = answer{op, t, rep.AT}
		}
	}
	return nil
}

func restartedBetween(faults []FaultWindow, node string, from, to time.Duration) bool {
	for _, f := range faults {
		if (f.Fault == "crash "+node || f.Fault == "restart "+node || f.Fault == "stop "+node) && f.Start < to && (f.End < 0 || f.End > from) {
			return true
		}
	}
	return false
}

// EmulatorAnswer is the Places emulator's own answer for a query, trimmed to bound as a
// WHATSAT answer must be.
func (c *Cluster) EmulatorAnswer(ctx context.Context, location proto.Location, radiusKm string, bound int) ([]byte, error) {
	q := url.Values{"location": {location.PlacesParam()}, "radius": {proto.RadiusMetres(radiusKm)}, "key": {""}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.b.PlacesURL()+places.NearbyPath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the emulator: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return places.Trim(body, bound)
}

// CheckWhatsat checks a WHATSAT answer: the AT line is the newest one the server must
// hold, the JSON has at most bound results, follows the newline rules, and equals the
// emulator's own answer for the same query.
func (c *Cluster) CheckWhatsat(ctx context.Context, node string, rep client.WhatsatReply, want Accepted, radiusKm string, bound int) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("WHATSAT correctness at %s: "+format, append([]any{node}, a...)...)
	}
	if rep.Invalid {
		return fail("answered %q for a client it must know", strings.TrimSpace(rep.Raw))
	}
	if rep.AT != want.AT {
		return fail("AT line %q, but the newest it must hold is %q", rep.AT, want.AT)
	}
	if !strings.HasSuffix(rep.Raw, "\n\n") || strings.Contains(rep.JSON, "\n\n") || strings.HasSuffix(rep.JSON, "\n") {
		return fail("newline rules broken: %q", rep.Raw)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(rep.JSON), &got); err != nil {
		return fail("JSON does not parse: %v", err)
	}
	results, _ := got["results"].([]any)
	if len(results) > bound {
		return fail("%d results, more than the bound %d", len(results), bound)
	}
	loc, err := proto.ParseLocation(want.Location)
	if err != nil {
		return err
	}
	emu, err := c.EmulatorAnswer(ctx, loc, radiusKm, bound)
	if err != nil {
		return err
	}
	var wantJSON map[string]any
	if err := json.Unmarshal(emu, &wantJSON); err != nil {
		return err
	}
	if !reflect.DeepEqual(got, wantJSON) {
		return fail("JSON differs from the emulator's answer for the same query (radius %s km, bound %d):\n got: %s\nwant: %s",
			radiusKm, bound, compact(rep.JSON), compact(string(emu)))
	}
	return nil
}

func compact(s string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(s)) != nil {
		return s
	}
	if b.Len() > 600 {
		return b.String()[:600] + "..."
	}
	return b.String()
}
