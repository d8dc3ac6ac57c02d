package places

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

type decoded struct {
	Status        string           `json:"status"`
	ErrorMessage  string           `json:"error_message"`
	NextPageToken string           `json:"next_page_token"`
	Results       []map[string]any `json:"results"`
}

func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	var d decoded
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return d
}

func TestAnswerIsDeterministic(t *testing.T) {
	a := Answer("34.068930,-118.445127", "10000", "")
	b := Answer("34.068930,-118.445127", "10000", "")
	if !bytes.Equal(a, b) {
		t.Fatal("same query, different answers")
	}
}

func TestAnyValidLocationGetsResultsWithin50km(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	locs := [][2]float64{{90, 0}, {-90, 0}, {89.999, 179.999}, {0, 180}, {0, -180}, {-33.9, 151.2}, {0, 0}}
	for range 200 {
		locs = append(locs, [2]float64{rng.Float64()*180 - 90, rng.Float64()*360 - 180})
	}
	for _, l := range locs {
		for _, radius := range []float64{50000, 5000} {
			found, total := Nearby(l[0], l[1], radius)
			if len(found) == 0 {
				t.Fatalf("no place within %.0f m of %v", radius, l)
			}
			if total < len(found) || len(found) > pageSize {
				t.Fatalf("total %d, page %d", total, len(found))
			}
			for i, p := range found {
				d := distance(l[0], l[1], p.Lat, p.Lng)
				if d > radius {
					t.Fatalf("%s is %.0f m away, radius %.0f", p.ID, d, radius)
				}
				if i > 0 && d < distance(l[0], l[1], found[i-1].Lat, found[i-1].Lng) {
					t.Fatal("results not nearest first")
				}
			}
		}
	}
}

func TestNearbyAcrossTheAntimeridianFindsBothSides(t *testing.T) {
	found, _ := Nearby(0, 179.995, 5000)
	east, west := false, false
	for _, p := range found {
		if p.Lng > 0 {
			east = true
		} else {
			west = true
		}
	}
	if !east || !west {
		t.Fatalf("east %v west %v: %d results", east, west, len(found))
	}
}

func TestAnswerStatuses(t *testing.T) {
	cases := []struct{ loc, radius, key, status string }{
		{"34.07,-118.44", "5000", "", StatusOK},
		{"34.07,-118.44", "0.5", "", StatusZeroResults},
		{"34.07,-118.44", "5000", KeyDenied, StatusRequestDenied},
		{"34.07,-118.44", "5000", KeyOverLimit, StatusOverQueryLimit},
		{"94.07,-118.44", "5000", "", StatusInvalidRequest},
		{"34.07", "5000", "", StatusInvalidRequest},
		{"34.07,-118.44", "50001", "", StatusInvalidRequest},
		{"34.07,-118.44", "-1", "", StatusInvalidRequest},
		{"34.07,-118.44", "", "", StatusInvalidRequest},
	}
	for _, c := range cases {
		d := decode(t, Answer(c.loc, c.radius, c.key))
		if d.Status != c.status {
			t.Errorf("Answer(%s, %s, %s) status %s, want %s", c.loc, c.radius, c.key, d.Status, c.status)
		}
		if (d.Status == StatusOK) != (len(d.Results) > 0) {
			t.Errorf("status %s with %d results", d.Status, len(d.Results))
		}
	}
	if d := decode(t, Answer("34.07,-118.44", "50000", "")); d.NextPageToken == "" || len(d.Results) != 20 {
		t.Errorf("a crowded answer has 20 results and a next page: %d, %q", len(d.Results), d.NextPageToken)
	}
}

func TestTrimCutsResultsAndKeepsEverythingElseByteForByte(t *testing.T) {
	body := Answer("34.068930,-118.445127", "10000", "")
	full := decode(t, body)
	for _, bound := range []int{1, 3, 20} {
		got, err := Trim(body, bound)
		if err != nil {
			t.Fatal(err)
		}
		d := decode(t, got)
		want := min(bound, len(full.Results))
		if len(d.Results) != want {
			t.Fatalf("bound %d: %d results", bound, len(d.Results))
		}
		for i := range d.Results {
			if fmt.Sprint(d.Results[i]) != fmt.Sprint(full.Results[i]) {
				t.Fatalf("result %d changed", i)
			}
		}
		if bytes.HasSuffix(got, []byte("\n")) || bytes.Contains(got, []byte("\n\n")) {
			t.Fatal("newline rules not applied")
		}
		// Everything before the results array is untouched.
		head := body[:bytes.Index(body, []byte(`"results"`))]
		if !bytes.HasPrefix(got, head) {
			t.Fatal("bytes before results changed")
		}
		if !bytes.HasSuffix(got, bytes.TrimRight(body[bytes.LastIndex(body, []byte("]")):], "\n")) {
			t.Fatal("bytes after results changed")
		}
	}
}

func TestTrimKeepsUpstreamBytesAndSqueezesNewlines(t *testing.T) {
	body := []byte("{\"a\" :1,\n\n\n\"results\":[ {\"x\":1,\"z\":2,\"y\":3} ,\n{\"x\":2},{\"x\":3}\n ],\"status\":\"OK\"}\n\n\n")
	got, err := Trim(body, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\"a\" :1,\n\"results\":[ {\"x\":1,\"z\":2,\"y\":3} ,\n{\"x\":2}\n ],\"status\":\"OK\"}"
	if string(got) != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestTrimRejectsWhatIsNotAnAnswer(t *testing.T) {
	for _, b := range []string{"", "[]", "{", `{"status":"OK"}`, `{"results":{}}`, `{"results":[1,}`, "<html>"} {
		if _, err := Trim([]byte(b), 5); err == nil {
			t.Errorf("Trim(%q) accepted", b)
		}
	}
}

func TestHTTPClientAgainstTheEmulator(t *testing.T) {
	srv := httptest.NewServer((&Emulator{}).Handler())
	defer srv.Close()
	c, err := NewHTTP(srv.URL, "secret-key-123", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Nearby(context.Background(), "34.068930,-118.445127", "10000")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, Answer("34.068930,-118.445127", "10000", "")) {
		t.Fatal("HTTP answer differs from the in-process one")
	}
	local, _ := Local{}.Nearby(context.Background(), "34.068930,-118.445127", "10000")
	if !bytes.Equal(body, local) {
		t.Fatal("Local differs from the emulator")
	}
}

func TestHTTPClientErrorsNeverCarryTheKey(t *testing.T) {
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	c, _ := NewHTTP(slow.URL, "secret-key-123", 50*time.Millisecond)
	_, err := c.Nearby(context.Background(), "1,1", "10")
	if err == nil || strings.Contains(err.Error(), "secret-key-123") {
		t.Fatalf("err %v", err)
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer failing.Close()
	c, _ = NewHTTP(failing.URL, "secret-key-123", time.Second)
	if _, err := c.Nearby(context.Background(), "1,1", "10"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err %v", err)
	}
}

func TestEmulatorControlEndpointForcesAStatus(t *testing.T) {
	e := &Emulator{}
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/emulator/status?status=OVER_QUERY_LIMIT", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c, _ := NewHTTP(srv.URL+NearbyPath, "", time.Second)
	body, err := c.Nearby(context.Background(), "1,1", "5000")
	if err != nil || decode(t, body).Status != StatusOverQueryLimit {
		t.Fatalf("forced status not served: %v %s", err, body)
	}
	http.Post(srv.URL+"/emulator/status?status=HTTP500", "", nil)
	if _, err := c.Nearby(context.Background(), "1,1", "5000"); err == nil {
		t.Fatal("HTTP500 mode answered")
	}
	http.Post(srv.URL+"/emulator/status?status=", "", nil)
	if body, _ := c.Nearby(context.Background(), "1,1", "5000"); decode(t, body).Status != StatusOK {
		t.Fatal("not restored")
	}
}

// TestAnswersAreFormattedAsGooglesNotAsGos: the emulator's bytes are Google's layout, not
// what Go's encoder would write for the same value, so a herd that re-encodes the JSON
// answers other bytes; and some answers have blank lines, which a herd must squeeze.
func TestAnswersAreFormattedAsGooglesNotAsGos(t *testing.T) {
	const seed = 20261128
	rng := rand.New(rand.NewPCG(seed, 2))
	goKey := regexp.MustCompile(`"[a-z_]+": `)
	met := map[string]int{}
	for i := range 100 {
		loc := fmt.Sprintf("%.6f,%.6f", rng.Float64()*170-85, rng.Float64()*360-180)
		body := Answer(loc, fmt.Sprint(3000+rng.IntN(12000)), "")
		if !json.Valid(body) {
			t.Fatalf("seed %d, query %d: not JSON:\n%s", seed, i, body)
		}
		if !bytes.HasPrefix(body, []byte("{\n   \"html_attributions\" : [],\n")) || !bytes.HasSuffix(body, []byte("\n   \"status\" : \"OK\"\n}\n")) {
			t.Fatalf("seed %d, query %d: not Google's layout:\n%s", seed, i, body)
		}
		if goKey.Match(body) || bytes.Contains(body, []byte(`\u0026`)) {
			t.Fatalf("seed %d, query %d: Go's spacing or escaping:\n%s", seed, i, body)
		}
		for _, line := range strings.Split(string(body), "\n") {
			indent := len(line) - len(strings.TrimLeft(line, " "))
			if indent%3 != 0 {
				t.Fatalf("seed %d, query %d: indentation of %d in %q", seed, i, indent, line)
			}
		}
		if !bytes.Contains(body, []byte(`"types" : [ "`)) {
			t.Fatalf("seed %d, query %d: types not on one line:\n%s", seed, i, body)
		}
		var v any
		json.Unmarshal(body, &v)
		goIndented, _ := json.MarshalIndent(v, "", "   ")
		if bytes.Equal(bytes.TrimSpace(goIndented), bytes.TrimSpace(body)) {
			t.Fatalf("seed %d, query %d: the answer is what Go's encoder writes", seed, i)
		}
		for what, b := range map[string]string{"&": "&", "<": "<", ">": ">", "a blank line": "\n\n", "an escaped quote": `\"`, "é": "é", "price_level": `"price_level" : `, "photos": `"photos" : [`} {
			if bytes.Contains(body, []byte(b)) {
				met[what]++
			}
		}
		if d := decode(t, body); d.NextPageToken != "" {
			met["next_page_token"]++
		}
	}
	for _, what := range []string{"&", "<", ">", "a blank line", "an escaped quote", "é", "price_level", "photos", "next_page_token"} {
		if met[what] < 5 {
			t.Errorf("seed %d: only %d of 100 answers have %s", seed, met[what], what)
		}
	}
}

func TestErrorAnswersKeepTheirShape(t *testing.T) {
	for _, c := range []struct{ loc, radius, key, want string }{
		{"34.07,-118.44", "5000", KeyDenied, "{\n   \"error_message\" : \"The provided API key is invalid.\",\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"REQUEST_DENIED\"\n}\n"},
		{"34.07,-118.44", "5000", KeyOverLimit, "{\n   \"error_message\" : \"You have exceeded your daily request quota for this API.\",\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"OVER_QUERY_LIMIT\"\n}\n"},
		{"94.07,-118.44", "5000", "", "{\n   \"error_message\" : \"Invalid request. Invalid 'location' parameter.\",\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"INVALID_REQUEST\"\n}\n"},
		{"34.07,-118.44", "0", "", "{\n   \"error_message\" : \"Invalid request. Invalid 'radius' parameter.\",\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"INVALID_REQUEST\"\n}\n"},
		{"34.07,-118.44", "0.5", "", "{\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"ZERO_RESULTS\"\n}\n"},
	} {
		if got := string(Answer(c.loc, c.radius, c.key)); got != c.want {
			t.Errorf("Answer(%s, %s, %q):\n%s\nwant\n%s", c.loc, c.radius, c.key, got, c.want)
		}
	}
	// The herd's own failure answer keeps Go's formatting (the herd's tests rely on it).
	want := "{\n   \"error_message\": \"boom & <x>\",\n   \"html_attributions\": [],\n   \"results\": [],\n   \"status\": \"UNKNOWN_ERROR\"\n}\n"
	if got := string(ErrorJSON(StatusUnknownError, "boom & <x>")); got != want {
		t.Errorf("ErrorJSON:\n%s\nwant\n%s", got, want)
	}
	// The control endpoint's forced failures have the emulator's shape too.
	srv := httptest.NewServer((&Emulator{}).Handler())
	defer srv.Close()
	http.Post(srv.URL+"/emulator/status?status=OVER_QUERY_LIMIT", "", nil)
	c, _ := NewHTTP(srv.URL, "", time.Second)
	body, err := c.Nearby(context.Background(), "1,1", "5000")
	if err != nil || string(body) != "{\n   \"error_message\" : \"forced by the emulator's control endpoint\",\n   \"html_attributions\" : [],\n   \"results\" : [],\n   \"status\" : \"OVER_QUERY_LIMIT\"\n}\n" {
		t.Errorf("forced: %q, %v", body, err)
	}
}

// The answer depends on the query's values, not on how its numbers are written (the next
// page token too), as a herd may write "10000" or "10000.0", "34.06893" or "34.068930".
func TestAnswerDependsOnTheQuerysValuesOnly(t *testing.T) {
	a := Answer("34.068930,-118.445127", "50000", "")
	b := Answer("34.06893,-118.4451270", "50000.000", "")
	if !bytes.Equal(a, b) || decode(t, a).NextPageToken == "" {
		t.Fatal("the same query written otherwise gives another answer")
	}
	if c := Answer("34.068931,-118.445127", "50000", ""); decode(t, c).NextPageToken == decode(t, a).NextPageToken {
		t.Fatal("another query, the same page token")
	}
}
