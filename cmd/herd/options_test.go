package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
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
