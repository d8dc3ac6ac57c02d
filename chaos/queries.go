package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// placesQuery is one query the Places emulator answered, as its query log gives it
// (GET /emulator/queries?after=N): the checkers judge a herd's WHATSAT JSON against the
// answer to the query the herd actually made, and that query against the client's
// location and the WHATSAT's radius.
type placesQuery struct {
	Seq            int     `json:"seq"`
	API            string  `json:"api"` // "legacy" or "new"
	Lat            float64 `json:"lat"`
	Lng            float64 `json:"lng"`
	Radius         float64 `json:"radius"` // metres
	MaxResultCount int     `json:"max_result_count"`
	Status         int     `json:"status"`
	Answer         string  `json:"answer"`
}

// keptQueries is how many recent queries a Cluster keeps to search.
const keptQueries = 4000

// errNoQueryLog is an emulator without a query log (an old image).
var errNoQueryLog = errors.New("the Places emulator keeps no query log")

// fetchQueries adds the queries the emulator answered since the last fetch.
func (c *Cluster) fetchQueries(ctx context.Context) error {
	c.qmu.Lock()
	after := c.querySeq
	c.qmu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.b.PlacesURL()+"/emulator/queries?after="+strconv.Itoa(after), nil)
	if err != nil {
		return err
	}
	resp, err := httpClient(c.b).Do(req)
	if err != nil {
		return fmt.Errorf("reading the emulator's query log: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return errNoQueryLog
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("the emulator's query log: HTTP %d: %q", resp.StatusCode, b)
	}
	var qs []placesQuery
	if err := json.NewDecoder(resp.Body).Decode(&qs); err != nil {
		return fmt.Errorf("the emulator's query log: %w", err)
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	for _, q := range qs {
		if q.Seq > c.querySeq {
			c.queries = append(c.queries, q)
			c.querySeq = q.Seq
		}
	}
	if n := len(c.queries); n > keptQueries {
		c.queries = append([]placesQuery(nil), c.queries[n-keptQueries:]...)
	}
	return nil
}

// errQuery is a herd's Places query that does not fit its WHATSAT (or none at all): a
// finding about the herd, unlike an error reading the log.
type errQuery struct{ msg string }

func (e errQuery) Error() string { return e.msg }

// candidates is how many queries at the same place a WHATSAT's answer is compared with.
const candidates = 20

// queriesFor fetches the emulator's query log and returns the part of it a WHATSAT
// answer at (lat, lng) with radius metres is judged by (relevantQueries), oldest first:
// selectQueries finds the candidates in it.
func (c *Cluster) queriesFor(ctx context.Context, lat, lng, metres float64, bound int) ([]placesQuery, error) {
	if err := c.fetchQueries(ctx); err != nil {
		return nil, err
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return relevantQueries(c.queries, lat, lng, metres, bound), nil
}

// scanQueries looks at queries (oldest first) from the newest back: those the emulator
// answered at (lat, lng) with the radius the WHATSAT asked for (metres), those that
// asked for at least bound places (or any number: the legacy API) apart from those that
// asked for fewer, until candidates are found; those at the location with another
// radius; and the three newest of all.
func scanQueries(qs []placesQuery, lat, lng, metres float64, bound int) (enough, fewer, atLocation, recent []placesQuery) {
	near := func(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
	for i := len(qs) - 1; i >= 0 && len(recent) < 3; i-- {
		recent = append(recent, qs[i])
	}
	for i := len(qs) - 1; i >= 0 && len(enough)+len(fewer) < candidates; i-- {
		q := qs[i]
		if !near(q.Lat, lat, 1e-6) || !near(q.Lng, lng, 1e-6) {
			continue
		}
		switch {
		case !near(q.Radius, metres, 1e-6*math.Max(1, metres)):
			atLocation = append(atLocation, q)
		case q.MaxResultCount == 0 || q.MaxResultCount >= bound:
			enough = append(enough, q)
		default:
			fewer = append(fewer, q)
		}
	}
	return enough, fewer, atLocation, recent
}

// relevantQueries is what of the query log a check records: what selectQueries's
// answer depends on, oldest first: the candidates (with their answers), and, without
// their answers, the newest query at the location with another radius and the three
// newest of all. selectQueries over it finds what it finds over the whole log.
func relevantQueries(qs []placesQuery, lat, lng, metres float64, bound int) []placesQuery {
	enough, fewer, atLocation, recent := scanQueries(qs, lat, lng, metres, bound)
	byseq := map[int]placesQuery{}
	for _, q := range slices.Concat(atLocation[:min(1, len(atLocation))], recent) {
		q.Answer = "" // only where and how wide it asked is read of these
		byseq[q.Seq] = q
	}
	for _, q := range slices.Concat(enough, fewer) {
		byseq[q.Seq] = q
	}
	out := slices.Collect(maps.Values(byseq))
	slices.SortFunc(out, func(a, b placesQuery) int { return a.Seq - b.Seq })
	return out
}

// selectQueries finds the queries that may be behind a WHATSAT answer (see scanQueries),
// newest first, those that asked for enough places first. When there is none, it says
// what the herd asked instead (an errQuery).
func selectQueries(qs []placesQuery, lat, lng, metres float64, bound int) ([]placesQuery, error) {
	enough, fewer, atLocation, recentQs := scanQueries(qs, lat, lng, metres, bound)
	if found := append(enough, fewer...); len(found) > 0 {
		return found, nil
	}
	if len(atLocation) > 0 {
		return nil, errQuery{fmt.Sprintf("the herd asked Places at the client's location with a radius of %g m, not the WHATSAT's %g m (km x 1000)", atLocation[0].Radius, metres)}
	}
	var recent []string
	for _, q := range recentQs {
		recent = append(recent, fmt.Sprintf("(%g, %g) radius %g m", q.Lat, q.Lng, q.Radius))
	}
	if len(recent) == 0 {
		return nil, errQuery{"the herd never asked Places (the emulator answered no query): it answered without asking, or its Places calls do not reach the emulator"}
	}
	return nil, errQuery{fmt.Sprintf("the herd never asked Places about the client's location (%g, %g) with radius %g m; its last queries: %s", lat, lng, metres, strings.Join(recent, "; "))}
}
