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

type latLng struct {
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
}

type viewport struct {
	Northeast latLng `json:"northeast"`
	Southwest latLng `json:"southwest"`
}

type geometry struct {
	Location latLng   `json:"location"`
	Viewport viewport `json:"viewport"`
}

type openingHours struct {
	OpenNow bool `json:"open_now"`
}

// result has the fields of a legacy Nearby Search result, in the API's order.
type result struct {
	BusinessStatus   string        `json:"business_status"`
	Geometry         geometry      `json:"geometry"`
	Icon             string        `json:"icon"`
	Name             string        `json:"name"`
	OpeningHours     *openingHours `json:"opening_hours,omitempty"`
	PlaceID          string        `json:"place_id"`
	Rating           float64       `json:"rating"`
	Reference        string        `json:"reference"`
	Scope            string        `json:"scope"`
	Types            []string      `json:"types"`
	UserRatingsTotal int           `json:"user_ratings_total"`
	Vicinity         string        `json:"vicinity"`
}

type response struct {
	ErrorMessage     string   `json:"error_message,omitempty"`
	HTMLAttributions []string `json:"html_attributions"`
	NextPageToken    string   `json:"next_page_token,omitempty"`
	Results          []result `json:"results"`
	Status           string   `json:"status"`
}

// encode formats a response the way the API does: indented with three spaces.
func encode(r response) []byte {
	if r.HTMLAttributions == nil {
		r.HTMLAttributions = []string{}
	}
	if r.Results == nil {
		r.Results = []result{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "   ")
	if err := enc.Encode(r); err != nil {
		panic(err) // only plain values: cannot fail
	}
	return buf.Bytes()
}

// ErrorJSON is an answer in the API's shape for a failure of ours or of the upstream.
func ErrorJSON(status, message string) []byte {
	return encode(response{Status: status, ErrorMessage: message})
}

func toResult(p Place) result {
	const half = 0.0013
	r := result{
		BusinessStatus: "OPERATIONAL",
		Geometry: geometry{
			Location: latLng{p.Lat, p.Lng},
			Viewport: viewport{
				Northeast: latLng{math.Round((p.Lat+half)*1e7) / 1e7, math.Round((p.Lng+half)*1e7) / 1e7},
				Southwest: latLng{math.Round((p.Lat-half)*1e7) / 1e7, math.Round((p.Lng-half)*1e7) / 1e7},
			},
		},
		Icon:             "https://maps.gstatic.com/mapfiles/place_api/icons/v1/png_71/generic_business-71.png",
		Name:             p.Name,
		PlaceID:          p.ID,
		Rating:           p.Rating,
		Reference:        p.ID,
		Scope:            "GOOGLE",
		Types:            p.Types,
		UserRatingsTotal: p.Ratings,
		Vicinity:         p.Vicinity,
	}
	if p.Open {
		r.OpeningHours = &openingHours{OpenNow: true}
	}
	return r
}

// Answer is the emulator's answer to a Nearby Search with the given raw query parameters
// (location "lat,lng", radius in metres, key), exactly as the HTTP endpoint serves it.
func Answer(location, radius, key string) []byte {
	switch key {
	case KeyDenied:
		return ErrorJSON(StatusRequestDenied, "The provided API key is invalid.")
	case KeyOverLimit:
		return ErrorJSON(StatusOverQueryLimit, "You have exceeded your daily request quota for this API.")
	}
	lat, lng, ok := parseLatLng(location)
	if !ok {
		return ErrorJSON(StatusInvalidRequest, "Invalid request. Invalid 'location' parameter.")
	}
	rad, err := strconv.ParseFloat(radius, 64)
	if err != nil || !(rad > 0) || rad > 50000 {
		return ErrorJSON(StatusInvalidRequest, "Invalid request. Invalid 'radius' parameter.")
	}
	found, total := Nearby(lat, lng, rad)
	if len(found) == 0 {
		return encode(response{Status: StatusZeroResults})
	}
	resp := response{Status: StatusOK}
	for _, p := range found {
		resp.Results = append(resp.Results, toResult(p))
	}
	if total > pageSize {
		resp.NextPageToken = fmt.Sprintf("EmUpage2.%s.%s", location, radius)
	}
	return encode(resp)
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
			w.Write(ErrorJSON(forced, "forced by the emulator's control endpoint"))
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
