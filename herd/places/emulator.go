package places

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

const gIndent = "   "

type gWriter struct{ bytes.Buffer }

func (w *gWriter) indent(n int) {
	for range n {
		w.WriteString(gIndent)
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
			w.WriteString(" : ")
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
		case v.inline:
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
		w.WriteString(strconv.FormatFloat(v, 'f', -1, 64))
	case bool:
		w.WriteString(strconv.FormatBool(v))
	default:
		panic(fmt.Sprintf("places emulator: cannot write %T", v))
	}
}

// str writes s as a JSON string escaping only what JSON requires: '"', '\\' and control
// bytes. Everything else (&, <, >, /, UTF-8) is written as it is.
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
		case c < 0x20:
			fmt.Fprintf(w, `\u%04x`, c)
		default:
			w.WriteByte(c)
		}
	}
	w.WriteByte('"')
}

// google formats a whole answer: the object and a final newline.
func google(o gObject) []byte {
	var w gWriter
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

// Emulator serves the Nearby Search endpoint from the data set. Its control endpoint
// (POST /emulator/status?status=S) makes every answer fail with status S (an API status,
// or "HTTP500"), so a test can make the upstream err; an empty status restores it.
type Emulator struct {
	mu     sync.Mutex
	forced string
}

// Handler is the emulator's HTTP handler.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+NearbyPath, func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		forced := e.forced
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		switch forced {
		case "":
			q := r.URL.Query()
			w.Write(Answer(q.Get("location"), q.Get("radius"), q.Get("key")))
		case "HTTP500":
			http.Error(w, "emulated upstream failure", http.StatusInternalServerError)
		default:
			w.Write(googleError(forced, "forced by the emulator's control endpoint"))
		}
	})
	mux.HandleFunc("POST /emulator/status", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.forced = r.URL.Query().Get("status")
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	return mux
}

// Local answers from the data set in-process: the herd's offline default.
type Local struct{}

// Nearby implements Source.
func (Local) Nearby(_ context.Context, location, radiusMetres string) ([]byte, error) {
	return Answer(location, radiusMetres, ""), nil
}
