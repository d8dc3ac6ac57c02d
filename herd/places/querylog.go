package places

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The APIs a query can be made to.
const (
	APILegacy = "legacy" // GET NearbyPath
	APINew    = "new"    // POST NewPath
)

// Query is one Places query the emulator answered, as its query log keeps it.
type Query struct {
	Seq int    // 1, 2, ... in the order the emulator answered
	API string // APILegacy or APINew
	// Lat, Lng and Radius (metres) are the query's values as parsed, whether or not the
	// emulator found them valid; 0 when they could not be parsed at all.
	Lat, Lng, Radius float64
	// MaxResultCount is the New API's maxResultCount as sent (0 when absent, which the API
	// takes as 20); 0 for the legacy API.
	MaxResultCount int
	Raw            string // the legacy query string (URL-encoded), or the New API's body
	Key            string // the API key the query carried
	FieldMask      string // the New API's field mask ("" for the legacy API)
	Status         int    // the HTTP status of the answer
	// Answer is the exact body sent back. It is shared with the log: do not modify it.
	Answer []byte
	Time   time.Time // when the answer was ready (just before it was sent)
}

// queryJSON is Query as GET /emulator/queries writes it: the answer as a string.
type queryJSON struct {
	Seq            int       `json:"seq"`
	API            string    `json:"api"`
	Lat            float64   `json:"lat"`
	Lng            float64   `json:"lng"`
	Radius         float64   `json:"radius"`
	MaxResultCount int       `json:"max_result_count"`
	Raw            string    `json:"raw"`
	Key            string    `json:"key"`
	FieldMask      string    `json:"field_mask,omitempty"`
	Status         int       `json:"status"`
	Answer         string    `json:"answer"`
	Time           time.Time `json:"time"`
}

// MarshalJSON writes the query with its answer as a JSON string (exact for the
// emulator's answers, which are UTF-8; a Raw body that is not UTF-8 is not kept exactly).
func (q Query) MarshalJSON() ([]byte, error) {
	return json.Marshal(queryJSON{q.Seq, q.API, q.Lat, q.Lng, q.Radius, q.MaxResultCount, q.Raw,
		q.Key, q.FieldMask, q.Status, string(q.Answer), q.Time})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (q *Query) UnmarshalJSON(b []byte) error {
	var j queryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*q = Query{j.Seq, j.API, j.Lat, j.Lng, j.Radius, j.MaxResultCount, j.Raw, j.Key, j.FieldMask,
		j.Status, []byte(j.Answer), j.Time}
	return nil
}

// The query log's bounds: it keeps the last MaxQueries queries, and drops the oldest
// sooner when the kept queries' raw requests and answers pass MaxQueryBytes.
const (
	MaxQueries    = 10000
	MaxQueryBytes = 64 << 20
)

// queryLog is the emulator's bounded log of queries; the Emulator's mutex guards it.
type queryLog struct {
	seq      int
	qs       []Query
	size     int // bytes of Raw and Answer held
	maxN     int // 0: MaxQueries
	maxBytes int // 0: MaxQueryBytes
}

func (l *queryLog) add(q Query) {
	maxN, maxBytes := l.maxN, l.maxBytes
	if maxN <= 0 {
		maxN = MaxQueries
	}
	if maxBytes <= 0 {
		maxBytes = MaxQueryBytes
	}
	l.seq++
	q.Seq = l.seq
	l.qs = append(l.qs, q)
	l.size += len(q.Raw) + len(q.Answer)
	for len(l.qs) > 1 && (len(l.qs) > maxN || l.size > maxBytes) {
		l.size -= len(l.qs[0].Raw) + len(l.qs[0].Answer)
		l.qs[0] = Query{} // let the answer go now, not when the array is reallocated
		l.qs = l.qs[1:]
	}
}

func (l *queryLog) after(seq int) []Query {
	i := sort.Search(len(l.qs), func(i int) bool { return l.qs[i].Seq > seq })
	if i == len(l.qs) {
		return nil
	}
	return append([]Query(nil), l.qs[i:]...)
}

// Queries are the queries the emulator answered with Seq > after, oldest first: every
// Places query of either API, including those a forced failure answered, recorded before
// its answer is sent. The log is bounded (the last MaxQueries, and at most MaxQueryBytes
// of raw requests and answers), so a caller that falls behind sees a gap in Seq.
func (e *Emulator) Queries(after int) []Query {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.log.after(after)
}

func (e *Emulator) record(q Query) {
	q.Time = time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log.add(q)
}

// parseLoose parses a number for the log: 0 when it is not one.
func parseLoose(s string) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
