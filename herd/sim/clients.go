package sim

import (
	"context"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/places"
	"github.com/herdchaos/herd/herd/proto"
)

// PlacesTimeout is herd/server's default --places-timeout: a WHATSAT's Places request
// that takes longer fails, and the reply carries the places-errors JSON instead.
const PlacesTimeout = 2 * time.Second

// clientOp is a client's connection to n: it writes the operation's bytes in one write,
// half-closes and reads the replies (refused when n is down; queued while it is paused).
// A forged update is a man in the middle's, not a client's.
func (s *Sim) clientOp(n *node, o Op) {
	if !n.up {
		s.trace("client %s: %s refused (down)", o.Client, n.name)
		return
	}
	if o.Forge != "" {
		s.forge(n, o)
		return
	}
	data := o.Bytes()
	s.at(0, n, func() {
		lines, tooLong := splitClientLines(data, MaxLineBytes)
		s.serveLines(n, o, lines, tooLong, n.now())
	})
}

// serveLines answers a connection's lines in order, as herd/server's handle does: every
// line that came in the one read shares its receive time recv, and a WHATSAT holds the
// lines after it until its Places request answers. A line over MaxLineBytes is answered
// and ends the connection.
func (s *Sim) serveLines(n *node, o Op, lines []string, tooLong bool, recv time.Time) {
	for i, raw := range lines {
		if s.failure != nil {
			return
		}
		if tooLong && i == len(lines)-1 {
			got := proto.FormatInvalid(proto.TrimLine(raw))
			s.trace("%s line of over %d bytes -> %q (closing)", n.name, MaxLineBytes, short(got))
			if want := "? " + withoutTerminator(raw) + "\n"; got != want {
				s.fail("replies", "%s answered a line over %d bytes with %s", n.name, MaxLineBytes, showDiff(got, want))
			}
			s.stats.Lines++
			s.stats.Invalid++
			return
		}
		if hold := s.serveLine(n, o, raw, recv); hold > 0 {
			rest := lines[i+1:]
			s.at(hold, n, func() { s.serveLines(n, o, rest, tooLong, recv) })
			return
		}
	}
}

// serveLine answers one client line (raw, with its terminator if it had one) received at
// recv the way herd/server's command does, through herd/proto, herd/core and
// herd/places, and judges the reply against the simulator's own reading (oracle.go). It
// returns how long a WHATSAT's Places request held the connection.
func (s *Sim) serveLine(n *node, o Op, raw string, recv time.Time) (hold time.Duration) {
	ref := readRef(raw)
	if o.Line == "" && ref.Kind != map[bool]string{true: refWHATSAT, false: refIAMAT}[o.Read] {
		s.fail("schedule", "generated an invalid command %q", raw)
		return 0
	}
	line := proto.TrimLine(raw)
	cmd, _ := proto.ParseCommand(line, nil)
	var got string
	var forward []string
	var ask *simPlaces
	switch cmd.Kind {
	case proto.Blank:
	case proto.IAmAt:
		got, forward = n.core.ClientIAMAT(recv, cmd.IAMAT)
		got += "\n"
	case proto.WhatsAt:
		rec, ok := n.core.Lookup(cmd.WHATSAT.Client)
		if !ok {
			got = proto.FormatInvalid(line)
			break
		}
		u := rec.Update()
		ask = &simPlaces{api: s.sched.PlacesAPI, delay: s.placesDelay(n)}
		js, _ := places.Reply(context.Background(), ask, u.Location.PlacesParam(), proto.RadiusMetres(cmd.WHATSAT.RadiusKm), cmd.WHATSAT.Bound)
		got = rec.AT + "\n" + string(js) + "\n\n"
		hold = ask.took
	default:
		got = proto.FormatInvalid(line)
	}
	s.trace("%s %q -> %q", n.name, short(raw), short(got))
	s.stats.Lines++
	switch {
	case ref.Kind == refInvalid:
		s.stats.Invalid++
	case ask != nil && ask.timedOut:
		s.stats.PlacesTimeouts++
		fallthrough
	case ask != nil:
		s.stats.Whatsat++
	}
	switch ref.Kind {
	case refBlank:
		if got != "" {
			s.fail("replies", "%s answered the blank line %q with %q; a blank line gets no reply", n.name, raw, short(got))
		}
	case refInvalid:
		if want := ref.Echo(); got != want {
			s.fail("replies", "%s answered the invalid line %q: %s", n.name, short(raw), showDiff(got, want))
		}
	case refIAMAT:
		s.judgeIAMAT(n, ref, raw, got, recv)
	case refWHATSAT:
		s.judgeWHATSAT(n, ref, raw, got, ask)
	}
	n.wake(forward)
	return hold
}

// judgeIAMAT checks the reply to a valid IAMAT, and what the server then holds.
func (s *Sim) judgeIAMAT(n *node, ref refLine, raw, got string, recv time.Time) {
	f := strings.Split(strings.TrimSuffix(got, "\n"), " ")
	if !strings.HasSuffix(got, "\n") || len(f) != 6 || f[0] != "AT" || f[1] != n.name || f[3] != ref.Client || f[4] != ref.Location || f[5] != ref.Time {
		s.fail("replies", "%s answered %q to %q: want AT %s <diff> %s %s %s", n.name, short(got), short(raw), n.name, short(ref.Client), ref.Location, ref.Time)
		return
	}
	if msg := checkDiff(f[2], recv, ref.Time); msg != "" {
		s.fail("replies", "%s answered %q to %q received at %v: %s", n.name, got, short(raw), recv.UnixNano(), msg)
		return
	}
	at := strings.TrimSuffix(got, "\n")
	s.stats.Acked++
	r, _ := n.core.Lookup(ref.Client)
	if r.AT != at && (r.AT == "" || compareTime(ref.Time, lastField(r.AT)) > 0) {
		s.fail("newer wins", "%s did not store %q, newer than the %q it holds", n.name, at, r.AT)
		return
	}
	if r.AT == at {
		s.issued[at] = true
		s.stored(n, ref.Client, at)
		s.acks = append(s.acks, ack{at: at, client: ref.Client, origin: n.i, when: s.now})
	}
}

// judgeWHATSAT checks the reply to a valid WHATSAT: "? line" for a client the server was
// not seen storing; else the AT line it was seen storing last, then the Places JSON for
// the circle around that line's location, cut to the bound (or the timeout's error JSON
// when Places was slow), then an empty line.
func (s *Sim) judgeWHATSAT(n *node, ref refLine, raw, got string, ask *simPlaces) {
	held := s.held[n.i][ref.Client]
	if held == "" {
		if want := ref.Echo(); got != want {
			s.fail("whatsat", "%s answered %q for %s, which it was never seen storing: %s", n.name, short(raw), short(ref.Client), showDiff(got, want))
		}
		return
	}
	if !s.issued[held] {
		s.fail("whatsat", "%s holds %q for %s, an AT line no server of the herd answered to an IAMAT", n.name, held, short(ref.Client))
		return
	}
	if !strings.HasPrefix(got, held+"\n") || ask == nil {
		s.fail("whatsat", "%s answered %q with %q; it was seen storing %q last", n.name, short(raw), short(got), held)
		return
	}
	f := strings.Split(held, " ")
	lat, lng, _ := refLocation(f[4])
	if loc, m := refPlacesLocation(lat, lng), refMetres(ref.Radius); ask.location != loc || ask.radius != m {
		s.fail("whatsat", "%s asked Places for the circle %s radius %s m for %q; want %s radius %s m", n.name, ask.location, ask.radius, short(raw), loc, m)
		return
	}
	js, ok := strings.CutSuffix(got[len(held)+1:], "\n\n")
	if !ok || strings.HasSuffix(js, "\n") {
		s.fail("whatsat", "%s's reply to %q does not end with exactly one empty line: %q", n.name, short(raw), short(got))
		return
	}
	if ask.delay > PlacesTimeout {
		if ask.took > PlacesTimeout {
			s.fail("whatsat", "%s answered %q after %v, its Places request's whole delay: over the %v timeout", n.name, short(raw), ask.took, PlacesTimeout)
		} else if msg := refTimedOut([]byte(js), ask.api); msg != "" || strings.Contains(js, "\n\n") {
			s.fail("whatsat", "%s's reply to %q when Places took %v: %s (%q)", n.name, short(raw), ask.delay, msg, short(js))
		}
		return
	}
	list := "results"
	if ask.api == places.APINew {
		list = "places"
	}
	want, err := refPlacesJSON(ask.answer, list, refBoundInt(ref.Bound))
	if err != nil {
		s.fail("whatsat", "the simulated Places answered %q: %v", short(string(ask.answer)), err)
		return
	}
	if js != string(want) {
		s.fail("whatsat", "%s's Places JSON for %q is not the upstream's cut to the bound: %s", n.name, short(raw), showDiff(js, string(want)))
	}
}

// placesDelay is how long n's next Places request takes: a few milliseconds, or past
// PlacesTimeout while n's Places is slow.
func (s *Sim) placesDelay(n *node) time.Duration {
	if n.placesSlow > 0 {
		return PlacesTimeout + time.Millisecond + time.Duration(s.rng.Int64N(int64(8*time.Second)))
	}
	return time.Millisecond + time.Duration(s.rng.Int64N(int64(30*time.Millisecond)))
}

// simPlaces is the Places upstream of one WHATSAT: the emulator's deterministic data set
// in-process (places.Local), answering after delay; a request that would take longer
// than PlacesTimeout fails at the timeout, as the server's request does. It keeps what it
// was asked, what it answered and how long the request took, for the judge.
type simPlaces struct {
	api      string
	delay    time.Duration
	location string
	radius   string
	answer   []byte
	timedOut bool
	took     time.Duration
}

// PlacesAPI implements places.APISource.
func (p *simPlaces) PlacesAPI() string { return places.Local{API: p.api}.PlacesAPI() }

// Nearby implements places.Source.
func (p *simPlaces) Nearby(ctx context.Context, location, radiusMetres string) ([]byte, error) {
	return p.NearbyBounded(ctx, location, radiusMetres, 20)
}

// NearbyBounded implements places.BoundedSource.
func (p *simPlaces) NearbyBounded(ctx context.Context, location, radiusMetres string, bound int) ([]byte, error) {
	p.location, p.radius = location, radiusMetres
	if p.delay > PlacesTimeout {
		p.timedOut, p.took = true, PlacesTimeout
		return nil, context.DeadlineExceeded
	}
	p.took = p.delay
	body, err := places.Local{API: p.api}.NearbyBounded(ctx, location, radiusMetres, bound)
	p.answer = body
	return body, err
}

// short is s cut for a message or the trace (lines may be 64 KiB).
func short(s string) string {
	if len(s) <= 200 {
		return s
	}
	return s[:160] + "..." + s[len(s)-20:]
}
