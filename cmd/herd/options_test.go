package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/places"
)

// The log directory is the flag's, else the config's log_dir, else $HERD_LOG_DIR, else
// logs: a config's log_dir is not overridden by the flag's default.
func TestTheLogDirectoryComesFromTheFlagTheConfigTheEnvironmentInThatOrder(t *testing.T) {
	dir := t.TempDir()
	withDir := filepath.Join(dir, "with.yaml")
	os.WriteFile(withDir, []byte("log_dir: /from/config\nservers:\n  - {name: A, listen: '127.0.0.1:0', peers: {}}\n"), 0o644)
	without := filepath.Join(dir, "without.yaml")
	os.WriteFile(without, []byte("servers:\n  - {name: A, listen: '127.0.0.1:0', peers: {}}\n"), 0o644)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"A", "--config", withDir}, "/from/config"},
		{"/from/env", []string{"A", "--config", withDir}, "/from/config"},
		{"/from/env", []string{"A", "--config", withDir, "--log-dir", "/from/flag"}, "/from/flag"},
		{"/from/env", []string{"A", "--config", without}, "/from/env"},
		{"", []string{"A", "--config", without}, "logs"},
		{"", []string{"Goloman"}, "logs"},
	}
	for _, c := range cases {
		t.Setenv("HERD_LOG_DIR", c.env)
		opts, err := serveOptions(c.args, quiet, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if opts.LogDir != c.want {
			t.Errorf("HERD_LOG_DIR=%q %v: log dir %q, want %q", c.env, c.args, opts.LogDir, c.want)
		}
	}
}

func TestIdleTimeoutFlag(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts, err := serveOptions([]string{"Goloman", "--idle-timeout", "90s"}, quiet, io.Discard)
	if err != nil || opts.IdleTimeout != 90*time.Second {
		t.Fatalf("--idle-timeout 90s: %v %v", opts.IdleTimeout, err)
	}
}

// The Places API is the flag's, else the config's places_api, else legacy; the source
// follows it: the built-in data offline, the emulator or Google's endpoint over HTTP.
func TestThePlacesAPIComesFromTheFlagTheConfigTheDefaultInThatOrder(t *testing.T) {
	dir := t.TempDir()
	cfg := func(name, extra string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(extra+"servers:\n  - {name: A, listen: '127.0.0.1:0', peers: {}}\n"), 0o644)
		return p
	}
	newCfg, newWithURL, plain := cfg("new.yaml", "places_api: new\n"), cfg("url.yaml", "places_api: new\nplaces_url: http://127.0.0.1:9\n"), cfg("plain.yaml", "")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []struct {
		key  string
		args []string
		api  string
		url  string // the HTTP source's URL; "" for the built-in data
	}{
		{"", []string{"A", "--config", newCfg}, "new", ""},
		{"", []string{"A", "--config", newCfg, "--places-api", "legacy"}, "legacy", ""},
		{"", []string{"A", "--config", plain}, "legacy", ""},
		{"", []string{"A", "--config", plain, "--places-api", "new"}, "new", ""},
		{"", []string{"Goloman"}, "legacy", ""},
		{"", []string{"Goloman", "--places-api=new"}, "new", ""},
		{"", []string{"A", "--config", newWithURL}, "new", "http://127.0.0.1:9/v1/places:searchNearby"},
		{"", []string{"A", "--config", newWithURL, "--places-api", "legacy"}, "legacy", "http://127.0.0.1:9/maps/api/place/nearbysearch/json"},
		{"", []string{"Goloman", "--places-api", "new", "--places-url", "http://h:1"}, "new", "http://h:1/v1/places:searchNearby"},
		{"k", []string{"Goloman", "--places-api", "new"}, "new", "https://places.googleapis.com/v1/places:searchNearby"},
		{"k", []string{"Goloman"}, "legacy", places.GoogleURL},
	}
	for _, c := range cases {
		t.Setenv("HERD_PLACES_KEY", c.key)
		opts, err := serveOptions(c.args, quiet, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if opts.Config.PlacesAPI != c.api || places.SourceAPI(opts.Places) != c.api {
			t.Errorf("%v: config %q, source %q, want %s", c.args, opts.Config.PlacesAPI, places.SourceAPI(opts.Places), c.api)
		}
		switch src := opts.Places.(type) {
		case places.Local:
			if c.url != "" {
				t.Errorf("%v: the built-in data, want %s", c.args, c.url)
			}
		case *places.HTTP:
			if src.URL != c.url || src.API != c.api || src.Key != c.key {
				t.Errorf("%v: %s %s, want %s %s", c.args, src.API, src.URL, c.api, c.url)
			}
		default:
			t.Errorf("%v: source %T", c.args, src)
		}
	}
	t.Setenv("HERD_PLACES_KEY", "")
	for _, args := range [][]string{{"Goloman", "--places-api", "newer"}, {"A", "--config", cfg("bad.yaml", "places_api: v2\n")}} {
		if _, err := serveOptions(args, quiet, io.Discard); err == nil || !strings.Contains(err.Error(), "places") {
			t.Errorf("%v: %v", args, err)
		}
	}
}
