package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/herdchaos/herd/herd/topology"
)

// A herd that only its owner process can hold (local processes) is driven from other
// processes (herdctl in another terminal) through its owner: ServeBackend serves the
// owner's Backend over HTTP on loopback, and RemoteBackend is a Backend that calls it.

type remoteCall struct {
	Node    string `json:"node,omitempty"`
	Link    Link   `json:"link"`
	Name    string `json:"name,omitempty"`
	Toxic   Toxic  `json:"toxic"`
	Enabled bool   `json:"enabled,omitempty"`
	Status  string `json:"status,omitempty"`
}

type remoteAnswer struct {
	Error  string            `json:"error,omitempty"`
	Addr   string            `json:"addr,omitempty"`
	Logs   map[string][]byte `json:"logs,omitempty"`
	Config *topology.Config  `json:"config,omitempty"`
	Places string            `json:"places,omitempty"`
}

// ServeBackend serves b on ln until ctx is done.
func ServeBackend(ctx context.Context, ln net.Listener, b Backend) error {
	mux := http.NewServeMux()
	handle := func(path string, do func(ctx context.Context, c remoteCall) (remoteAnswer, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			var c remoteCall
			ans := remoteAnswer{}
			err := json.NewDecoder(r.Body).Decode(&c)
			if err == nil {
				ans, err = do(r.Context(), c)
			}
			if err != nil {
				ans.Error = err.Error()
			}
			json.NewEncoder(w).Encode(ans)
		})
	}
	handle("/config", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		cfg := b.Config()
		return remoteAnswer{Config: &cfg, Places: b.PlacesURL()}, nil
	})
	handle("/addr", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		a, err := b.ClientAddr(ctx, c.Node)
		return remoteAnswer{Addr: a}, err
	})
	handle("/metrics", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		src, ok := b.(MetricsSource)
		if !ok {
			return remoteAnswer{}, nil
		}
		a, err := src.MetricsURL(ctx, c.Node)
		return remoteAnswer{Addr: a}, err
	})
	handle("/toxic/add", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		return remoteAnswer{}, b.AddToxic(ctx, c.Link, c.Name, c.Toxic)
	})
	handle("/toxic/remove", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		return remoteAnswer{}, b.RemoveToxic(ctx, c.Link, c.Name)
	})
	handle("/link", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		return remoteAnswer{}, b.SetLinkEnabled(ctx, c.Link, c.Enabled)
	})
	handle("/places", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		return remoteAnswer{}, b.SetPlacesStatus(ctx, c.Status)
	})
	for op, do := range map[string]func(context.Context, string) error{
		"kill": b.Kill, "stop": b.Stop, "start": b.Start, "pause": b.Pause, "resume": b.Resume,
	} {
		handle("/node/"+op, func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
			return remoteAnswer{}, do(ctx, c.Node)
		})
	}
	handle("/logs", func(ctx context.Context, c remoteCall) (remoteAnswer, error) {
		logs, err := b.Logs(ctx, c.Node)
		return remoteAnswer{Logs: logs}, err
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// RemoteBackend drives a herd through its owner's ServeBackend. Close only lets go: the
// owner decides when the herd ends.
type RemoteBackend struct {
	url    string
	cfg    topology.Config
	places string
	client *http.Client
}

// DialBackend connects to a ServeBackend at url (http://127.0.0.1:PORT).
func DialBackend(ctx context.Context, url string) (*RemoteBackend, error) {
	r := &RemoteBackend{url: url, client: &http.Client{Timeout: 2 * time.Minute}}
	ans, err := r.call(ctx, "/config", remoteCall{})
	if err != nil {
		return nil, fmt.Errorf("the herd's owner at %s does not answer: %w", url, err)
	}
	r.cfg, r.places = *ans.Config, ans.Places
	return r, nil
}

func (r *RemoteBackend) call(ctx context.Context, path string, c remoteCall) (remoteAnswer, error) {
	body, _ := json.Marshal(c)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url+path, bytes.NewReader(body))
	if err != nil {
		return remoteAnswer{}, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return remoteAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return remoteAnswer{}, err
	}
	var ans remoteAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return remoteAnswer{}, fmt.Errorf("%s: %w", path, err)
	}
	if ans.Error != "" {
		return ans, fmt.Errorf("%s", ans.Error)
	}
	return ans, nil
}

func (r *RemoteBackend) do(ctx context.Context, path string, c remoteCall) error {
	_, err := r.call(ctx, path, c)
	return err
}

// Config implements Backend.
func (r *RemoteBackend) Config() topology.Config { return r.cfg }

// PlacesURL implements Backend.
func (r *RemoteBackend) PlacesURL() string { return r.places }

// ClientAddr implements Backend.
func (r *RemoteBackend) ClientAddr(ctx context.Context, node string) (string, error) {
	ans, err := r.call(ctx, "/addr", remoteCall{Node: node})
	return ans.Addr, err
}

// MetricsURL implements MetricsSource.
func (r *RemoteBackend) MetricsURL(ctx context.Context, node string) (string, error) {
	ans, err := r.call(ctx, "/metrics", remoteCall{Node: node})
	return ans.Addr, err
}

// AddToxic implements Backend.
func (r *RemoteBackend) AddToxic(ctx context.Context, l Link, name string, t Toxic) error {
	return r.do(ctx, "/toxic/add", remoteCall{Link: l, Name: name, Toxic: t})
}

// RemoveToxic implements Backend.
func (r *RemoteBackend) RemoveToxic(ctx context.Context, l Link, name string) error {
	return r.do(ctx, "/toxic/remove", remoteCall{Link: l, Name: name})
}

// SetLinkEnabled implements Backend.
func (r *RemoteBackend) SetLinkEnabled(ctx context.Context, l Link, enabled bool) error {
	return r.do(ctx, "/link", remoteCall{Link: l, Enabled: enabled})
}

// SetPlacesStatus implements Backend.
func (r *RemoteBackend) SetPlacesStatus(ctx context.Context, status string) error {
	return r.do(ctx, "/places", remoteCall{Status: status})
}

// Kill implements Backend.
func (r *RemoteBackend) Kill(ctx context.Context, n string) error {
	return r.do(ctx, "/node/kill", remoteCall{Node: n})
}

// Stop implements Backend.
func (r *RemoteBackend) Stop(ctx context.Context, n string) error {
	return r.do(ctx, "/node/stop", remoteCall{Node: n})
}

// Start implements Backend.
func (r *RemoteBackend) Start(ctx context.Context, n string) error {
	return r.do(ctx, "/node/start", remoteCall{Node: n})
}

// Pause implements Backend.
func (r *RemoteBackend) Pause(ctx context.Context, n string) error {
	return r.do(ctx, "/node/pause", remoteCall{Node: n})
}

// Resume implements Backend.
func (r *RemoteBackend) Resume(ctx context.Context, n string) error {
	return r.do(ctx, "/node/resume", remoteCall{Node: n})
}

// Logs implements Backend.
func (r *RemoteBackend) Logs(ctx context.Context, n string) (map[string][]byte, error) {
	ans, err := r.call(ctx, "/logs", remoteCall{Node: n})
	return ans.Logs, err
}

// Close implements Backend: it lets go of the herd; its owner keeps it.
func (r *RemoteBackend) Close(context.Context) error { return nil }
