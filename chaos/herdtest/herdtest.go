// Package herdtest starts a herd for a test and cleans up after it, for `go test` and for
// Ginkgo alike:
//
//	func TestACutServerCatchesUp(t *testing.T) {
//		h := herdtest.Start(t)                          // ours, in containers; removed at the end
//		u := h.Update(ctx, "Goloman", h.ClientID("phone"), "+34.068930-118.445127")
//		...
//	}
//
// In Ginkgo, pass GinkgoT() (start one herd in BeforeSuite, and end each spec with
// ResetAfter in AfterEach). A failed test's artifacts (the history, the faults, each
// server's logs) are saved in a folder the test's log names. Between tests that share a
// herd, Reset heals every fault and waits until the herd is whole again; ResetAfter also
// saves a failed one's artifacts.
package herdtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/backends"
)

// T is what herdtest needs of a test: *testing.T, *testing.B and Ginkgo's GinkgoT() all
// have it.
type T interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Cleanup(func())
}

// An Option configures Start.
type Option func(*options)

type options struct {
	backend   string
	herd      chaos.HerdSpec
	described string
	seed      uint64
	artifacts string
	timeout   time.Duration
}

// WithBackend runs the servers in containers ("containers", the default) or as local
// processes ("local", no Docker needed): see backends.Start.
func WithBackend(name string) Option { return func(o *options) { o.backend = name } }

// WithDescription tests the herd a description file describes (see the README's "Test
// your own herd") instead of ours.
func WithDescription(path string) Option { return func(o *options) { o.described = path } }

// WithHerd tests the herd spec describes instead of ours.
func WithHerd(spec chaos.HerdSpec) Option { return func(o *options) { o.herd = spec } }

// WithSeed fixes the seed of every random choice (default: from the clock, logged).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithArtifacts puts a failed test's artifacts under dir (default: the system's
// temporary folder).
func WithArtifacts(dir string) Option { return func(o *options) { o.artifacts = dir } }

// WithStartTimeout bounds the herd's start (default 5 minutes: a first run builds images).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Herd is a running herd with the checkers on it (the embedded chaos.Cluster: Inject,
// Heal, AwaitDelivery, CheckNotDelivered, AwaitConvergence, IAMAT, WHATSAT, ...), and the
// newest acknowledged update of each client the test sent through Update.
type Herd struct {
	*chaos.Cluster
	t         T
	artifacts string // where failed tests' artifacts go

	mu      sync.Mutex
	newest  map[string]chaos.Accepted
	clients int
}

// Start starts a herd for the test and registers its removal (and, when the test fails,
// the saving of its artifacts) with t.Cleanup. It fails the test if the herd cannot
// start; when Docker does not answer on the containers backend, the error says so
// (errors.Is(err, backends.ErrNoDocker) for StartE's callers).
func Start(t T, opts ...Option) *Herd {
	t.Helper()
	h, err := StartE(t, opts...)
	if err != nil {
		t.Fatalf("herdtest: starting the herd: %v", err)
	}
	return h
}

// StartE is Start returning the error instead of failing the test.
func StartE(t T, opts ...Option) (*Herd, error) {
	t.Helper()
	o := options{backend: "containers", seed: uint64(time.Now().UnixNano()), timeout: 5 * time.Minute, artifacts: os.TempDir()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.described != "" {
		spec, err := chaos.LoadHerdSpec(o.described)
		if err != nil {
			return nil, err
		}
		o.herd = spec
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	b, err := backends.Start(ctx, o.backend, backends.WithHerd(o.herd))
	if err != nil {
		return nil, err
	}
	c := chaos.NewCluster(b, o.seed)
	c.Claims = o.herd.Claims // a described herd is held only to the extensions it claims
	h := &Herd{Cluster: c, t: t, artifacts: o.artifacts, newest: map[string]chaos.Accepted{}}
	t.Logf("herdtest: a herd of %d servers is up (seed %d)", len(c.Nodes()), o.seed)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			h.saveArtifacts(ctx, t)
		}
		if err := b.Close(ctx); err != nil {
			t.Logf("herdtest: removing the herd: %v", err)
		}
	})
	return h, nil
}

// ClientID is a client id unique to this herd: prefix, the seed and a counter.
func (h *Herd) ClientID(prefix string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients++
	return fmt.Sprintf("%s-%x-%d", prefix, h.Seed&0xffffff, h.clients)
}

// Update sends an IAMAT for client at server, with a client time from the clock newer
// than any sent before, and fails the test unless the server acknowledges it. It keeps
// the update as the client's newest (Newest, AwaitConverged).
func (h *Herd) Update(ctx context.Context, server, client, location string) chaos.Accepted {
	h.t.Helper()
	u, err := h.Cluster.Update(ctx, server, client, location, chaos.ClientTime())
	if err != nil {
		h.t.Fatalf("herdtest: IAMAT for %s at %s: %v", client, server, err)
	}
	h.mu.Lock()
	h.newest[client] = u
	h.mu.Unlock()
	return u
}

// Newest is the newest update of client the test sent through Update.
func (h *Herd) Newest(client string) (chaos.Accepted, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u, ok := h.newest[client]
	return u, ok
}

// AwaitConverged waits until every running server answers each client the test updated
// with its newest acknowledged location, or within has passed.
func (h *Herd) AwaitConverged(ctx context.Context, within time.Duration) error {
	h.mu.Lock()
	want := map[string]string{}
	for client, u := range h.newest {
		want[client] = u.AT
	}
	h.mu.Unlock()
	return h.AwaitConvergence(ctx, want, within)
}

// Reset heals every fault and waits until an update at each server reaches every other:
// between tests that share one herd.
func (h *Herd) Reset(ctx context.Context) error {
	return h.HealAndSettle(ctx, h.ClientID("settle")+"-")
}

// ResetAfter ends one of several tests that share the herd: if t failed, it saves the
// herd's artifacts in a folder named after t (and logs where); then it Resets the herd,
// failing t if the herd does not settle. In Ginkgo, with the herd started in BeforeSuite:
//
//	var _ = AfterEach(func(ctx SpecContext) { h.ResetAfter(ctx, GinkgoT()) })
func (h *Herd) ResetAfter(ctx context.Context, t T) {
	t.Helper()
	if t.Failed() {
		h.saveArtifacts(ctx, t)
	}
	if err := h.Reset(ctx); err != nil {
		t.Fatalf("herdtest: the herd did not heal and settle after %q: %v", t.Name(), err)
	}
}

// saveArtifacts saves the history, the faults and each server's logs under the
// artifacts folder, in a folder named after t and the seed.
func (h *Herd) saveArtifacts(ctx context.Context, t T) {
	dir := filepath.Join(h.artifacts, "herdtest-"+chaos.FileName(t.Name())+"-"+fmt.Sprint(h.Seed))
	if err := chaos.SaveArtifacts(ctx, h.Cluster, dir); err != nil {
		t.Logf("herdtest: artifacts: %v", err)
	}
	t.Logf("herdtest: artifacts in %s (replay the random choices with herdtest.WithSeed(%d))", dir, h.Seed)
}
