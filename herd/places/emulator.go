package places

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Statuses of the real API that the emulator answers with.
const (
	StatusOK             = "OK"
	StatusZeroResults    = "ZERO_RESULTS"
	StatusInvalidRequest = "INVALID_REQUEST"
	StatusRequestDenied  = "REQUEST_DENIED"
	StatusOverQueryLimit = "OVER_QUERY_LIMIT"
	StatusUnknownError   = "UNKNOWN_ERROR"
)

// Keys the emulator treats specially, so a test can get the real API's refusals.
const (
	KeyDenied    = "emulator-denied"     // REQUEST_DENIED
	KeyOverLimit = "emulator-over-limit" // OVER_QUERY_LIMIT
)

// NearbyPath is the legacy Nearby Search endpoint.
const NearbyPath = "/maps/api/place/nearbysearch/json"

// errorResponse is the shape of ErrorJSON's answers.
type errorResponse struct {
	ErrorMessage     string   `json:"error_message,omitempty"`
	HTMLAttributions []string `json:"html_attributions"`
	Results          []string `json:"results"`
	Status           string   `json:"status"`
}

// ErrorJSON is an answer in the API's shape for a failure of ours or of the upstream
// (the herd's own answer when the upstream fails). It is formatted by Go's encoder
// ("key": value), unlike the emulator's answers, which are formatted as Google's.
func ErrorJSON(status, message string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "   ")
	r := errorResponse{ErrorMessage: message, HTMLAttributions: []string{}, Results: []string{}, Status: status}
	if err := enc.Encode(r); err != nil {
		panic(err) // only strings: cannot fail
	}
	return buf.Bytes()
}

// The emulator formats its answers as Google's legacy JSON API does, not as Go's encoder:
// `"key" : value`, three spaces of indentation, short string arrays on one line
// (`[ "cafe", "food" ]`), empty ones as `[]`, keys in alphabetical order, '&', '<', '>',
// '/' and non-ASCII letters written as they are, and numbers as the data has them. And,
// deterministically from the data, some answers have blank lines between results or
// before the results' ']', so that a herd's newline squeezing is exercised. A herd that
// re-encodes the JSON, or does not squeeze its newlines, answers other bytes.

// gObject is a JSON object, its members in order.
type gObject []gMember

type gMember struct {
	key string
	val any // gObject, gArray, string, gEscaped, int, float64 or bool
}

// gArray is a JSON array; inline ones are written on one line. gaps[i] puts a blank line
// after element i (after its comma, or before the ']' for the last one).
type gArray struct {
	items  []any
	inline bool
	gaps   []bool
}

// gEscaped is a string already escaped for JSON, written between quotes as it is.
type gEscaped string

// gStyle is how one API's JSON is laid out.
type gStyle struct {
	indent string // one level of indentation
	colon  string // between a key and its value
	inline bool   // gArrays marked inline are written on one line
	// escapeAngles writes '<' and '>' as \u003c and \u003e (the New API does; the
	// legacy one does not in names).
	escapeAngles bool
	double       func(float64) string
}

// legacyStyle is the legacy API's layout: `"key" : value`, three spaces, short arrays on
// one line, numbers as the data has them.
var legacyStyle = gStyle{indent: "   ", colon: " : ", inline: true,
	double: func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }}

type gWriter struct {
	bytes.Buffer
	style gStyle
}

func (w *gWriter) indent(n int) {
	for range n {
		w.WriteString(w.style.indent)
	}
}

func (w *gWriter) value(v any, depth int) {
	switch v := v.(type) {
	case gObject:
		if len(v) == 0 {
			w.WriteString("{}")
			return
		}
		w.WriteString("{\n")
		for i, m := range v {
			w.indent(depth + 1)
			w.str(m.key)
			w.WriteString(w.style.colon)
			w.value(m.val, depth+1)
			if i < len(v)-1 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
		}
		w.indent(depth)
		w.WriteByte('}')
	case gArray:
		switch {
		case len(v.items) == 0:
			w.WriteString("[]")
		case v.inline && w.style.inline:
			w.WriteString("[ ")
			for i, it := range v.items {
				if i > 0 {
					w.WriteString(", ")
				}
				w.value(it, depth+1)
			}
			w.WriteString(" ]")
		default:
			w.WriteString("[\n")
			for i, it := range v.items {
				w.indent(depth + 1)
				w.value(it, depth+1)
				if i < len(v.items)-1 {
					w.WriteByte(',')
				}
				w.WriteByte('\n')
				if i < len(v.gaps) && v.gaps[i] {
					w.WriteByte('\n')
				}
			}
			w.indent(depth)
			w.WriteByte(']')
		}
	case string:
		w.str(v)
	case gEscaped:
		w.WriteByte('"')
		w.WriteString(string(v))
		w.WriteByte('"')
	case int:
		w.WriteString(strconv.Itoa(v))
	case float64:
		w.WriteString(w.style.double(v))
	case bool:
		w.WriteString(strconv.FormatBool(v))
	default:
		panic(fmt.Sprintf("places emulator: cannot write %T", v))
	}
}

// str writes s as a JSON string escaping only what JSON requires: '"', '\\' and control
// bytes (and, in the New API's style, '<' and '>'). Everything else (&, /, UTF-8) is
// written as it is.
func (w *gWriter) str(s string) {
	w.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			w.WriteByte('\\')
			w.WriteByte(c)
		case c == '\n':
			w.WriteString(`\n`)
		case c == '\t':
			w.WriteString(`\t`)
		case c == '\r':
			w.WriteString(`\r`)
		case c < 0x20, w.style.escapeAngles && (c == '<' || c == '>'):
			fmt.Fprintf(w, `\u%04x`, c)
		default:
			w.WriteByte(c)
		}
	}
	w.WriteByte('"')
}

// google formats a whole legacy answer: the object and a final newline.
func google(o gObject) []byte {
	return write(o, legacyStyle)
}

// write formats a whole answer in a style: the object and a final newline.
func write(o gObject, style gStyle) []byte {
	w := gWriter{style: style}
	w.value(o, 0)
	w.WriteByte('\n')
	return w.Bytes()
}

func strings_(ss []string) gArray {
	items := make([]any, len(ss))
	for i, s := range ss {
		items[i] = s
	}
	return gArray{items: items, inline: true}
}

// googleError is an answer without results, as the API formats it.
func googleError(status, message string) []byte {
	var o gObject
	if message != "" {
		o = append(o, gMember{"error_message", message})
	}
	return google(append(o,
		gMember{"html_attributions", gArray{}},
		gMember{"results", gArray{}},
		gMember{"status", status}))
}

func latLngObject(lat, lng float64) gObject {
	return gObject{{"lat", lat}, {"lng", lng}}
}

// resultObject is a place as a Nearby Search result, with the API's fields in its order.
func resultObject(p Place) gObject {
	const half = 0.0013
	r := gObject{
		{"business_status", "OPERATIONAL"},
		{"geometry", gObject{
			{"location", latLngObject(p.Lat, p.Lng)},
			{"viewport", gObject{
				{"northeast", latLngObject(math.Round((p.Lat+half)*1e7)/1e7, math.Round((p.Lng+half)*1e7)/1e7)},
				{"southwest", latLngObject(math.Round((p.Lat-half)*1e7)/1e7, math.Round((p.Lng-half)*1e7)/1e7)},
			}},
		}},
		{"icon", "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/" + p.Icon + "-71.png"},
		{"icon_background_color", p.Colour},
		{"icon_mask_base_uri", "https://maps.gstatic.com/mapfiles/place_api/icons/v2/" + p.Icon + "_pinlet"},
		{"name", p.Name},
	}
	if p.Open {
		r = append(r, gMember{"opening_hours", gObject{{"open_now", true}}})
	}
	if p.Photo != nil {
		// Google escapes the attribution's HTML as \u003c and \u003e.
		link := gEscaped(`\u003ca href=\"https://maps.google.com/maps/contrib/` + p.Photo.Contributor + `\"\u003eA Google User\u003c/a\u003e`)
		r = append(r, gMember{"photos", gArray{items: []any{gObject{
			{"height", p.Photo.Height},
			{"html_attributions", gArray{items: []any{link}}},
			{"photo_reference", p.Photo.Ref},
			{"width", p.Photo.Width},
		}}}})
	}
	r = append(r, gMember{"place_id", p.ID})
	if p.Price > 0 {
		r = append(r, gMember{"price_level", p.Price})
	}
	return append(r,
		gMember{"rating", p.Rating},
		gMember{"reference", p.ID},
		gMember{"scope", "GOOGLE"},
		gMember{"types", strings_(p.Types)},
		gMember{"user_ratings_total", p.Ratings},
		gMember{"vicinity", p.Vicinity},
	)
}

// pageToken is an opaque next-page token that depends only on the query's values (not
// on how the numbers were written), like the API's.
func pageToken(lat, lng, rad float64) string {
	h := splitmix(math.Float64bits(lat))
	h = splitmix(h ^ math.Float64bits(lng))
	h = splitmix(h ^ math.Float64bits(rad))
	return photoRef(h) + photoRef(^h)
}

// Answer is the emulator's answer to a Nearby Search with the given raw query parameters
// (location "lat,lng", radius in metres, key), exactly as the HTTP endpoint serves it.
func Answer(location, radius, key string) []byte {
	switch key {
	case KeyDenied:
		return googleError(StatusRequestDenied, "The provided API key is invalid.")
	case KeyOverLimit:
		return googleError(StatusOverQueryLimit, "You have exceeded your daily request quota for this API.")
	}
	lat, lng, ok := parseLatLng(location)
	if !ok {
		return googleError(StatusInvalidRequest, "Invalid request. Invalid 'location' parameter.")
	}
	rad, err := strconv.ParseFloat(radius, 64)
	if err != nil || !(rad > 0) || rad > 50000 {
		return googleError(StatusInvalidRequest, "Invalid request. Invalid 'radius' parameter.")
	}
	found, total := Nearby(lat, lng, rad)
	if len(found) == 0 {
		return googleError(StatusZeroResults, "")
	}
	results := gArray{items: make([]any, len(found)), gaps: make([]bool, len(found))}
	for i, p := range found {
		results.items[i] = resultObject(p)
		results.gaps[i] = p.Gap
	}
	o := gObject{{"html_attributions", gArray{}}}
	if total > pageSize {
		o = append(o, gMember{"next_page_token", pageToken(lat, lng, rad)})
	}
	return google(append(o, gMember{"results", results}, gMember{"status", StatusOK}))
}

func parseLatLng(s string) (float64, float64, bool) {
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, false
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lng, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil || math.Abs(lat) > 90 || math.Abs(lng) > 180 {
		return 0, 0, false
	}
	return lat, lng, true
}

// Emulator serves the legacy Nearby Search endpoint (GET NearbyPath) and the New API's
// (POST NewPath) from the data set, and keeps a log of the queries it answered (Queries,
// GET /emulator/queries?after=N). Its control endpoint (POST /emulator/status?status=S)
// makes every answer of both APIs fail with status S: "HTTP500" is an HTTP 500 with a
// text body; an API status is the legacy API's answer with that status, and the New
// API's error for it (see forcedNew); an empty status restores normal answers. The zero
// value is ready to use.
type Emulator struct {
	mu     sync.Mutex
	forced string
	log    queryLog
}

func (e *Emulator) forcedStatus() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.forced
}

// maxRequestBody bounds a New API request's body.
const maxRequestBody = 1 << 20

const emulatedFailure = "emulated upstream failure"

// Handler is the emulator's HTTP handler.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+NearbyPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		lat, lng, _ := strings.Cut(q.Get("location"), ",")
		rec := Query{API: APILegacy, Lat: parseLoose(lat), Lng: parseLoose(lng), Radius: parseLoose(q.Get("radius")),
			Raw: r.URL.RawQuery, Key: q.Get("key"), Status: http.StatusOK}
		switch forced := e.forcedStatus(); forced {
		case "":
			rec.Answer = Answer(q.Get("location"), q.Get("radius"), q.Get("key"))
		case "HTTP500":
			e.fail(w, rec)
			return
		default:
			rec.Answer = googleError(forced, "forced by the emulator's control endpoint")
		}
		e.record(rec)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Write(rec.Answer)
	})
	mux.HandleFunc("POST "+NewPath, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
		key, fieldMask := r.Header.Get("X-Goog-Api-Key"), r.Header.Get("X-Goog-FieldMask")
		if key == "" {
			key = r.URL.Query().Get("key")
		}
		if fieldMask == "" {
			fieldMask = r.URL.Query().Get("fields")
		}
		if fieldMask == "" {
			fieldMask = r.URL.Query().Get("$fields")
		}
		rec := Query{API: APINew, Raw: string(body), Key: key, FieldMask: fieldMask}
		var req NewRequest
		switch {
		case err != nil || len(body) > maxRequestBody:
			rec.Status = http.StatusBadRequest
			rec.Answer = newErrorAnswer(http.StatusBadRequest, StatusInvalidArgument, "The request body could not be read, or is over 1 MiB.")
		default:
			rec.Status, rec.Answer, req = answerNew(body, key, fieldMask)
		}
		if rec.Status != http.StatusOK {
			req = looseNewRequest(body)
		}
		rec.Lat, rec.Lng, rec.Radius, rec.MaxResultCount = req.Lat, req.Lng, req.Radius, req.MaxResultCount
		switch forced := e.forcedStatus(); forced {
		case "":
		case "HTTP500":
			e.fail(w, rec)
			return
		default:
			rec.Status, rec.Answer = forcedNew(forced)
		}
		e.record(rec)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(rec.Status)
		w.Write(rec.Answer)
	})
	mux.HandleFunc("POST /emulator/status", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.forced = r.URL.Query().Get("status")
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /emulator/queries", func(w http.ResponseWriter, r *http.Request) {
		after := 0
		if s := r.URL.Query().Get("after"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				http.Error(w, "after: want an integer, got "+strconv.Quote(s), http.StatusBadRequest)
				return
			}
			after = n
		}
		qs := e.Queries(after)
		if qs == nil {
			qs = []Query{}
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.Encode(qs)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux
}

// fail answers a query with the control endpoint's HTTP 500, and logs it.
func (e *Emulator) fail(w http.ResponseWriter, rec Query) {
	rec.Status = http.StatusInternalServerError
	rec.Answer = []byte(emulatedFailure + "\n") // what http.Error writes
	e.record(rec)
	http.Error(w, emulatedFailure, http.StatusInternalServerError)
}

// looseNewRequest is what the log keeps of a New API body that AnswerNew refused: what
// ParseNewRequest parsed, and where it stopped before a value, that value wherever it
// can be read (0 where it cannot).
func looseNewRequest(body []byte) NewRequest {
	req, msg := ParseNewRequest(body)
	if msg == "" {
		return req
	}
	var v struct {
		MaxResultCount      *float64
		LocationRestriction struct {
			Circle struct {
				Center struct{ Latitude, Longitude *float64 }
				Radius *float64
			}
		}
	}
	json.Unmarshal(body, &v) // as much as it can
	or := func(parsed float64, loose *float64) float64 {
		if parsed != 0 || loose == nil {
			return parsed
		}
		return *loose
	}
	c := v.LocationRestriction.Circle
	req.Lat, req.Lng, req.Radius = or(req.Lat, c.Center.Latitude), or(req.Lng, c.Center.Longitude), or(req.Radius, c.Radius)
	if n := or(float64(req.MaxResultCount), v.MaxResultCount); n == math.Trunc(n) && math.Abs(n) <= math.MaxInt32 {
		req.MaxResultCount = int(n)
	}
	return req
}

// Local answers from the data set in-process: the herd's offline default. API is the API
// whose answers it gives: APILegacy ("" too) or APINew (with the herd's field mask,
// DefaultFieldMask, and no key).
type Local struct {
	API string
}

// PlacesAPI implements APISource.
func (l Local) PlacesAPI() string {
	if l.API == APINew {
		return APINew
	}
	return APILegacy
}

// Nearby implements Source (at most 20 places with the New API).
func (l Local) Nearby(ctx context.Context, location, radiusMetres string) ([]byte, error) {
	return l.NearbyBounded(ctx, location, radiusMetres, pageSize)
}

// NearbyBounded implements BoundedSource: the New API's answer has at most bound places
// (clamped to 1..20); the legacy API has no bound.
func (l Local) NearbyBounded(_ context.Context, location, radiusMetres string, bound int) ([]byte, error) {
	if l.API == APINew {
		_, body := AnswerNew(NewRequestBody(location, radiusMetres, min(max(bound, 1), pageSize)), "", DefaultFieldMask)
		return body, nil
	}
	return Answer(location, radiusMetres, ""), nil
}
