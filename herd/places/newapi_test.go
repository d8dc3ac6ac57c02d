package places

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const ucla = "34.068930,-118.445127"

type newDecoded struct {
	Places []map[string]any `json:"places"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

func decodeNew(t *testing.T, b []byte) newDecoded {
	t.Helper()
	var d newDecoded
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("not a New API answer: %v\n%s", err, b)
	}
	return d
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// allPlaceFields are the fields a place of the data set can have.
var allPlaceFields = []string{"businessStatus", "currentOpeningHours", "displayName", "formattedAddress",
	"googleMapsUri", "iconBackgroundColor", "iconMaskBaseUri", "id", "location", "name", "photos",
	"priceLevel", "primaryType", "primaryTypeDisplayName", "rating", "shortFormattedAddress", "types",
	"userRatingCount", "viewport"}

func TestAnswerNewFieldMasks(t *testing.T) {
	body := NewRequestBody(ucla, "10000", 20)
	cases := []struct {
		mask string
		// want is each place's fields (sorted) as "a b c", sub-objects as "a{x y}"; "" for {}.
		want string
	}{
		{"places.displayName", "displayName{languageCode text}"},
		{"places.displayName.text", "displayName{text}"},
		{"places.location.latitude,places.location.longitude", "location{latitude longitude}"},
		{"places.viewport.low.latitude", "viewport{low}"},
		{"places.id,places.rating", "id rating"},
		{" places.id , places.types ,", "id types"},
		{"places.display_name", "displayName{languageCode text}"},                        // proto names as well
		{"places.id,places.websiteUri", "id"},                                            // a field the data set lacks
		{"places.displayName,places.displayName.text", "displayName{languageCode text}"}, // the shorter path wins
		{"places.currentOpeningHours.periods", "currentOpeningHours?"},
		{"routingSummaries", "-"}, // no places at all: {}
	}
	for _, c := range cases {
		status, got := AnswerNew(body, "", c.mask)
		if status != http.StatusOK {
			t.Fatalf("mask %q: status %d\n%s", c.mask, status, got)
		}
		d := decodeNew(t, got)
		if c.want == "-" {
			if string(got) != "{}\n" {
				t.Errorf("mask %q: %q, want {}", c.mask, got)
			}
			continue
		}
		if len(d.Places) != 20 {
			t.Fatalf("mask %q: %d places", c.mask, len(d.Places))
		}
		for i, p := range d.Places {
			var parts []string
			for _, k := range keysOf(p) {
				if sub, ok := p[k].(map[string]any); ok && k != "currentOpeningHours" {
					parts = append(parts, k+"{"+strings.Join(keysOf(sub), " ")+"}")
				} else if k == "currentOpeningHours" {
					if len(p[k].(map[string]any)) != 0 {
						t.Errorf("mask %q: currentOpeningHours %v, want {}", c.mask, p[k])
					}
					parts = append(parts, k+"?")
				} else {
					parts = append(parts, k)
				}
			}
			got := strings.Join(parts, " ")
			if got != c.want && !(c.want == "currentOpeningHours?" && got == "") {
				t.Errorf("mask %q: place %d has %q, want %q", c.mask, i, got, c.want)
			}
		}
	}
	// "*" and "places" are every field, in the API's order whatever the mask's order.
	full := 0
	for _, mask := range []string{"*", "places", "places.*"} {
		_, got := AnswerNew(body, "", mask)
		for _, p := range decodeNew(t, got).Places {
			if ks := keysOf(p); len(ks) >= len(allPlaceFields)-3 {
				full++
			}
			for _, k := range keysOf(p) {
				if !slices.Contains(allPlaceFields, k) {
					t.Errorf("mask %q: unknown field %s", mask, k)
				}
			}
		}
		_, all := AnswerNew(body, "", "*")
		if !bytes.Equal(got, all) {
			t.Errorf("mask %q differs from *", mask)
		}
	}
	if full == 0 {
		t.Error("no place with (nearly) every field")
	}
	_, a := AnswerNew(body, "", "places.rating,places.id")
	_, b := AnswerNew(body, "", "places.id,places.rating")
	if !bytes.Equal(a, b) || bytes.Index(a, []byte(`"id"`)) > bytes.Index(a, []byte(`"rating"`)) {
		t.Errorf("fields follow the mask's order, not the API's:\n%s", a)
	}
}

func TestAnswerNewErrors(t *testing.T) {
	good := string(NewRequestBody(ucla, "5000", 5))
	circle := func(lat, lng, radius string) string {
		return `{"locationRestriction":{"circle":{"center":{"latitude":` + lat + `,"longitude":` + lng + `},"radius":` + radius + `}}}`
	}
	cases := []struct {
		what, body, key, mask string
		code                  int
		status, message       string // message: a part of it
	}{
		{"denied key", good, KeyDenied, "*", 403, StatusPermissionDenied, "are blocked"},
		{"over limit", good, KeyOverLimit, "*", 429, StatusResourceExhausted, "Quota exceeded"},
		{"no field mask", good, "", "", 400, StatusInvalidArgument, "FieldMask is a required parameter."},
		{"blank field mask", good, "", " , ", 400, StatusInvalidArgument, "FieldMask is a required parameter."},
		{"unknown field", good, "", "places.bogus", 400, StatusInvalidArgument, "Cannot find matching fields for path 'places.bogus'"},
		{"no places prefix", good, "", "displayName", 400, StatusInvalidArgument, "path 'displayName'"},
		{"below a scalar", good, "", "places.id.x", 400, StatusInvalidArgument, "path 'places.id.x'"},
		{"below a message", good, "", "places.displayName.bogus", 400, StatusInvalidArgument, "path 'places.displayName.bogus'"},
		{"the mask before the body", "{", "", "", 400, StatusInvalidArgument, "FieldMask is a required"},
		{"not JSON", "{", "", "*", 400, StatusInvalidArgument, "Invalid JSON payload received."},
		{"not an object", "[]", "", "*", 400, StatusInvalidArgument, "Invalid JSON payload received."},
		{"unknown name", `{"bogus":1}`, "", "*", 400, StatusInvalidArgument, `Unknown name "bogus": Cannot find field.`},
		{"unknown name deeper", `{"locationRestriction":{"circle":{"centre":{}}}}`, "", "*", 400, StatusInvalidArgument, `Unknown name "centre" at 'location_restriction.circle'`},
		{"empty body", "", "", "*", 400, StatusInvalidArgument, "location_restriction is required"},
		{"no circle", `{"locationRestriction":{}}`, "", "*", 400, StatusInvalidArgument, "circle is required"},
		{"no center", `{"locationRestriction":{"circle":{"radius":5}}}`, "", "*", 400, StatusInvalidArgument, "center is required"},
		{"no radius", `{"locationRestriction":{"circle":{"center":{"latitude":1,"longitude":1}}}}`, "", "*", 400, StatusInvalidArgument, "radius"},
		{"radius 0", circle("1", "1", "0"), "", "*", 400, StatusInvalidArgument, "radius"},
		{"radius -1", circle("1", "1", "-1"), "", "*", 400, StatusInvalidArgument, "radius"},
		{"radius 50000.5", circle("1", "1", "50000.5"), "", "*", 400, StatusInvalidArgument, "radius"},
		{"radius a word", circle("1", "1", `"far"`), "", "*", 400, StatusInvalidArgument, "TYPE_DOUBLE"},
		{"latitude 90.5", circle("90.5", "1", "10"), "", "*", 400, StatusInvalidArgument, "center"},
		{"longitude -181", circle("1", "-181", "10"), "", "*", 400, StatusInvalidArgument, "center"},
		{"maxResultCount 21", strings.Replace(good, `"maxResultCount":5`, `"maxResultCount":21`, 1), "", "*", 400, StatusInvalidArgument, "max_result_count"},
		{"maxResultCount -1", strings.Replace(good, `"maxResultCount":5`, `"maxResultCount":-1`, 1), "", "*", 400, StatusInvalidArgument, "max_result_count"},
		{"maxResultCount 2.5", strings.Replace(good, `"maxResultCount":5`, `"maxResultCount":2.5`, 1), "", "*", 400, StatusInvalidArgument, "TYPE_INT32"},
		{"bad rankPreference", `{"rankPreference":"NEAREST"}`, "", "*", 400, StatusInvalidArgument, "rank_preference"},
	}
	for _, c := range cases {
		code, got := AnswerNew([]byte(c.body), c.key, c.mask)
		d := decodeNew(t, got)
		if code != c.code || d.Error == nil || d.Error.Code != c.code || d.Error.Status != c.status || !strings.Contains(d.Error.Message, c.message) || d.Places != nil {
			t.Errorf("%s: HTTP %d\n%s\nwant %d %s with %q", c.what, code, got, c.code, c.status, c.message)
		}
	}
	// Google's layout of an error, byte for byte.
	_, got := AnswerNew([]byte(good), "", "")
	want := "{\n  \"error\": {\n    \"code\": 400,\n    \"message\": \"" + fieldMaskRequired + "\",\n    \"status\": \"INVALID_ARGUMENT\"\n  }\n}\n"
	if string(got) != want {
		t.Errorf("no field mask:\n%s\nwant\n%s", got, want)
	}
	// What proto JSON accepts is accepted: numbers as strings, proto (snake_case) names,
	// an absent maxResultCount (20), the fields the emulator ignores.
	for _, body := range []string{
		`{"max_result_count":"3","location_restriction":{"circle":{"center":{"latitude":"34.06893","longitude":-118.445127},"radius":"5000"}}}`,
		`{"locationRestriction":{"circle":{"center":{"latitude":34.06893,"longitude":-118.445127},"radius":5000}},"languageCode":"en","regionCode":"us","rankPreference":"DISTANCE"}`,
	} {
		if code, got := AnswerNew([]byte(body), "any-key", "places.id"); code != 200 || len(decodeNew(t, got).Places) == 0 {
			t.Errorf("%s: %d\n%s", body, code, got)
		}
	}
}

// The New API's places are the legacy answer's, in its order, at most maxResultCount of
// them (20 when absent), for any circle; none is {}.
func TestAnswerNewBoundsAndOrderFollowTheLegacyAnswer(t *testing.T) {
	const seed = 20270131
	rng := rand.New(rand.NewPCG(seed, 3))
	for i := range 60 {
		loc := fmt.Sprintf("%.6f,%.6f", rng.Float64()*170-85, rng.Float64()*360-180)
		radius := fmt.Sprint([]int{1, 300, 2000, 5000, 50000}[rng.IntN(5)])
		legacy := decode(t, Answer(loc, radius, ""))
		for _, n := range []int{0, 1, 2, 7, 19, 20} {
			body := NewRequestBody(loc, radius, n)
			if n == 0 {
				body = bytes.Replace(body, []byte(`"maxResultCount":0,`), nil, 1)
			}
			code, got := AnswerNew(body, "", "places.id")
			if code != 200 {
				t.Fatalf("seed %d query %d: %d %s", seed, i, code, got)
			}
			want := len(legacy.Results)
			if n > 0 {
				want = min(n, want)
			}
			if want == 0 {
				if string(got) != "{}\n" {
					t.Fatalf("seed %d query %d (%s, %s): nothing found is %q, want {}", seed, i, loc, radius, got)
				}
				continue
			}
			places := decodeNew(t, got).Places
			if len(places) != want {
				t.Fatalf("seed %d query %d (%s, %s, max %d): %d places, want %d", seed, i, loc, radius, n, len(places), want)
			}
			for j, p := range places {
				if p["id"] != legacy.Results[j]["place_id"] {
					t.Fatalf("seed %d query %d: place %d is %v, the legacy answer's is %v", seed, i, j, p["id"], legacy.Results[j]["place_id"])
				}
			}
		}
	}
}

// The New API's layout is Google's: two spaces, `"key": value`, one array element a line,
// '<' and '>' escaped, '&' and UTF-8 not; and it is not what Go's encoder writes. Some
// answers have blank lines (the herd must squeeze them).
func TestAnswerNewLayoutIsGooglesNewAPI(t *testing.T) {
	const seed = 20270201
	rng := rand.New(rand.NewPCG(seed, 4))
	legacyKey := regexp.MustCompile(`"[A-Za-z_]+" : `)
	met := map[string]int{}
	for i := range 100 {
		loc := fmt.Sprintf("%.6f,%.6f", rng.Float64()*170-85, rng.Float64()*360-180)
		_, body := AnswerNew(NewRequestBody(loc, fmt.Sprint(3000+rng.IntN(12000)), 20), "", "*")
		if !json.Valid(body) {
			t.Fatalf("seed %d, query %d: not JSON:\n%s", seed, i, body)
		}
		if !bytes.HasPrefix(body, []byte("{\n  \"places\": [\n    {\n      \"name\": \"places/")) || !bytes.HasSuffix(SqueezeNewlines(body), []byte("\n    }\n  ]\n}")) {
			t.Fatalf("seed %d, query %d: not the New API's layout:\n%s", seed, i, body)
		}
		if legacyKey.Match(body) || bytes.Contains(body, []byte(`\u0026`)) || bytes.Contains(body, []byte("[ ")) {
			t.Fatalf("seed %d, query %d: the legacy layout, or Go's escaping:\n%s", seed, i, body)
		}
		for _, line := range strings.Split(string(body), "\n") {
			if indent := len(line) - len(strings.TrimLeft(line, " ")); indent%2 != 0 {
				t.Fatalf("seed %d, query %d: indentation of %d in %q", seed, i, indent, line)
			}
		}
		var v any
		json.Unmarshal(body, &v)
		goIndented, _ := json.MarshalIndent(v, "", "  ")
		if bytes.Equal(bytes.TrimSpace(goIndented), bytes.TrimSpace(body)) {
			t.Fatalf("seed %d, query %d: the answer is what Go's encoder writes", seed, i)
		}
		for what, b := range map[string]string{`\u003c`: `\u003c`, `\u003e`: `\u003e`, "&": "&", "a blank line": "\n\n",
			"an escaped quote": `\"`, "é": "é", "priceLevel": `"priceLevel": "PRICE_LEVEL_`, "photos": `"photos": [`,
			"a type a line": "\"types\": [\n        \""} {
			if bytes.Contains(body, []byte(b)) {
				met[what]++
			}
		}
		if bytes.ContainsAny(body, "<>") {
			t.Fatalf("seed %d, query %d: an unescaped '<' or '>':\n%s", seed, i, body)
		}
	}
	for _, what := range []string{`\u003c`, `\u003e`, "&", "a blank line", "an escaped quote", "é", "priceLevel", "photos", "a type a line"} {
		if met[what] < 5 {
			t.Errorf("seed %d: only %d of 100 answers have %s", seed, met[what], what)
		}
	}
	// Doubles as Google writes them: %.15g, or %.17g when that does not read back.
	for f, want := range map[float64]string{4.2: "4.2", 34.0781319: "34.0781319", -122.08532419999999: "-122.08532419999999", 1e-5: "1e-05", -118.4368333: "-118.4368333"} {
		if got := googleDouble(f); got != want {
			t.Errorf("googleDouble(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestAnswerNewTypeFilters(t *testing.T) {
	with := func(extra string) []map[string]any {
		body := strings.TrimSuffix(string(NewRequestBody(ucla, "20000", 20)), "}") + "," + extra + "}"
		code, got := AnswerNew([]byte(body), "", "places.types,places.primaryType")
		if code != 200 {
			t.Fatalf("%s: %d %s", extra, code, got)
		}
		return decodeNew(t, got).Places
	}
	has := func(p map[string]any, typ string) bool {
		for _, x := range p["types"].([]any) {
			if x == typ {
				return true
			}
		}
		return false
	}
	cafes := with(`"includedTypes":["cafe"]`)
	if len(cafes) != 20 {
		t.Fatalf("%d cafes within 20 km", len(cafes))
	}
	for _, p := range cafes {
		if !has(p, "cafe") {
			t.Fatalf("includedTypes cafe gave %v", p)
		}
	}
	for _, p := range with(`"excludedTypes":["food"]`) {
		if has(p, "food") {
			t.Fatalf("excludedTypes food gave %v", p)
		}
	}
	for _, p := range with(`"includedPrimaryTypes":["park","bank"]`) {
		if p["primaryType"] != "park" && p["primaryType"] != "bank" {
			t.Fatalf("includedPrimaryTypes park, bank gave %v", p)
		}
	}
	for _, p := range with(`"includedTypes":["store"],"excludedPrimaryTypes":["pharmacy"]`) {
		if !has(p, "store") || p["primaryType"] == "pharmacy" {
			t.Fatalf("store but not a pharmacy gave %v", p)
		}
	}
}

func postNew(t *testing.T, url, body, key, mask string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+NewPath, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-Goog-Api-Key", key)
	}
	if mask != "" {
		req.Header.Set("X-Goog-FieldMask", mask)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func force(t *testing.T, url, status string) {
	t.Helper()
	resp, err := http.Post(url+"/emulator/status?status="+status, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// The endpoint serves AnswerNew; the control endpoint's failures apply to it in the New
// API's error form.
func TestEmulatorServesTheNewAPIAndItsForcedFailures(t *testing.T) {
	srv := httptest.NewServer((&Emulator{}).Handler())
	defer srv.Close()
	body := string(NewRequestBody(ucla, "8000", 4))
	for _, c := range []struct{ key, mask string }{{"", "*"}, {"k", "places.id"}, {KeyDenied, "*"}, {"", ""}} {
		code, got := postNew(t, srv.URL, body, c.key, c.mask)
		wantCode, want := AnswerNew([]byte(body), c.key, c.mask)
		if code != wantCode || !bytes.Equal(got, want) {
			t.Errorf("key %q mask %q: HTTP %d\n%s\nwant %d\n%s", c.key, c.mask, code, got, wantCode, want)
		}
	}
	// The key and the mask may come as URL parameters too.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+NewPath+"?key="+KeyOverLimit+"&fields=places.id", strings.NewReader(body))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 429 {
		t.Errorf("key as a parameter: %v %v", resp.StatusCode, err)
	}
	if resp, err := http.Get(srv.URL + NewPath); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET of the New API: %v %v", resp.StatusCode, err)
	}
	for _, c := range []struct {
		forced string
		code   int
		status string
	}{
		{"OVER_QUERY_LIMIT", 429, StatusResourceExhausted},
		{"REQUEST_DENIED", 403, StatusPermissionDenied},
		{"INVALID_REQUEST", 400, StatusInvalidArgument},
		{"UNKNOWN_ERROR", 500, StatusInternal},
		{"UNAVAILABLE", 503, StatusUnavailable},
		{"RESOURCE_EXHAUSTED", 429, StatusResourceExhausted},
		{"SOMETHING_ELSE", 500, "SOMETHING_ELSE"},
	} {
		force(t, srv.URL, c.forced)
		code, got := postNew(t, srv.URL, body, "", "*")
		d := decodeNew(t, got)
		if code != c.code || d.Error == nil || d.Error.Code != c.code || d.Error.Status != c.status ||
			d.Error.Message != "forced by the emulator's control endpoint" {
			t.Errorf("forced %s: HTTP %d\n%s", c.forced, code, got)
		}
		if !bytes.HasPrefix(got, []byte("{\n  \"error\": {\n    \"code\": ")) {
			t.Errorf("forced %s: not Google's layout:\n%s", c.forced, got)
		}
	}
	force(t, srv.URL, "ZERO_RESULTS")
	if code, got := postNew(t, srv.URL, body, "", "*"); code != 200 || string(got) != "{}\n" {
		t.Errorf("forced ZERO_RESULTS: %d %q", code, got)
	}
	force(t, srv.URL, "HTTP500")
	if code, got := postNew(t, srv.URL, body, "", "*"); code != 500 || json.Valid(got) {
		t.Errorf("forced HTTP500: %d %q", code, got)
	}
	force(t, srv.URL, "")
	if code, got := postNew(t, srv.URL, body, "", "*"); code != 200 || len(decodeNew(t, got).Places) != 4 {
		t.Errorf("restored: %d %s", code, got)
	}
}
