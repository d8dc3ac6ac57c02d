package main

import (
	"context"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/backends"
	"github.com/herdchaos/herd/containers"
	"github.com/herdchaos/herd/herd/topology"
)

// Scenarios shipped with herdctl: classic outages. The test suite runs each of them.
//
//go:embed scenarios/*.yaml
var shipped embed.FS

// shippedScenario returns a shipped scenario's file, if name is one.
func shippedScenario(name string) ([]byte, bool) {
	b, err := shipped.ReadFile("scenarios/" + strings.TrimSuffix(name, ".yaml") + ".yaml")
	return b, err == nil
}

func (a *app) scenariosCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios",
		Short: "List the shipped scenarios ('herdctl run NAME' runs one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, _ := shipped.ReadDir("scenarios")
			for _, e := range entries {
				b, _ := shipped.ReadFile("scenarios/" + e.Name())
				sc, err := chaos.ParseScenario(e.Name(), b, topology.Default("127.0.0.1"))
				if err != nil {
					return err
				}
				fmt.Fprintf(a.out, "%-22s %s\n", strings.TrimSuffix(e.Name(), ".yaml"), sc.Name)
			}
			return nil
		},
	}
}

// runOptions are the flags of run and chaos.
type runOptions struct {
	herdOptions
	out     string
	backend string
	cfg     topology.Config // overrides --topology when set (bench --grid, --memory)
	fresh   bool            // start a herd even if one is up (bench --netns cannot reach it)
	shrink  int             // on a failure, shrink it in at most this many more runs (0: no)
}

func (o *runOptions) flags(cmd *cobra.Command) {
	o.herdOptions.flags(cmd)
	cmd.Flags().StringVar(&o.out, "out", "", "directory for history.json and timeline.html (default herdctl-run-TIME)")
	cmd.Flags().IntVar(&o.shrink, "shrink", 0, "when a check fails, run smaller scenarios (at most this many runs: 30 is a good start) while the same check still fails, and save the smallest as shrunk.yaml in --out")
	cmd.Flags().Lookup("shrink").NoOptDefVal = "30"
	cmd.Flags().StringVar(&o.backend, "backend", "", "where to start a herd for the run when none is up: containers, local (processes, no Docker), direct (processes with no proxies, so no link faults: to measure the herd alone), or sim (our herd in this process on an in-memory network, in real time here; the suite runs it in simulated time); default containers, falling back to local when Docker does not answer")
}

func (a *app) runCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run FILE|NAME",
		Short: "Run a scenario file (or a shipped scenario) with its checks; exit 1 if a check fails",
		Long: `Run a scenario: timed steps of faults, heals, client operations, waits and checks. It
runs against the herd brought up with 'herdctl up' if there is one, or else starts a herd of
its own for the run and removes it after. It writes the history (JSON) and an HTML timeline
(one lane per server, fault windows as bars, each update's first appearance at each server).

Scenario steps (one action each):
  - inject: {kind: latency, links: ["Goloman<->Hands"], latency: 200ms, jitter: 50ms}
    as: slow                       # a name for heal
  - heal: slow                     # or: heal: all
  - iamat: {server: Welsh, client: phone, location: "+34.068930-118.445127"}   # time: now
  - whatsat: {server: Hands, client: phone, radius: "10", bound: 5}
  - updates: 10                    # IAMATs from concurrent clients, each checked
  - traffic: {clients: 3, every: 20ms, for: 4s}   # updates alongside the next steps; a check waits for it
  - wait: 2s
  - check: delivered               # or converged, whatsat, fresh

Fault kinds: ` + strings.Join(chaos.KindNames(), ", "),
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			entries, _ := shipped.ReadDir("scenarios")
			var out []string
			for _, e := range entries {
				out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
			}
			return out, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			name := args[0]
			if err != nil {
				b, ok := shippedScenario(args[0])
				if !ok {
					return fmt.Errorf("%s: no such file, nor a shipped scenario ('herdctl scenarios' lists them)", args[0])
				}
				data, name = b, args[0]+" (shipped)"
			}
			return a.runScenario(cmd.Context(), o, func(cfg topology.Config) (*chaos.Scenario, error) {
				return chaos.ParseScenario(name, data, cfg)
			})
		},
	}
	o.flags(cmd)
	return cmd
}

func (a *app) chaosCmd() *cobra.Command {
	var o runOptions
	var seed uint64
	var steps int
	var save string
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run a random schedule of faults and updates from a seed, with the checks",
		Long: `Draw a schedule of faults (the whole catalogue, at most three at once) and updates from
concurrent clients from a seed, run it with the checks after every step, then heal and check
that no acknowledged IAMAT was lost. --save writes it as a scenario file that replays it
step for step; the same seed draws the same schedule.`,
		Example: "  herdctl chaos --seed 42 --steps 20 --save outage.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("seed") {
				seed = uint64(time.Now().UnixNano())
			}
			fmt.Fprintf(a.errOut, "seed %d (replay with --seed %d)\n", seed, seed)
			return a.runScenario(cmd.Context(), o, func(cfg topology.Config) (*chaos.Scenario, error) {
				sc := chaos.RandomSchedule(seed, cfg, steps)
				b, err := sc.Marshal()
				if err != nil {
					return nil, err
				}
				if save != "" {
					if err := os.WriteFile(save, b, 0o644); err != nil {
						return nil, err
					}
					fmt.Fprintf(a.errOut, "schedule saved to %s (herdctl run %s replays it)\n", save, save)
				}
				// Parse it back, so a saved file and this run are the same thing.
				return chaos.ParseScenario(sc.Name, b, cfg)
			})
		},
	}
	o.flags(cmd)
	cmd.Flags().Uint64Var(&seed, "seed", 0, "the seed (default: from the clock, printed)")
	cmd.Flags().IntVar(&steps, "steps", 15, "how many steps")
	cmd.Flags().StringVar(&save, "save", "", "write the schedule as a scenario file")
	return cmd
}

// herdForRun is the herd that is up (attached), or one started for this run; release
// lets go of the first and removes the second.
func (a *app) herdForRun(ctx context.Context, o runOptions) (chaos.Backend, func(), error) {
	if _, err := a.loadState(); err == nil && !o.fresh {
		sess, err := a.attach(ctx)
		if err != nil {
			return nil, nil, err
		}
		a.attached = sess
		return sess.b, sess.release, nil
	}
	opts, err := o.choice(a.progress())
	if err != nil {
		return nil, nil, err
	}
	if len(o.cfg.Servers) > 0 {
		opts.Config = o.cfg
	}
	which, err := a.backendFor(ctx, o.backend)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(a.errOut, "no herd is up: starting one for this run (%s backend)\n", which)
	h, err := backends.Start(ctx, which, opts.backendOptions()...)
	if err != nil {
		return nil, nil, err
	}
	return h, func() { h.Close(context.WithoutCancel(ctx)) }, nil
}

// backendFor is the backend a command starts a herd on: the one --backend names, or
// containers, falling back to local, and saying so, when Docker does not answer.
func (a *app) backendFor(ctx context.Context, flag string) (string, error) {
	switch flag {
	case "containers", "local", "direct", "sim":
		return flag, nil
	case "":
	default:
		return "", fmt.Errorf("--backend %q: want containers, local, direct or sim", flag)
	}
	cli, err := containers.NewDockerClient(ctx)
	if err != nil {
		fmt.Fprintf(a.errOut, "%v\nfalling back to the local backend (servers as local processes, Toxiproxy in-process)\n", err)
		return "local", nil
	}
	cli.Close()
	return "containers", nil
}

// runTopology is the topology a run will have: the herd's that is up, or the one a herd
// started for the run gets.
func (a *app) runTopology(o runOptions) (topology.Config, error) {
	if st, err := a.loadState(); err == nil {
		return st.Herd.Topology, nil
	}
	if len(o.cfg.Servers) > 0 {
		return o.cfg, nil
	}
	if o.topologyFile != "" {
		return topology.Load(o.topologyFile)
	}
	return topology.Default("127.0.0.1"), nil
}

// runScenario runs a scenario against the herd that is up, or one started for it.
func (a *app) runScenario(ctx context.Context, o runOptions, load func(topology.Config) (*chaos.Scenario, error)) error {
	// Parse before starting anything, so a bad file costs nothing.
	cfg, err := a.runTopology(o)
	if err != nil {
		return err
	}
	sc, err := load(cfg)
	if err != nil {
		return err
	}
	backend, release, err := a.herdForRun(ctx, o)
	if err != nil {
		return err
	}
	defer release()
	sess := a.attached // nil when the herd was started for this run
	// The scenario's seed drives its random choices (which server and client each of
	// its updates uses).
	seed := sc.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	c := chaos.NewCluster(backend, seed)
	if sess != nil {
		if err := c.Restore(sess.st.Faults); err != nil {
			return err
		}
		sess.c = c
	}
	dir := o.out
	if dir == "" {
		dir = "herdctl-run-" + time.Now().Format("20060102-150405")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(a.errOut, "running %q: %d steps, seed %d\n", sc.Name, len(sc.Steps), seed)
	verdict, runErr := chaos.RunScenario(ctx, c, sc, func(s string) { fmt.Fprintln(a.errOut, s) })
	if sess != nil {
		if err := sess.save(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := writeOutputs(dir, sc.Name, c); err != nil && runErr == nil {
		runErr = err
	}
	fmt.Fprintf(a.errOut, "history: %s\ntimeline: %s\n", filepath.Join(dir, "history.json"), filepath.Join(dir, "timeline.html"))
	failed := a.printVerdict(verdict) // as 'herdctl check' prints it from the history
	if runErr == nil && failed > 0 && o.shrink > 0 {
		if sess != nil {
			// Shrinking heals between runs, and would heal the faults of 'herdctl inject'
			// too, and run its trials without them.
			fmt.Fprintln(a.errOut, "not shrinking: the herd is the one 'herdctl up' brought up, with its faults; shrink on a herd of the run's own ('herdctl down' first)")
		} else {
			runErr = a.shrink(ctx, c, sc, dir, o.shrink)
		}
	}
	if runErr != nil {
		return runErr
	}
	if failed > 0 {
		return checkFailed{failed}
	}
	return nil
}

// shrink looks for the smallest scenario that fails the check sc failed, on the same
// herd: each trial runs on a herd healed and settled after the one before, with sc's
// seed, and the smallest is saved as shrunk.yaml in dir.
func (a *app) shrink(ctx context.Context, c *chaos.Cluster, sc *chaos.Scenario, dir string, trials int) error {
	fmt.Fprintf(a.errOut, "shrinking, in at most %d more runs of the scenario\n", trials)
	got, err := chaos.ShrinkOn(ctx, c, sc, fmt.Sprintf("shrink-%x-", c.Seed&0xffffff), trials, func(s string) { fmt.Fprintln(a.errOut, s) })
	if err != nil {
		return fmt.Errorf("shrinking: %w", err)
	}
	out, err := got.Scenario.Marshal()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "shrunk.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "shrunk: %d of %d steps still fail check %s (%d runs): %s\n  %s\nreplay: herdctl run %s\n",
		len(got.Scenario.Steps), len(sc.Steps), got.Failure, got.Trials, path, got.Error, path)
	return nil
}

func writeOutputs(dir, title string, c *chaos.Cluster) error {
	b, err := c.History.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "history.json"), b, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "timeline.html"))
	if err != nil {
		return err
	}
	defer f.Close()
	return chaos.WriteTimeline(f, title, c.Nodes(), c.History)
}
