package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
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
	resp, err := http.DefaultClient.Do(req)
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

// queriesFor finds the queries that may be behind a WHATSAT answer: those the emulator
// answered at the client's location (lat, lng in degrees) with the radius the WHATSAT
// asked for (metres), newest first; those that asked for at least bound places (or any
// number: the legacy API) before those that asked for fewer. When there is none, it says
// what the herd asked instead (an errQuery).
func (c *Cluster) queriesFor(ctx context.Context, lat, lng, metres float64, bound int) ([]placesQuery, error) {
	if err := c.fetchQueries(ctx); err != nil {
		return nil, err
	}
	c.qmu.Lock()
	defer c.qmu.Unlock()
	near := func(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
	var atLocation, enough, fewer []placesQuery
	for i := len(c.queries) - 1; i >= 0 && len(enough)+len(fewer) < candidates; i-- {
		q := c.queries[i]
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
	if found := append(enough, fewer...); len(found) > 0 {
		return found, nil
	}
	if len(atLocation) > 0 {
		return nil, errQuery{fmt.Sprintf("the herd asked Places at the client's location with a radius of %g m, not the WHATSAT's %g m (km x 1000)", atLocation[0].Radius, metres)}
	}
	var recent []string
	for i := len(c.queries) - 1; i >= 0 && len(recent) < 3; i-- {
		recent = append(recent, fmt.Sprintf("(%g, %g) radius %g m", c.queries[i].Lat, c.queries[i].Lng, c.queries[i].Radius))
	}
	if len(recent) == 0 {
		return nil, errQuery{"the herd never asked Places (the emulator answered no query): it answered without asking, or its Places calls do not reach the emulator"}
	}
	return nil, errQuery{fmt.Sprintf("the herd never asked Places about the client's location (%g, %g) with radius %g m; its last queries: %s", lat, lng, metres, strings.Join(recent, "; "))}
}
