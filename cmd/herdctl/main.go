// Command herdctl reproduces outages by hand: bring a herd up under containers with every
// link through Toxiproxy, inject and heal faults, talk to the servers as a client, run
// scenario files and seeded random schedules, and see what happened.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/containers"
	"github.com/herdchaos/herd/herd/topology"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	quietTestcontainers()
	root := newRoot(os.Stdout, os.Stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ce checkFailed
		var ar alreadyReported
		if !errors.As(err, &ce) && !errors.As(err, &ar) {
			fmt.Fprintln(os.Stderr, "herdctl:", err)
		}
		os.Exit(1)
	}
}

// alreadyReported is a failure something else printed (a herdctl run again): exit 1.
type alreadyReported struct{}

func (alreadyReported) Error() string { return "failed" }

// checkFailed is a scenario whose checks failed: already reported, exit 1.
type checkFailed struct{ n int }

func (c checkFailed) Error() string { return fmt.Sprintf("%d checks failed", c.n) }

type app struct {
	out, errOut io.Writer
	statePath   string
	json        bool
	attached    *session // the herd that is up, once a command attached to it
}

func newRoot(out, errOut io.Writer) *cobra.Command {
	a := &app{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "herdctl",
		Short: "Reproduce herd outages: faults, clients, scenarios and timelines",
		Long: `herdctl brings up a proxy herd under containers with every peer link and every Places
link routed through its own Toxiproxy proxy, injects and heals faults, talks to the servers
as a client, and runs scenario files and seeded random schedules with checks. Every run
saves its history (history.json); 'herdctl check' judges a saved one again.

A herd brought up with 'herdctl up' keeps running; its state file lets later commands in
other terminals find it. Links are named A->B (one direction) or A<->B (both).

The protocol a herd must speak, and the extensions it may claim: docs/PROTOCOL.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVar(&a.statePath, "state", defaultStatePath(), "the state file of the herd brought up with 'herdctl up'")
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON (for scripts)")
	root.AddCommand(a.upCmd(), a.downCmd(), a.cleanCmd(), a.statusCmd(), a.healCmd(),
		a.iamatCmd(), a.whatsatCmd(), a.runCmd(), a.chaosCmd(), a.checkCmd(), a.scenariosCmd(), a.benchCmd(), a.testCmd())
	for _, c := range a.faultCmds() {
		root.AddCommand(c)
	}
	return root
}

func defaultStatePath() string {
	if p := os.Getenv("HERDCTL_STATE"); p != "" {
		return p
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "herdctl-state.json"
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "herd-chaos", "herdctl.json")
}

// stateFile is what 'herdctl up' records.
type stateFile struct {
	// Backend is "containers" (attach to the containers) or "local" (drive the herd
	// through its owner, the 'herdctl up' process still running, at Control).
	Backend string           `json:"backend"`
	Control string           `json:"control,omitempty"`
	Owner   int              `json:"owner_pid,omitempty"`
	Herd    containers.State `json:"herd"`
	Faults  chaos.Persisted  `json:"faults"`
	Seed    uint64           `json:"seed"`
}

func (a *app) loadState() (*stateFile, error) {
	b, err := os.ReadFile(a.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no herd is up (no state file %s): run 'herdctl up' first", a.statePath)
	}
	if err != nil {
		return nil, err
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", a.statePath, err)
	}
	return &st, nil
}

func (a *app) saveState(st *stateFile) error {
	if err := os.MkdirAll(filepath.Dir(a.statePath), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := a.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, a.statePath)
}

// session is the herd that is up, attached, with its faults.
type session struct {
	a       *app
	st      *stateFile
	b       chaos.Backend
	release func() // lets go of the herd without stopping it
	c       *chaos.Cluster
}

func (a *app) attach(ctx context.Context) (*session, error) {
	st, err := a.loadState()
	if err != nil {
		return nil, err
	}
	s := &session{a: a, st: st}
	if st.Backend == "local" {
		r, err := chaos.DialBackend(ctx, st.Control)
		if err != nil {
			return nil, fmt.Errorf("%w (is 'herdctl up --backend local' still running? pid %d)", err, st.Owner)
		}
		s.b, s.release = r, func() {}
	} else {
		h, err := containers.Attach(ctx, st.Herd)
		if err != nil {
			return nil, err
		}
		s.b, s.release = h, func() { h.Release() }
	}
	s.c = chaos.NewCluster(s.b, st.Seed)
	if err := s.c.Restore(st.Faults); err != nil {
		s.release()
		return nil, fmt.Errorf("state file %s: %w", a.statePath, err)
	}
	return s, nil
}

// save records the faults in force for the next command.
func (s *session) save() error {
	s.st.Faults = s.c.Persist()
	return s.a.saveState(s.st)
}

// topologyForCompletion is the herd that is up, or the default five.
func (a *app) topologyForCompletion() topology.Config {
	if st, err := a.loadState(); err == nil {
		return st.Herd.Topology
	}
	return topology.Default("127.0.0.1")
}

func (a *app) completeServers(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cfg := a.topologyForCompletion()
	var out []string
	for _, n := range cfg.Names() {
		if strings.HasPrefix(n, toComplete) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) completeLinks(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cfg := a.topologyForCompletion()
	var out []string
	for _, l := range cfg.Links() {
		for _, s := range []string{l[0] + "->" + l[1], l[1] + "->" + l[0], l[0] + "<->" + l[1]} {
			if strings.HasPrefix(s, toComplete) {
				out = append(out, s)
			}
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
