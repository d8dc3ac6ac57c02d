package places

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func getLegacy(t *testing.T, base, rawQuery string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(base + NearbyPath + "?" + rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func queriesOverHTTP(t *testing.T, base, after string) []Query {
	t.Helper()
	resp, err := http.Get(base + "/emulator/queries?after=" + after)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var qs []Query
	if err := json.NewDecoder(resp.Body).Decode(&qs); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /emulator/queries: %d %v", resp.StatusCode, err)
	}
	return qs
}

// Every query of both APIs is logged, in order, with what it asked and the exact answer,
// forced failures included; the HTTP endpoint gives the same as Queries.
func TestQueryLogRecordsEveryQueryOfBothAPIs(t *testing.T) {
	e := &Emulator{}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	start := time.Now()
	type sent struct {
		api              string
		raw, key, mask   string
		lat, lng, radius float64
		max, status      int
		forced           string
	}
	legacyQ := url.Values{"location": {"34.068930,-118.445127"}, "radius": {"10587.1263"}, "key": {"k1"}}.Encode()
	newBody := string(NewRequestBody("-33.8688,151.2093", "2500.5", 7))
	var answers [][]byte
	plan := []sent{
		{api: APILegacy, raw: legacyQ, key: "k1", lat: 34.06893, lng: -118.445127, radius: 10587.1263, status: 200},
		{api: APINew, raw: newBody, key: "k2", mask: "places.id", lat: -33.8688, lng: 151.2093, radius: 2500.5, max: 7, status: 200},
		{api: APINew, raw: newBody, key: KeyDenied, mask: "*", lat: -33.8688, lng: 151.2093, radius: 2500.5, max: 7, status: 403},
		{api: APINew, raw: `{"maxResultCount":3,"locationRestriction":{"circle":{"center":{"latitude":1.5,"longitude":2.5},"radius":60000}}}`, mask: "*", lat: 1.5, lng: 2.5, radius: 60000, max: 3, status: 400},
		{api: APINew, raw: `{"maxResultCount":3,"bogus":1,"locationRestriction":{"circle":{"center":{"latitude":1.5,"longitude":2.5},"radius":10}}}`, mask: "*", lat: 1.5, lng: 2.5, radius: 10, max: 3, status: 400},
		{api: APILegacy, raw: "location=1,2&radius=oops", lat: 1, lng: 2, status: 200},
		{api: APILegacy, raw: legacyQ, key: "k1", lat: 34.06893, lng: -118.445127, radius: 10587.1263, status: 200, forced: "OVER_QUERY_LIMIT"},
		{api: APINew, raw: newBody, key: "k2", mask: "*", lat: -33.8688, lng: 151.2093, radius: 2500.5, max: 7, status: 429, forced: "OVER_QUERY_LIMIT"},
		{api: APILegacy, raw: legacyQ, key: "k1", lat: 34.06893, lng: -118.445127, radius: 10587.1263, status: 500, forced: "HTTP500"},
		{api: APINew, raw: newBody, key: "k2", mask: "*", lat: -33.8688, lng: 151.2093, radius: 2500.5, max: 7, status: 500, forced: "HTTP500"},
	}
	for i, s := range plan {
		force(t, srv.URL, s.forced)
		var code int
		var got []byte
		if s.api == APILegacy {
			code, got = getLegacy(t, srv.URL, s.raw)
		} else {
			code, got = postNew(t, srv.URL, s.raw, s.key, s.mask)
		}
		if code != s.status {
			t.Fatalf("query %d: HTTP %d, want %d\n%s", i, code, s.status, got)
		}
		answers = append(answers, got)
	}
	force(t, srv.URL, "")
	end := time.Now()
	qs := e.Queries(0)
	if len(qs) != len(plan) {
		t.Fatalf("%d queries logged, want %d", len(qs), len(plan))
	}
	for i, q := range qs {
		s := plan[i]
		if q.Seq != i+1 || q.API != s.api || q.Raw != s.raw || q.Key != s.key || q.FieldMask != s.mask ||
			q.Lat != s.lat || q.Lng != s.lng || q.Radius != s.radius || q.MaxResultCount != s.max || q.Status != s.status {
			t.Errorf("query %d logged as %+v\nwant %+v", i, q, s)
		}
		if !bytes.Equal(q.Answer, answers[i]) {
			t.Errorf("query %d: logged answer differs from the one sent:\n%s\nsent\n%s", i, q.Answer, answers[i])
		}
		if q.Time.Before(start) || q.Time.After(end) || (i > 0 && q.Time.Before(qs[i-1].Time)) {
			t.Errorf("query %d: time %v", i, q.Time)
		}
	}
	if got := e.Queries(7); len(got) != 3 || got[0].Seq != 8 {
		t.Errorf("Queries(7): %d queries", len(got))
	}
	if got := e.Queries(len(plan)); got != nil {
		t.Errorf("Queries(last): %v", got)
	}
	// Over HTTP: the same queries, the answers as strings.
	over := queriesOverHTTP(t, srv.URL, "3")
	if len(over) != len(plan)-3 {
		t.Fatalf("GET after=3: %d queries", len(over))
	}
	for i, q := range over {
		want := qs[i+3]
		if q.Seq != want.Seq || q.API != want.API || q.Raw != want.Raw || !bytes.Equal(q.Answer, want.Answer) ||
			q.Lat != want.Lat || q.Radius != want.Radius || q.MaxResultCount != want.MaxResultCount || !q.Time.Equal(want.Time) {
			t.Errorf("GET after=3, query %d: %+v\nwant %+v", i, q, want)
		}
	}
	resp, _ := http.Get(srv.URL + "/emulator/queries?after=99")
	b, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("nothing new is [], got %q", b)
	}
	var raw []map[string]any
	resp, _ = http.Get(srv.URL + "/emulator/queries")
	json.NewDecoder(resp.Body).Decode(&raw)
	if len(raw) != len(plan) || raw[0]["answer"] != string(answers[0]) || raw[1]["api"] != "new" || raw[1]["max_result_count"] != 7.0 {
		t.Errorf("GET with no after: %d queries, first %v", len(raw), raw[0]["seq"])
	}
	if resp, _ := http.Get(srv.URL + "/emulator/queries?after=x"); resp.StatusCode != 400 {
		t.Errorf("after=x: HTTP %d", resp.StatusCode)
	}
}

// The log keeps the newest queries only: at most its count, and its bytes.
func TestQueryLogIsBounded(t *testing.T) {
	e := &Emulator{}
	e.log.maxN = 5
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	for range 12 {
		getLegacy(t, srv.URL, "location=1,1&radius=3000")
	}
	qs := e.Queries(0)
	if len(qs) != 5 || qs[0].Seq != 8 || qs[4].Seq != 12 {
		t.Fatalf("kept %d queries, from %d", len(qs), qs[0].Seq)
	}
	if got := e.Queries(9); len(got) != 3 || got[0].Seq != 10 {
		t.Fatalf("Queries(9): %d from %d", len(got), got[0].Seq)
	}
	size := len(qs[0].Raw) + len(qs[0].Answer)
	e.log.maxN = 0
	e.log.maxBytes = 3*size + size/2
	getLegacy(t, srv.URL, "location=1,1&radius=3000")
	if qs := e.Queries(0); len(qs) != 3 || qs[2].Seq != 13 || e.log.size > e.log.maxBytes {
		t.Fatalf("byte bound: kept %d queries, %d bytes", len(qs), e.log.size)
	}
	// One answer over the byte bound is still kept (the newest query is always there).
	e.log.maxBytes = 10
	getLegacy(t, srv.URL, "location=1,1&radius=3000")
	if qs := e.Queries(0); len(qs) != 1 || qs[0].Seq != 14 {
		t.Fatalf("tiny byte bound: kept %d", len(qs))
	}
	if MaxQueries != 10000 {
		t.Fatalf("MaxQueries %d: the doc says 10,000", MaxQueries)
	}
}
