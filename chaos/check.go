package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
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
	Origin   string        `json:"origin"`
	Client   string        `json:"client"`
	Location string        `json:"location"`
	Time     string        `json:"time"`
	AT       string        `json:"at"`    // the AT reply, which every server must come to answer with
	At       time.Duration `json:"at_ns"` // when it was invoked, on the history clock
	Op       int           `json:"op"`    // the IAMAT's op in the history
}

// Update sends an IAMAT to origin and returns what the checkers need to follow it; the
// history records it as accepted.
func (c *Cluster) Update(ctx context.Context, origin, clientID, location, tm string) (Accepted, error) {
	_, op, err := c.exchange(ctx, "iamat", origin, fmt.Sprintf("IAMAT %s %s %s\n", clientID, location, tm))
	u, err2 := acceptedFrom(c.History.op(op))
	if err2 != nil {
		return Accepted{Op: op}, err2
	}
	if err != nil { // cannot be: acceptedFrom judges the op's error
		return Accepted{Op: op}, err
	}
	c.History.Accept(u)
	return u, nil
}

// tag says which scenario verdict a check counts toward (Asked.Result, Group, Traffic,
// From); the zero tag: none.
type tag struct {
	result, group int
	traffic       bool
	from          time.Duration
}

// ask records a check asked now.
func (c *Cluster) ask(a Asked, t tag) int {
	a.Result, a.Group, a.Traffic = t.result, t.group, t.traffic
	a.Timing = c.Timing
	a.At = c.History.Now()
	a.From = a.At
	if t.traffic {
		a.From = t.from
	}
	return c.History.Ask(a)
}

// verdict takes check id's verdict from the history, now.
func (c *Cluster) verdict(ctx context.Context, id int) (Delivery, error) {
	c.History.Answered(id, c.History.Now(), ctx.Err() != nil)
	return judge(c.History.view(id))
}

// poll asks node for client's AT line ("" for an unknown client) on behalf of check, and
// records the read (the AT line only: the checkers judge no JSON of a poll).
func (c *Cluster) poll(ctx context.Context, check int, node, clientID string) (string, error) {
	req := fmt.Sprintf("WHATSAT %s 1 1", clientID)
	invoke := c.History.Now()
	at, reply, err := c.whatsatAT(ctx, node, req+"\n")
	c.History.Read(check, "whatsat", node, req, invoke, reply, err)
	return at, err
}

// whatsatAT sends a WHATSAT and returns its AT line ("" for an unknown client) and what
// a poll records of the reply: the AT line, or the invalid-command line.
func (c *Cluster) whatsatAT(ctx context.Context, node, request string) (at, reply string, err error) {
	addr, err := c.b.ClientAddr(ctx, node)
	if err != nil {
		return "", "", err
	}
	out, err := client.ExchangeVia(ctx, dialer(c.b), addr, request)
	if err != nil {
		return "", "", err
	}
	if strings.HasPrefix(out, "? ") {
		line, _, _ := strings.Cut(out, "\n")
		return "", line, nil
	}
	at, _, err = splitWhatsatReply(out)
	if at == "" && err != nil {
		return "", "", err
	}
	return at, at, nil
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
// WHATSAT with it (or a newer one), each by its own deadline. The polls are recorded and
// the verdict is the history's (judgeDelivered).
func (c *Cluster) AwaitDelivery(ctx context.Context, u Accepted) (Delivery, error) {
	return c.awaitDelivery(ctx, u, tag{})
}

func (c *Cluster) awaitDelivery(ctx context.Context, u Accepted, t tag) (Delivery, error) {
	c.History.Accept(u)
	id := c.ask(Asked{Kind: "delivered", Update: u.AT, Op: -1}, t)
	o := c.Oracle()
	var wg sync.WaitGroup
	for _, n := range o.MustReach(u.Origin) {
		deadline := u.At + o.Deadline(u.Origin, n)
		wg.Go(func() {
			for {
				now := c.History.Now()
				// Delivery is observed through WHATSAT, whose answer waits for Places: a
				// slowed Places link delays the answer, not the delivery.
				pctx, cancel := context.WithTimeout(ctx, max(deadline-now, 500*time.Millisecond)+c.placesDelay(n))
				at, err := c.poll(pctx, id, n, u.Client)
				cancel()
				if err == nil && newerOrSame(at, u.AT) {
					c.History.Saw(u.AT, n, c.History.Now())
					return
				}
				// A poll that began after the deadline settles it.
				if now > deadline || ctx.Err() != nil {
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
	return c.verdict(ctx, id)
}

// CheckNotDelivered checks that no running server the faults cut off from the update's
// origin holds it.
func (c *Cluster) CheckNotDelivered(ctx context.Context, u Accepted) error {
	return c.checkNotDelivered(ctx, u, tag{})
}

func (c *Cluster) checkNotDelivered(ctx context.Context, u Accepted, t tag) error {
	c.History.Accept(u)
	id := c.ask(Asked{Kind: "not_delivered", Update: u.AT, Op: -1}, t)
	for _, n := range c.Oracle().MustNotReach(u.Origin) {
		if _, err := c.poll(ctx, id, n, u.Client); err != nil {
			break
		}
	}
	_, err := c.verdict(ctx, id)
	return err
}

// AwaitConvergence waits until every running server answers each client with its newest
// acknowledged AT line (or newer), within the given time.
func (c *Cluster) AwaitConvergence(ctx context.Context, newest map[string]string, within time.Duration) error {
	return c.awaitConvergence(ctx, newest, within, tag{})
}

func (c *Cluster) awaitConvergence(ctx context.Context, newest map[string]string, within time.Duration, t tag) error {
	id := c.ask(Asked{Kind: "converged", Newest: maps.Clone(newest), Within: within, Op: -1}, t)
	deadline := time.Now().Add(within)
	o := c.Oracle()
	for {
		ok := true
	check:
		for _, n := range c.Nodes() {
			if !o.Up(n) {
				continue
			}
			for _, cl := range sortedKeys(newest) {
				at, err := c.poll(ctx, id, n, cl)
				if err != nil || !newerOrSame(at, newest[cl]) {
					ok = false
					break check
				}
			}
		}
		if ok {
			for _, cl := range sortedKeys(newest) {
				for _, n := range c.Nodes() {
					if o.Up(n) {
						c.History.Saw(newest[cl], n, c.History.Now())
					}
				}
			}
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(PollInterval * 5):
		}
	}
	_, err := c.verdict(ctx, id)
	return err
}

// CheckFreshness checks the history: a server never answers a client's WHATSAT with an
// older client time than it answered before, unless it crashed or restarted in between (a
// restarted server may be ignorant until it resyncs). Checkers' polls are not judged.
func CheckFreshness(h *History) error {
	s := h.Snapshot()
	var ops []Op
	for _, op := range s.Ops {
		if op.Check == 0 {
			ops = append(ops, op)
		}
	}
	return freshness(ops, s.Faults, h.Now())
}

// checkFresh is CheckFreshness asked as a check: judged over the ops complete by now.
func (c *Cluster) checkFresh(ctx context.Context, t tag) error {
	id := c.ask(Asked{Kind: "fresh", Op: -1}, t)
	_, err := c.verdict(ctx, id)
	return err
}

// freshness is CheckFreshness over the given ops, those complete by until.
func freshness(all []Op, faults []FaultWindow, until time.Duration) error {
	type answer struct {
		op Op
		tm string // the client time, checked to be a protocol time
		at string
	}
	last := map[[2]string]answer{}
	var ops []Op
	for _, op := range all {
		if op.Kind == "whatsat" && op.Check == 0 && op.Err == "" && op.Complete >= 0 && op.Complete <= until && !strings.HasPrefix(op.Reply, "? ") {
			ops = append(ops, op)
		}
	}
	slices.SortStableFunc(ops, func(a, b Op) int { return int(a.Invoke - b.Invoke) })
	for _, op := range ops {
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
		if ok && prev.op.Complete < op.Invoke && cmp < 0 && !restartedBetween(faults, op.Node, prev.op.Complete, op.Invoke) {
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
	resp, err := httpClient(c.b).Do(req)
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

// readPlaces reads what the Places emulator answered for a WHATSAT's query on behalf of
// check, and records the read: the part of the emulator's query log the answer is
// judged by (relevantQueries), or, from an emulator without a query log, its answer to
// the legacy query. Nothing is read when the query itself is bad (expectedJSON says so).
func (c *Cluster) readPlaces(ctx context.Context, check int, location, radiusKm string, bound int) {
	loc, err := placesLocation(location)
	if err != nil {
		return
	}
	metres, err := radiusMetres(radiusKm)
	if err != nil {
		return
	}
	latS, lngS, _ := strings.Cut(loc, ",")
	lat, err1 := strconv.ParseFloat(latS, 64)
	lng, err2 := strconv.ParseFloat(lngS, 64)
	m, err3 := strconv.ParseFloat(metres, 64)
	if errors.Join(err1, err2, err3) != nil {
		return
	}
	invoke := c.History.Now()
	qs, err := c.queriesFor(ctx, lat, lng, m, bound)
	if errors.Is(err, errNoQueryLog) {
		q := url.Values{"location": {loc}, "radius": {metres}, "key": {""}}
		invoke = c.History.Now()
		body, _, err := c.emulatorAnswer(ctx, location, radiusKm, bound)
		if body != nil {
			err = nil // a body that does not trim is the verdict's business
		}
		c.History.Read(check, "places", Places, "GET "+emulatorPath+"?"+q.Encode(), invoke, string(body), err)
		return
	}
	reply := ""
	if err == nil {
		b, merr := json.Marshal(qs)
		reply, err = string(b), merr
	}
	c.History.Read(check, "places", Places, fmt.Sprintf("GET /emulator/queries (at %s, radius %s m, bound %d)", loc, metres, bound), invoke, reply, err)
}

// expectedJSON is what a WHATSAT's JSON may be, by a recorded read of the Places
// emulator (readPlaces): the answer to a query the herd made for it (one the emulator
// answered at the client's location with radius km x 1000, either API, the likeliest
// first; see selectQueries), cut to the bound; from an emulator without a query log, its
// answer to the legacy query, cut to the bound.
func expectedJSON(read *Op, location, radiusKm string, bound int) ([][]byte, error) {
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
	if read == nil {
		return nil, errNeedPlaces
	}
	if read.Err != "" {
		return nil, errors.New(read.Err)
	}
	if strings.HasPrefix(read.Request, "GET "+emulatorPath) {
		want, err := trimToBound([]byte(read.Reply), bound)
		if err != nil {
			return nil, fmt.Errorf("the emulator's answer: %w", err)
		}
		return [][]byte{want}, nil
	}
	var recorded []placesQuery
	if err := json.Unmarshal([]byte(read.Reply), &recorded); err != nil {
		return nil, fmt.Errorf("the recorded read of the emulator's query log: %w", err)
	}
	qs, err := selectQueries(recorded, lat, lng, m, bound)
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
// with the results past the bound cut and every other byte kept. The answer and the read
// of the emulator are recorded, and the verdict is the history's (whatsatVerdict).
func (c *Cluster) CheckWhatsat(ctx context.Context, node string, rep client.WhatsatReply, want Accepted, radiusKm string, bound int) error {
	c.History.Accept(want)
	id := c.ask(Asked{Kind: "whatsat", Node: node, Client: want.Client, Update: want.AT, Op: -1,
		Radius: radiusKm, Bound: bound, JSONBytes: c.claims(ExtJSONBytes)}, tag{})
	c.History.Read(id, "whatsat", node, "the answer judged", c.History.Now(), rep.Raw, nil)
	return c.whatsatVerdict(ctx, id)
}

// whatsatVerdict judges whatsat check id, reading the emulator first when the verdict
// needs it.
func (c *Cluster) whatsatVerdict(ctx context.Context, id int) error {
	if _, err := judge(c.History.view(id)); errors.Is(err, errNeedPlaces) {
		a := c.History.view(id)
		c.readPlaces(ctx, id, a.update.Location, a.asked.Radius, a.asked.Bound)
	}
	_, err := c.verdict(ctx, id)
	return err
}

// whatsatVerdict is the verdict on a WHATSAT answer (raw, as the server sent it) at node
// for want, by the recorded read of the Places emulator (nil: none yet, errNeedPlaces
// when the verdict needs one). See CheckWhatsat.
func whatsatVerdict(node, raw string, want Accepted, radiusKm string, bound int, jsonBytes bool, places *Op) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("WHATSAT correctness at %s: "+format, append([]any{node}, a...)...)
	}
	if strings.HasPrefix(raw, "? ") {
		return fail("answered %q for a client it must know", strings.TrimSpace(raw))
	}
	at, js, splitErr := splitWhatsatReply(raw)
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
	wants, err := expectedJSON(places, want.Location, radiusKm, bound)
	var bad errQuery
	switch {
	case errors.Is(err, errNeedPlaces):
		return err
	case errors.As(err, &bad):
		return fail("%v", err)
	case err != nil:
		return fmt.Errorf("checking WHATSAT at %s: the expected answer: %w", node, err)
	}
	for _, w := range wants {
		if js == string(w) {
			return nil
		}
		if !jsonBytes {
			if same, _ := sameJSONInOrder([]byte(js), w); same {
				return nil
			}
		}
	}
	wantJSON := wants[0]
	if !jsonBytes {
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
