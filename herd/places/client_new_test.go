package places

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNewHTTPAPIEndpoints(t *testing.T) {
	cases := []struct{ api, in, want string }{
		{APINew, "http://127.0.0.1:9000", "http://127.0.0.1:9000/v1/places:searchNearby"},
		{APINew, "http://127.0.0.1:9000/", "http://127.0.0.1:9000/v1/places:searchNearby"},
		{APINew, "http://proxy:1/prefix/", "http://proxy:1/prefix/v1/places:searchNearby"},
		{APINew, "https://places.googleapis.com/v1/places:searchNearby", "https://places.googleapis.com/v1/places:searchNearby"},
		{APINew, GoogleNewBase, "https://places.googleapis.com/v1/places:searchNearby"},
		{APILegacy, "http://127.0.0.1:9000", "http://127.0.0.1:9000" + NearbyPath},
		{"", "http://h:1/x/json", "http://h:1/x/json"},
	}
	for _, c := range cases {
		h, err := NewHTTPAPI(c.api, c.in, "k", time.Second)
		if err != nil || h.URL != c.want {
			t.Errorf("NewHTTPAPI(%q, %q): %v %v, want %s", c.api, c.in, h, err, c.want)
			continue
		}
		if SourceAPI(h) != map[string]string{APINew: APINew, APILegacy: APILegacy, "": APILegacy}[c.api] {
			t.Errorf("%q: SourceAPI %s", c.api, SourceAPI(h))
		}
	}
	for _, bad := range [][2]string{{"newer", "http://h:1"}, {APINew, "ftp://h"}, {APINew, "places.googleapis.com"}} {
		if _, err := NewHTTPAPI(bad[0], bad[1], "", time.Second); err == nil {
			t.Errorf("NewHTTPAPI(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if SourceAPI(Local{}) != APILegacy || SourceAPI(Local{API: APINew}) != APINew {
		t.Error("Local's API")
	}
}

// The herd's client asks the emulator what docs/PROTOCOL.md says (the client's location, the
// radius in metres, at most the bound with the New API), and Reply's JSON is the answer
// to the query it made, cut to the bound with the newline rules: for both APIs, and the
// in-process Local gives the same bytes.
func TestReplyAgainstTheEmulatorForBothAPIs(t *testing.T) {
	e := &Emulator{}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	const loc, radius = "34.068930,-118.445127", "10587.1263"
	for _, api := range []string{APILegacy, APINew} {
		for _, bound := range []int{1, 3, 20} {
			h, err := NewHTTPAPI(api, srv.URL, "the-key", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			last := len(e.Queries(0))
			out, err := Reply(context.Background(), h, loc, radius, bound)
			if err != nil {
				t.Fatalf("%s bound %d: %v", api, bound, err)
			}
			qs := e.Queries(last)
			if len(qs) != 1 {
				t.Fatalf("%s: %d queries", api, len(qs))
			}
			q := qs[0]
			wantMax := 0
			if api == APINew {
				wantMax = bound
			}
			if q.API != api || q.Lat != 34.06893 || q.Lng != -118.445127 || q.Radius != 10587.1263 || q.MaxResultCount != wantMax || q.Key != "the-key" {
				t.Errorf("%s bound %d: the query was %+v", api, bound, q)
			}
			if api == APINew && (q.FieldMask != DefaultFieldMask || strings.Contains(q.Raw, "the-key")) {
				t.Errorf("new: field mask %q, body %s", q.FieldMask, q.Raw)
			}
			want, err := TrimAPI(api, q.Answer, bound)
			if err != nil || !bytes.Equal(out, want) {
				t.Fatalf("%s bound %d: Reply is not the answer cut to the bound: %v\n%s", api, bound, err, out)
			}
			n := 0
			if api == APINew {
				n = len(decodeNew(t, out).Places)
			} else {
				n = len(decode(t, out).Results)
			}
			if n != bound || bytes.Contains(out, []byte("\n\n")) || bytes.HasSuffix(out, []byte("\n")) {
				t.Fatalf("%s bound %d: %d places, or the newline rules broken", api, bound, n)
			}
			local, err := Reply(context.Background(), Local{API: api}, loc, radius, bound)
			if err != nil || !bytes.Equal(local, out) {
				t.Fatalf("%s bound %d: Local differs from the emulator: %v", api, bound, err)
			}
		}
	}
	// Nearby (the Source of a caller that knows no bound) asks for 20.
	h, _ := NewHTTPAPI(APINew, srv.URL, "", time.Second)
	body, err := h.Nearby(context.Background(), loc, radius)
	if q := e.Queries(0); err != nil || q[len(q)-1].MaxResultCount != 20 || len(decodeNew(t, body).Places) != 20 {
		t.Fatalf("Nearby: %v, %+v", err, q[len(q)-1])
	}
	if cut, err := Trim(body, 2); err != nil || len(decodeNew(t, cut).Places) != 2 {
		t.Fatalf("Trim of a New answer: %v %s", err, cut)
	}
}

// When the upstream fails, Reply answers at once with an error object in the shape of
// the source's API; the New API's own errors are passed on as it sent them.
func TestReplyWhenTheUpstreamFails(t *testing.T) {
	e := &Emulator{}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	const loc, radius = "34.068930,-118.445127", "5000"
	newSrc, _ := NewHTTPAPI(APINew, srv.URL, "k", time.Second)
	legacySrc, _ := NewHTTPAPI(APILegacy, srv.URL, "k", time.Second)

	// The New API's error answers are what the upstream said: passed on, newlines squeezed.
	for _, forced := range []string{"OVER_QUERY_LIMIT", "REQUEST_DENIED", "UNKNOWN_ERROR", "ZERO_RESULTS"} {
		force(t, srv.URL, forced)
		out, err := Reply(context.Background(), newSrc, loc, radius, 3)
		q := e.Queries(0)
		if err != nil || !bytes.Equal(out, SqueezeNewlines(q[len(q)-1].Answer)) {
			t.Errorf("forced %s: %v\n%s", forced, err, out)
		}
	}
	// HTTP 500 without an error object: the herd's own error, in the New API's shape.
	force(t, srv.URL, "HTTP500")
	out, err := Reply(context.Background(), newSrc, loc, radius, 3)
	d := decodeNew(t, out)
	if err == nil || d.Error == nil || d.Error.Code != 500 || d.Error.Status != StatusUnknown ||
		d.Error.Message != "places upstream answered HTTP 500" || strings.Contains(string(out), "127.0.0.1") {
		t.Errorf("HTTP500: %v\n%s", err, out)
	}
	want := "{\n  \"error\": {\n    \"code\": 500,\n    \"message\": \"places upstream answered HTTP 500\",\n    \"status\": \"UNKNOWN\"\n  }\n}"
	if string(out) != want {
		t.Errorf("HTTP500:\n%s\nwant\n%s", out, want)
	}
	// The legacy API keeps its own shape.
	out, err = Reply(context.Background(), legacySrc, loc, radius, 3)
	if dl := decode(t, out); err == nil || dl.Status != StatusUnknownError || dl.ErrorMessage != "places upstream answered HTTP 500" {
		t.Errorf("legacy HTTP500: %v\n%s", err, out)
	}
	force(t, srv.URL, "")

	// A slow upstream: DEADLINE_EXCEEDED within the timeout; a closed port: UNAVAILABLE.
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		url, status string
		code        int
	}{{slow.URL, StatusDeadlineExceeded, 504}, {closed, StatusUnavailable, 503}} {
		src, _ := NewHTTPAPI(APINew, c.url, "secret-key-123", 100*time.Millisecond)
		start := time.Now()
		out, err := Reply(context.Background(), src, loc, radius, 3)
		d := decodeNew(t, out)
		if err == nil || d.Error == nil || d.Error.Status != c.status || d.Error.Code != c.code || time.Since(start) > time.Second ||
			strings.Contains(string(out), "secret") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v after %v\n%s", c.status, err, time.Since(start), out)
		}
	}
	// A context deadline (the server's own timeout) is DEADLINE_EXCEEDED too.
	src, _ := NewHTTPAPI(APINew, slow.URL, "", time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	out, err = Reply(ctx, src, loc, radius, 3)
	if d := decodeNew(t, out); !errors.Is(err, context.DeadlineExceeded) || d.Error.Status != StatusDeadlineExceeded {
		t.Errorf("context deadline: %v\n%s", err, out)
	}
	// An answer that is not the API's: the herd's error.
	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"results": [], "status": "OK"}`))
	}))
	defer odd.Close()
	src, _ = NewHTTPAPI(APINew, odd.URL, "", time.Second)
	out, err = Reply(context.Background(), src, loc, radius, 3)
	if d := decodeNew(t, out); err == nil || d.Error.Status != StatusUnknown || !strings.Contains(d.Error.Message, `no "places"`) {
		t.Errorf("a legacy answer from a New upstream: %v\n%s", err, out)
	}
}

func TestTrimAPI(t *testing.T) {
	cases := []struct {
		api, body string
		bound     int
		want      string // "" for an error
	}{
		{APINew, "{\n  \"places\": [\n    {\"id\": 1},\n\n    {\"id\": 2},\n    {\"id\": 3}\n  ]\n}\n", 2, "{\n  \"places\": [\n    {\"id\": 1},\n    {\"id\": 2}\n  ]\n}"},
		{APINew, "{\n  \"places\": [\n    {\"id\": 1}\n\n  ]\n}\n\n", 5, "{\n  \"places\": [\n    {\"id\": 1}\n  ]\n}"},
		{APINew, "{}\n", 3, "{}"},
		{APINew, "{\n  \"error\": {\n\n    \"code\": 429\n  }\n}\n", 3, "{\n  \"error\": {\n    \"code\": 429\n  }\n}"},
		{APINew, `{"results": []}`, 3, ""},
		{APINew, `{"places": {}}`, 3, ""},
		{APINew, `{"error": "no"}`, 3, ""},
		{APINew, `[]`, 3, ""},
		{APILegacy, `{}`, 3, ""},
		{APILegacy, `{"places": []}`, 3, ""},
		{APILegacy, `{"error": {}}`, 3, ""},
		{APILegacy, `{"results": [1, 2, 3], "status": "OK"}`, 1, `{"results": [1], "status": "OK"}`},
	}
	for _, c := range cases {
		got, err := TrimAPI(c.api, []byte(c.body), c.bound)
		if c.want == "" {
			if err == nil {
				t.Errorf("TrimAPI(%s, %q) accepted: %q", c.api, c.body, got)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("TrimAPI(%s, %q, %d) = %q, %v\nwant %q", c.api, c.body, c.bound, got, err, c.want)
		}
	}
	// Trim takes either API's answers.
	for _, b := range []string{`{"results": [1, 2]}`, `{"places": [1, 2]}`, `{}`, `{"error": {"code": 1}}`} {
		if _, err := Trim([]byte(b), 1); err != nil {
			t.Errorf("Trim(%s): %v", b, err)
		}
	}
	if _, err := Trim([]byte(`{"status": "OK"}`), 1); err == nil || err.Error() != `places answer has no "results" or "places"` {
		t.Errorf("Trim without results or places: %v", err)
	}
}

func TestErrorJSONNewIsGoEncoded(t *testing.T) {
	got := string(ErrorJSONNew(503, StatusUnavailable, "boom & <x>"))
	want := "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"boom & <x>\",\n    \"status\": \"UNAVAILABLE\"\n  }\n}\n"
	if got != want {
		t.Errorf("ErrorJSONNew:\n%s\nwant\n%s", got, want)
	}
	var v newErrorResponse
	if err := json.Unmarshal([]byte(got), &v); err != nil || v.Error.Code != 503 {
		t.Fatal(err)
	}
}
