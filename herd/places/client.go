package places

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Source answers a Nearby Search: location is "lat,lng", radius in metres; it returns the
// JSON body as the upstream sent it.
type Source interface {
	Nearby(ctx context.Context, location, radiusMetres string) ([]byte, error)
}

// BoundedSource is a Source that can ask its upstream for at most bound places (the New
// API's maxResultCount). Reply uses it when a Source has it.
type BoundedSource interface {
	Source
	NearbyBounded(ctx context.Context, location, radiusMetres string, bound int) ([]byte, error)
}

// APISource is a Source that says which API's JSON it answers with (APILegacy or APINew).
// A Source without the method answers with the legacy API's.
type APISource interface {
	Source
	PlacesAPI() string
}

// SourceAPI is the API whose JSON src answers with.
func SourceAPI(src Source) string {
	if a, ok := src.(APISource); ok && a.PlacesAPI() == APINew {
		return APINew
	}
	return APILegacy
}

// ParseAPI checks an API name: "legacy" (or "") or "new".
func ParseAPI(s string) (string, error) {
	switch s {
	case "", APILegacy:
		return APILegacy, nil
	case APINew:
		return APINew, nil
	}
	return "", fmt.Errorf("places API %q: want %s or %s", s, APILegacy, APINew)
}

// GoogleURL is the real legacy Nearby Search endpoint.
const GoogleURL = "https://maps.googleapis.com" + NearbyPath

// HTTP is a Source over HTTP: Google's endpoint or the emulator's, of either API.
type HTTP struct {
	// URL is the full endpoint URL, e.g. http://127.0.0.1:9000/maps/api/place/nearbysearch/json
	// or https://places.googleapis.com/v1/places:searchNearby.
	URL string
	API string // APILegacy ("" too): GET URL?location=..&radius=..&key=..; APINew: POST URL
	Key string // never logged or echoed: errors name the host (for the server's log), never the query
	// FieldMask is the New API's X-Goog-FieldMask (default DefaultFieldMask, every field).
	FieldMask string
	Client    *http.Client
	// MaxBody caps the answer read, so a misbehaving upstream cannot exhaust memory.
	MaxBody int64
}

// NewHTTP returns a client of the legacy API's endpoint with a per-request timeout.
func NewHTTP(endpoint, key string, timeout time.Duration) (*HTTP, error) {
	return NewHTTPAPI(APILegacy, endpoint, key, timeout)
}

// NewHTTPAPI returns a client of api (APILegacy or APINew) with a per-request timeout.
// For the legacy API endpoint is the Nearby Search URL (NearbyPath when it has no path);
// for the New API it is the base URL, to whose path NewPath is appended (unless the path
// already ends with ":searchNearby"): http://127.0.0.1:9000 is
// http://127.0.0.1:9000/v1/places:searchNearby.
func NewHTTPAPI(api, endpoint, key string, timeout time.Duration) (*HTTP, error) {
	api, err := ParseAPI(api)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("places URL %q: must be an absolute http(s) URL", endpoint)
	}
	switch {
	case api == APINew && !strings.HasSuffix(u.Path, ":searchNearby"):
		u.Path = strings.TrimSuffix(u.Path, "/") + NewPath
		u.RawPath = ""
	case api == APILegacy && (u.Path == "" || u.Path == "/"):
		u.Path = NearbyPath
	}
	return &HTTP{URL: u.String(), API: api, Key: key, FieldMask: DefaultFieldMask,
		Client: &http.Client{Timeout: timeout}, MaxBody: 4 << 20}, nil
}

// PlacesAPI implements APISource.
func (h *HTTP) PlacesAPI() string {
	if h.API == APINew {
		return APINew
	}
	return APILegacy
}

// Nearby implements Source. With the New API it asks for the most places the API gives
// (20); NearbyBounded asks for fewer.
func (h *HTTP) Nearby(ctx context.Context, location, radiusMetres string) ([]byte, error) {
	return h.NearbyBounded(ctx, location, radiusMetres, pageSize)
}

// NearbyBounded implements BoundedSource: the legacy API has no bound (it answers up to
// 20); the New API's maxResultCount is bound (clamped to 1..20). A New API answer that is
// an HTTP error with an error object in the API's shape is returned as the answer (as a
// legacy answer with an error status is): it says what the upstream said.
func (h *HTTP) NearbyBounded(ctx context.Context, location, radiusMetres string, bound int) ([]byte, error) {
	if h.API == APINew {
		return h.searchNearby(ctx, location, radiusMetres, min(max(bound, 1), pageSize))
	}
	u, _ := url.Parse(h.URL)
	q := u.Query()
	q.Set("location", location)
	q.Set("radius", radiusMetres)
	q.Set("key", h.Key)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{"places request failed", fmt.Errorf("places request to %s: %w", u.Host, redact(err)), ""}
	}
	status, body, err := h.do(req, u.Host)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, &Error{fmt.Sprintf("places upstream answered HTTP %d", status), fmt.Errorf("places answer from %s: HTTP %d", u.Host, status), ""}
	}
	return body, nil
}

// searchNearby is the New API's request.
func (h *HTTP) searchNearby(ctx context.Context, location, radiusMetres string, maxResults int) ([]byte, error) {
	u, _ := url.Parse(h.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(NewRequestBody(location, radiusMetres, maxResults)))
	if err != nil {
		return nil, &Error{"places request failed", fmt.Errorf("places request to %s: %w", u.Host, redact(err)), ""}
	}
	mask := h.FieldMask
	if mask == "" {
		mask = DefaultFieldMask
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Goog-Api-Key", h.Key)
	req.Header.Set("X-Goog-FieldMask", mask)
	status, body, err := h.do(req, u.Host)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK && !isNewError(body) {
		return nil, &Error{fmt.Sprintf("places upstream answered HTTP %d", status), fmt.Errorf("places answer from %s: HTTP %d", u.Host, status), ""}
	}
	return body, nil
}

// do sends req and reads the answer's status and body (at most MaxBody bytes).
func (h *HTTP) do(req *http.Request, host string) (int, []byte, error) {
	resp, err := h.Client.Do(req)
	if err != nil {
		public, status := "places upstream unreachable", StatusUnavailable
		var ne interface{ Timeout() bool }
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			public, status = "places request timed out", StatusDeadlineExceeded
		}
		return 0, nil, &Error{public, fmt.Errorf("places request to %s: %w", host, redact(err)), status}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.MaxBody+1))
	if err != nil {
		return 0, nil, &Error{"places answer could not be read", fmt.Errorf("places answer from %s: %w", host, redact(err)), ""}
	}
	if int64(len(body)) > h.MaxBody {
		return 0, nil, &Error{fmt.Sprintf("places answer is over %d bytes", h.MaxBody), fmt.Errorf("places answer from %s is over %d bytes", host, h.MaxBody), ""}
	}
	return resp.StatusCode, body, nil
}

// isNewError reports whether body is an error answer in the New API's shape: a JSON
// object with an "error" object.
func isNewError(body []byte) bool {
	var v struct{ Error json.RawMessage }
	return json.Unmarshal(body, &v) == nil && bytes.HasPrefix(bytes.TrimSpace(v.Error), []byte("{"))
}

// Error is an upstream failure. Error() names the upstream host, for the server's log;
// Public says what went wrong without naming it, for the client's error_message.
type Error struct {
	Public string
	Err    error
	// Status is the New API's status for the failure (UNAVAILABLE, DEADLINE_EXCEEDED);
	// "" is UNKNOWN.
	Status string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// PublicMessage is what a client may be told of an error from a Source or from Trim:
// an HTTP source's error says what went wrong but names no upstream host or address (the
// server logs err itself); Trim's errors, about the answer's shape, are told as they are.
func PublicMessage(err error) string {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Public
	case errors.Is(err, context.DeadlineExceeded):
		return "places request timed out"
	}
	return err.Error()
}

// redact drops the URL (which carries the key) from net/http's errors.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Reply is the JSON of a WHATSAT reply from src: its answer for the circle, cut to at
// most bound places and with docs/PROTOCOL.md's newline rules applied (TrimAPI). When src
// fails, or its answer is not one of its API's, Reply returns that error (for the server's
// log; it names the upstream host) with a JSON error object in the shape of src's API,
// which tells what went wrong without naming the host: the legacy API's
// {"error_message", "html_attributions", "results": [], "status": "UNKNOWN_ERROR"}, or
// the New API's {"error": {"code", "message", "status"}} (504 DEADLINE_EXCEEDED for a
// timeout, 503 UNAVAILABLE for an unreachable upstream, 500 UNKNOWN otherwise). A
// BoundedSource is asked for at most bound places.
func Reply(ctx context.Context, src Source, location, radiusMetres string, bound int) ([]byte, error) {
	api := SourceAPI(src)
	var body []byte
	var err error
	if b, ok := src.(BoundedSource); ok {
		body, err = b.NearbyBounded(ctx, location, radiusMetres, bound)
	} else {
		body, err = src.Nearby(ctx, location, radiusMetres)
	}
	if err == nil {
		var out []byte
		if out, err = TrimAPI(api, body, bound); err == nil {
			return out, nil
		}
	}
	return SqueezeNewlines(FailureJSON(api, err)), err
}

// FailureJSON is the herd's own answer in api's shape when its upstream failed with err.
func FailureJSON(api string, err error) []byte {
	if api != APINew {
		return ErrorJSON(StatusUnknownError, PublicMessage(err))
	}
	status := StatusUnknown
	var e *Error
	switch {
	case errors.As(err, &e) && e.Status != "":
		status = e.Status
	case errors.Is(err, context.DeadlineExceeded):
		status = StatusDeadlineExceeded
	}
	return ErrorJSONNew(rpcHTTP[status], status, PublicMessage(err))
}

// Trim cuts an answer's places to at most bound entries: "results" in a legacy answer,
// "places" in a New API one. It keeps every other byte as the upstream sent it (fields,
// their order, each kept place's object), then applies docs/PROTOCOL.md's newline rules. It
// takes either API's answer: a JSON object with a "results" or a "places" array, or one
// with neither that is empty (the New API's answer when nothing is found) or holds an
// "error" object (the New API's errors), which are kept whole; anything else fails.
// TrimAPI takes one API's answers only.
func Trim(body []byte, bound int) ([]byte, error) {
	return trimAs(body, bound, []string{"results", "places"})
}

// TrimAPI is Trim for the answers of one API: for APILegacy an object with a "results"
// array, for APINew one with a "places" array, an empty one, or an error object.
func TrimAPI(api string, body []byte, bound int) ([]byte, error) {
	if api == APINew {
		return trimAs(body, bound, []string{"places"})
	}
	return trimAs(body, bound, []string{"results"})
}

func trimAs(body []byte, bound int, names []string) ([]byte, error) {
	cut, found, keys, errObj, err := cutArray(body, names, bound)
	if err != nil {
		return nil, err
	}
	newOK := slices.Contains(names, "places") && (len(keys) == 0 || errObj)
	if found == "" && !newOK {
		return nil, fmt.Errorf(`places answer has no "%s"`, strings.Join(names, `" or "`))
	}
	return SqueezeNewlines(cut), nil
}

// cutArray cuts the first member of the JSON object body named one of names, an array,
// to at most bound elements (all when bound <= 0), keeping every other byte. It reports
// which member it cut ("" for none), the object's keys, and whether it has an "error"
// member that is an object.
func cutArray(body []byte, names []string, bound int) (out []byte, found string, keys []string, errObj bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, "", nil, false, errors.New("places answer is not a JSON object")
	}
	out = body
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return nil, "", nil, false, fmt.Errorf("places answer: %w", err)
		}
		key, _ := keyTok.(string)
		keys = append(keys, key)
		if !slices.Contains(names, key) || found != "" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, "", nil, false, fmt.Errorf("places answer: %w", err)
			}
			if key == "error" && bytes.HasPrefix(skip, []byte("{")) {
				errObj = true
			}
			continue
		}
		found = key
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil, "", nil, false, fmt.Errorf("places answer: %q is not an array", key)
		}
		keepEnd, lastEnd := int64(-1), int64(-1)
		for n := 0; dec.More(); n++ {
			var item json.RawMessage
			if err := dec.Decode(&item); err != nil {
				return nil, "", nil, false, fmt.Errorf("places answer: %w", err)
			}
			lastEnd = dec.InputOffset()
			if n+1 == bound {
				keepEnd = lastEnd
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, "", nil, false, fmt.Errorf("places answer: %w", err)
		}
		if keepEnd >= 0 && keepEnd < lastEnd {
			// Keep the places up to the bound-th, then what followed the last one (the
			// white space before ']').
			out = append(append([]byte{}, body[:keepEnd]...), body[lastEnd:]...)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, "", nil, false, fmt.Errorf("places answer: %w", err)
	}
	return out, found, keys, errObj, nil
}

// SqueezeNewlines turns every run of two or more '\n' into one and drops trailing '\n's.
func SqueezeNewlines(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\n' && len(out) > 0 && out[len(out)-1] == '\n' {
			continue
		}
		out = append(out, b[i])
	}
	return bytes.TrimRight(out, "\n")
}
