package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/proto"
)

// The checkers judge by chaos/protocol.go, their own reading of docs/PROTOCOL.md: they use
// herd/client only to send commands, and herd/proto only for the type of
// EmulatorAnswer's location (its raw text).

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
// recording it: checkers poll. Only the AT line counts here; CheckWhatsat judges the rest.
func (c *Cluster) whatsatAT(ctx context.Context, node, clientID string) (string, error) {
	addr, err := c.b.ClientAddr(ctx, node)
	if err != nil {
		return "", err
	}
	out, err := client.Exchange(ctx, addr, fmt.Sprintf("WHATSAT %s 1 1\n", clientID))
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(out, "? ") {
		return "", nil
	}
	at, _, err := splitWhatsatReply(out)
	if at == "" && err != nil {
		return "", err
	}
	return at, nil
}

// newerOrSame reports whether AT line got is the same update as want or a newer one for
// the same client.
func newerOrSame(got, want string) bool {
	if got == want {
		return true
	}
	g, err1 := splitATLine(got)
	w, err2 := splitATLine(want)
	if err1 != nil || err2 != nil || g[3] != w[3] {
		return false
	}
	cmp, err := compareTimes(g[5], w[5])
	return err == nil && cmp > 0
}

// describeAnswer says how an AT line a server answered differs from the expected one.
func describeAnswer(got, want string) string {
	g, err1 := splitATLine(got)
	w, err2 := splitATLine(want)
	if err1 == nil && err2 == nil && g[3] == w[3] && g[4] == w[4] && g[5] == w[5] && g[1] != w[1] {
		return fmt.Sprintf("answers with the update but names %s as its origin, not %s: WHATSAT must name the server that received the IAMAT (%q)", g[1], w[1], got)
	}
	if err1 == nil && err2 == nil && g[3] == w[3] {
		if cmp, err := compareTimes(g[5], w[5]); err == nil && cmp < 0 {
			return fmt.Sprintf("answers %q, older than the update (client time %s < %s)", got, g[5], w[5])
		}
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
				// Delivery is observed through WHATSAT, whose answer waits for Places: a
				// slowed Places link delays the answer, not the delivery.
				pctx, cancel := context.WithTimeout(ctx, max(deadline-now, 500*time.Millisecond)+c.placesDelay(n))
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
				// A miss counts once a poll that began after the deadline misses: a poll that
				// began before it may answer after it (a slow Places link).
				if now > deadline || ctx.Err() != nil {
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
		tm string // the client time, checked to be a protocol time
		at string
	}
	last := map[[2]string]answer{}
	ops := slices.Clone(s.Ops)
	slices.SortFunc(ops, func(a, b Op) int { return int(a.Invoke - b.Invoke) })
	for _, op := range ops {
		if op.Kind != "whatsat" || op.Err != "" || op.Complete < 0 || strings.HasPrefix(op.Reply, "? ") {
			continue
		}
		at, _, _ := splitWhatsatReply(op.Reply) // freshness is the AT line's business only
		f, err := splitATLine(at)
		if err != nil {
			continue
		}
		if _, err := compareTimes(f[5], f[5]); err != nil {
			continue
		}
		key := [2]string{op.Node, f[3]}
		prev, ok := last[key]
		cmp := 1
		if ok {
			cmp, _ = compareTimes(f[5], prev.tm)
		}
		if ok && prev.op.Complete < op.Invoke && cmp < 0 && !restartedBetween(s.Faults, op.Node, prev.op.Complete, op.Invoke) {
			return fmt.Errorf("freshness: %s answered %q at %v after answering the newer %q at %v",
				op.Node, at, op.Invoke, prev.at, prev.op.Complete)
		}
		if cmp >= 0 {
			last[key] = answer{op, f[5], at}
		}
	}
	return nil
}

func restartedBetween(faults []FaultWindow, node string, from, to time.Duration) bool {
	for _, f := range faults {
		if f.Holds(node, "crash", "restart", "stop") && f.Start < to && (f.End < 0 || f.End > from) {
			return true
		}
	}
	return false
}

// EmulatorAnswer is the Places emulator's own answer for a query, trimmed to bound as a
// WHATSAT answer must be. Only location.Raw (the location as the client sent it) is read:
// the query is made by the checkers' own code.
func (c *Cluster) EmulatorAnswer(ctx context.Context, location proto.Location, radiusKm string, bound int) ([]byte, error) {
	raw := location.Raw
	if raw == "" {
		raw = location.Lat + location.Lng
	}
	_, trimmed, err := c.emulatorAnswer(ctx, raw, radiusKm, bound)
	return trimmed, err
}

// emulatorPath is the legacy Nearby Search endpoint, as docs/PROTOCOL.md names it.
const emulatorPath = "/maps/api/place/nearbysearch/json"

// emulatorAnswer asks the emulator what Google would answer for a client at location (as
// the client sent it) and a radius in km, and returns the body as sent and trimmed to
// bound by the checkers' own trim.
func (c *Cluster) emulatorAnswer(ctx context.Context, location, radiusKm string, bound int) (body, trimmed []byte, err error) {
	loc, err := placesLocation(location)
	if err != nil {
		return nil, nil, err
	}
	metres, err := radiusMetres(radiusKm)
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{"location": {loc}, "radius": {metres}, "key": {""}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.b.PlacesURL()+emulatorPath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("asking the emulator: %w", err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the emulator's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("the emulator answered HTTP %d: %q", resp.StatusCode, clip(string(body), 200))
	}
	trimmed, err = trimToBound(body, bound)
	if err != nil {
		return body, nil, fmt.Errorf("the emulator's answer: %w", err)
	}
	return body, trimmed, nil
}

// expectedJSON is what a WHATSAT's JSON may be: the answer to a query the herd made for
// it (one the emulator answered at the client's location with radius km x 1000, either
// API, the likeliest first; see queriesFor), cut to the bound. An emulator without a
// query log is asked the legacy query itself.
func (c *Cluster) expectedJSON(ctx context.Context, location, radiusKm string, bound int) ([][]byte, error) {
	loc, err := placesLocation(location)
	if err != nil {
		return nil, err
	}
	metres, err := radiusMetres(radiusKm)
	if err != nil {
		return nil, err
	}
	latS, lngS, _ := strings.Cut(loc, ",")
	lat, err1 := strconv.ParseFloat(latS, 64)
	lng, err2 := strconv.ParseFloat(lngS, 64)
	m, err3 := strconv.ParseFloat(metres, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	qs, err := c.queriesFor(ctx, lat, lng, m, bound)
	if errors.Is(err, errNoQueryLog) {
		_, want, err := c.emulatorAnswer(ctx, location, radiusKm, bound)
		return [][]byte{want}, err
	}
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, q := range qs {
		list := "results"
		if q.API == "new" {
			list = "places"
		}
		want, err := trimListToBound([]byte(q.Answer), list, bound)
		if err != nil {
			// An error answer has no list to cut: the herd passes it on whole.
			want = squeezeNewlines([]byte(q.Answer))
		}
		out = append(out, want)
	}
	return out, nil
}

// CheckWhatsat checks a WHATSAT answer, as the server sent it (rep.Raw), against
// docs/PROTOCOL.md: the AT line is the newest one the server must hold; the answer ends with
// one blank line and its JSON has no run of newlines and no trailing newline; the JSON
// has at most bound results; and its bytes are the emulator's answer for the same query,
// with the results past the bound cut and every other byte kept.
func (c *Cluster) CheckWhatsat(ctx context.Context, node string, rep client.WhatsatReply, want Accepted, radiusKm string, bound int) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("WHATSAT correctness at %s: "+format, append([]any{node}, a...)...)
	}
	if strings.HasPrefix(rep.Raw, "? ") {
		return fail("answered %q for a client it must know", strings.TrimSpace(rep.Raw))
	}
	at, js, splitErr := splitWhatsatReply(rep.Raw)
	if at != want.AT {
		if at == "" {
			return fail("no AT line (%v), but the newest it must hold is %q", splitErr, want.AT)
		}
		return fail("AT line %q, but the newest it must hold is %q", at, want.AT)
	}
	if splitErr != nil {
		return fail("%v", splitErr)
	}
	if err := validJSON([]byte(js)); err != nil {
		return fail("JSON does not parse: %v: %q", err, clip(js, 300))
	}
	n, err := countPlaces([]byte(js))
	if err != nil {
		return fail("JSON is not a Places answer: %v", err)
	}
	if n > bound {
		return fail("%d results, more results than the bound %d", n, bound)
	}
	wants, err := c.expectedJSON(ctx, want.Location, radiusKm, bound)
	var bad errQuery
	switch {
	case errors.As(err, &bad):
		return fail("%v", err)
	case err != nil:
		return fmt.Errorf("checking WHATSAT at %s: the expected answer: %w", node, err)
	}
	for _, w := range wants {
		if js == string(w) {
			return nil
		}
		if !c.claims(ExtJSONBytes) {
			if same, _ := sameJSONInOrder([]byte(js), w); same {
				return nil
			}
		}
	}
	wantJSON := wants[0]
	if !c.claims(ExtJSONBytes) {
		// The common part of the protocol asks for the upstream's fields in their order,
		// not its bytes: a herd may decode and encode the answer again.
		same, how := sameJSONInOrder([]byte(js), wantJSON)
		if same {
			return nil
		}
		return fail("JSON is not the upstream's answer cut to the bound (radius %s km, bound %d), its fields in their order: %s\n got: %q\nwant: %q",
			radiusKm, bound, how, clip(js, 300), clip(string(wantJSON), 300))
	}
	d := firstDifference(js, string(wantJSON))
	around := func(s string) string { return clip(s[max(0, d-80):], 200) }
	what := "its value differs too"
	if sameJSONValue([]byte(js), wantJSON) {
		what = "it decodes to the same value: the upstream's JSON was re-encoded or reformatted"
	}
	return fail("JSON is not the upstream's bytes cut to the bound (radius %s km, bound %d): %s; first difference at byte %d:\n got: %q\nwant: %q",
		radiusKm, bound, what, d, around(js), around(string(wantJSON)))
}

func firstDifference(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// sameJSONValue reports whether a and b decode to the same value.
func sameJSONValue(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
