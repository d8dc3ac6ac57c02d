package places

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// An upstream failure tells the client what went wrong but never where the upstream is;
// the full error (for the server's log) still names the host.
func TestPublicMessagesNameNoUpstreamHost(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer failing.Close()
	block := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer slow.Close()
	defer close(block)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cases := []struct{ url, public string }{
		{failing.URL, "places upstream answered HTTP 502"},
		{slow.URL, "places request timed out"},
		{closed, "places upstream unreachable"},
	}
	for _, c := range cases {
		h, _ := NewHTTP(c.url, "k", 100*time.Millisecond)
		_, err := h.Nearby(context.Background(), "1,1", "10")
		if err == nil {
			t.Fatalf("%s: no error", c.url)
		}
		host := strings.TrimPrefix(c.url, "http://")
		if got := PublicMessage(err); got != c.public || strings.Contains(got, host) || strings.Contains(got, "127.0.0.1") {
			t.Errorf("%s: public message %q, want %q", c.url, got, c.public)
		}
		if !strings.Contains(err.Error(), host) {
			t.Errorf("%s: the logged error %q does not name the upstream", c.url, err)
		}
	}
}
