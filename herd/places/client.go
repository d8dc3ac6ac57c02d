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
	"time"
)

// Source answers a Nearby Search: location is "lat,lng", radius in metres; it returns the
// JSON body as the upstream sent it.
type Source interface {
	Nearby(ctx context.Context, location, radiusMetres string) ([]byte, error)
}

// GoogleURL is the real legacy Nearby Search endpoint.
const GoogleURL = "https://maps.googleapis.com" + NearbyPath

// HTTP is a Source over HTTP: Google's endpoint or the emulator's.
type HTTP struct {
	URL    string // the full endpoint URL, e.g. http://127.0.0.1:9000/maps/api/place/nearbysearch/json
	Key    string // never logged or echoed: errors name the host (for the server's log), never the query
	Client *http.Client
	// MaxBody caps the answer read, so a misbehaving upstream cannot exhaust memory.
	MaxBody int64
}

// NewHTTP returns a client for the endpoint with a per-request timeout.
func NewHTTP(endpoint, key string, timeout time.Duration) (*HTTP, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("places URL %q: must be an absolute http(s) URL", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = NearbyPath
	}
	return &HTTP{URL: u.String(), Key: key, Client: &http.Client{Timeout: timeout}, MaxBody: 4 << 20}, nil
}

// Nearby implements Source.
func (h *HTTP) Nearby(ctx context.Context, location, radiusMetres string) ([]byte, error) {
	u, _ := url.Parse(h.URL)
	q := u.Query()
	q.Set("location", location)
	q.Set("radius", radiusMetres)
	q.Set("key", h.Key)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &Error{"places request failed", fmt.Errorf("places request to %s: %w", u.Host, redact(err))}
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		public := "places upstream unreachable"
		var ne interface{ Timeout() bool }
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			public = "places request timed out"
		}
		return nil, &Error{public, fmt.Errorf("places request to %s: %w", u.Host, redact(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.MaxBody+1))
	if err != nil {
		return nil, &Error{"places answer could not be read", fmt.Errorf("places answer from %s: %w", u.Host, redact(err))}
	}
	if int64(len(body)) > h.MaxBody {
		return nil, &Error{fmt.Sprintf("places answer is over %d bytes", h.MaxBody), fmt.Errorf("places answer from %s is over %d bytes", u.Host, h.MaxBody)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &Error{fmt.Sprintf("places upstream answered HTTP %d", resp.StatusCode), fmt.Errorf("places answer from %s: HTTP %d", u.Host, resp.StatusCode)}
	}
	return body, nil
}

// Error is an upstream failure. Error() names the upstream host, for the server's log;
// Public says what went wrong without naming it, for the client's error_message.
type Error struct {
	Public string
	Err    error
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

// Trim cuts the answer's "results" to at most bound entries, keeping every other byte as
// the upstream sent it (fields, their order, each kept result object), then applies
// PROTOCOL.md's newline rules. It fails when body is not a JSON object with a "results"
// array.
func Trim(body []byte, bound int) ([]byte, error) {
	cut, err := trimResults(body, bound)
	if err != nil {
		return nil, err
	}
	return SqueezeNewlines(cut), nil
}

func trimResults(body []byte, bound int) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("places answer is not a JSON object")
	}
	var out []byte
	found := false
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("places answer: %w", err)
		}
		key, _ := keyTok.(string)
		if key != "results" || found {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("places answer: %w", err)
			}
			continue
		}
		found = true
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil, errors.New(`places answer: "results" is not an array`)
		}
		keepEnd, lastEnd := int64(-1), int64(-1)
		for n := 0; dec.More(); n++ {
			var item json.RawMessage
			if err := dec.Decode(&item); err != nil {
				return nil, fmt.Errorf("places answer: %w", err)
			}
			lastEnd = dec.InputOffset()
			if n+1 == bound {
				keepEnd = lastEnd
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, fmt.Errorf("places answer: %w", err)
		}
		out = body
		if keepEnd >= 0 && keepEnd < lastEnd {
			// Keep results up to the bound-th, then what followed the last one (the
			// white space before ']').
			out = append(append([]byte{}, body[:keepEnd]...), body[lastEnd:]...)
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("places answer: %w", err)
	}
	if !found {
		return nil, errors.New(`places answer has no "results"`)
	}
	return out, nil
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
