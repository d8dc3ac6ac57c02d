package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/backends"
	"github.com/herdchaos/herd/containers"
	"github.com/herdchaos/herd/herd/topology"
)

// herdOptions are the flags that say which herd to start.
type herdOptions struct {
	herdFile, topologyFile string
	seed                   uint64
}

func (o *herdOptions) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.herdFile, "herd", "", "a herd description (YAML) to test another implementation (default: ours, built from this tree)")
	cmd.Flags().StringVar(&o.topologyFile, "topology", "", "a herd config file giving the servers and links (default: the five of docs/PROTOCOL.md)")
}

// herdChoice is the herd and topology the flags chose, and where start-up steps go.
type herdChoice struct {
	Config   topology.Config // empty: the herd's own graph, or the default five
	Herd     chaos.HerdSpec
	Progress func(string)
}

// quietTestcontainers keeps testcontainers-go's banner (Docker's details, printed once
// per process to its process-wide default logger, which no option of a request reaches)
// off herdctl's output. herdctl owns its process, so it may set that logger; the library
// (containers.Run) leaves it alone.
func quietTestcontainers() { tclog.SetDefault(tclog.NewNoopLogger()) }

// backendOptions are the backends.Start options for c.
func (c herdChoice) backendOptions() []backends.Option {
	return []backends.Option{backends.WithTopology(c.Config), backends.WithHerd(c.Herd), backends.WithProgress(c.Progress)}
}

func (o *herdOptions) choice(progress func(string)) (herdChoice, error) {
	opts := herdChoice{Progress: progress}
	if o.herdFile != "" {
		spec, err := chaos.LoadHerdSpec(o.herdFile)
		if err != nil {
			return opts, err
		}
		opts.Herd = spec
	}
	if o.topologyFile != "" {
		cfg, err := topology.Load(o.topologyFile)
		if err != nil {
			return opts, err
		}
		opts.Config = cfg
	}
	return opts, nil
}

func (a *app) progress() func(string) {
	start := time.Now()
	return func(s string) { fmt.Fprintf(a.errOut, "%6.1fs  %s\n", time.Since(start).Seconds(), s) }
}

func (a *app) upCmd() *cobra.Command {
	var o herdOptions
	var backend string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a herd (servers, Toxiproxy, Places emulator) and leave it running",
		Example: `  herdctl up
  herdctl up --herd myherd.yaml          # test another implementation
  herdctl up --topology grid.yaml        # any servers and links`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if st, err := a.loadState(); err == nil {
				if s, err := a.attach(ctx); err == nil {
					s.release()
					return fmt.Errorf("a herd is already up (run %s): 'herdctl down' first", st.Herd.RunID)
				}
				fmt.Fprintf(a.errOut, "forgetting herd %s: it is gone\n", st.Herd.RunID)
			}
			opts, err := o.choice(a.progress())
			if err != nil {
				return err
			}
			which, err := a.backendFor(ctx, backend)
			if err != nil {
				return err
			}
			if which == "local" || which == "direct" {
				return a.upLocal(ctx, opts, which)
			}
			b, err := backends.Start(ctx, which, append(opts.backendOptions(), backends.WithDetached())...)
			if err != nil {
				return err // on error or Ctrl-C nothing half-started stays
			}
			h := b.(*containers.Herd)
			st := &stateFile{Backend: "containers", Herd: h.State(), Seed: uint64(time.Now().UnixNano())}
			if err := a.saveState(st); err != nil {
				h.Close(context.Background()) // nothing half-started stays
				return err
			}
			if a.json {
				return a.printJSON(st.Herd)
			}
			printUp(a.out, st.Herd, a.statePath)
			return nil
		},
	}
	o.flags(cmd)
	cmd.Flags().StringVar(&backend, "backend", "", "containers (default), or local: servers as local processes owned by this command, which then stays in the foreground until Ctrl-C or 'herdctl down'; falls back to local, saying so, when Docker does not answer; direct is local with no proxies (no link faults)")
	return cmd
}

// upLocal starts a herd on the local backend and owns it: the servers live as long as
// this process, which serves the herd's backend to other herdctl commands on loopback.
func (a *app) upLocal(ctx context.Context, opts herdChoice, which string) error {
	h, err := backends.Start(ctx, which, opts.backendOptions()...)
	if err != nil {
		return err
	}
	defer h.Close(context.WithoutCancel(ctx))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- chaos.ServeBackend(ctx, ln, h) }()
	cfg := h.Config()
	st := &stateFile{Backend: "local", Control: "http://" + ln.Addr().String(), Owner: os.Getpid(), Seed: uint64(time.Now().UnixNano()),
		Herd: containers.State{RunID: fmt.Sprintf("local-%d", os.Getpid()), Topology: cfg, PlacesURL: h.PlacesURL(),
			ToxiproxyAPI: "in-process (driven through " + ln.Addr().String() + ")", Nodes: map[string]*containers.Node{}}}
	for _, n := range cfg.Names() {
		addr, _ := h.ClientAddr(ctx, n)
		var metrics string
		if src, ok := h.(chaos.MetricsSource); ok {
			metrics, _ = src.MetricsURL(ctx, n)
		}
		metrics = strings.TrimSuffix(strings.TrimPrefix(metrics, "http://"), "/metrics")
		st.Herd.Nodes[n] = &containers.Node{Addr: addr, Metrics: metrics}
	}
	if err := a.saveState(st); err != nil {
		return err
	}
	defer os.Remove(a.statePath)
	if a.json {
		a.printJSON(st.Herd)
	} else {
		printUp(a.out, st.Herd, a.statePath)
		fmt.Fprintln(a.out, "\nThe servers are this process's children: it stays in the foreground; Ctrl-C or 'herdctl down' stops the herd.")
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			return err
		}
	}
	fmt.Fprintln(a.errOut, "stopping the herd")
	return nil
}

func printUp(w io.Writer, st containers.State, statePath string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tCLIENT ADDRESS\tMETRICS")
	for _, n := range st.Topology.Names() {
		node := st.Nodes[n]
		metrics := "-"
		if node.Metrics != "" {
			metrics = "http://" + node.Metrics + "/metrics"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, node.Addr, metrics)
	}
	tw.Flush()
	toxi := st.ToxiproxyAPI
	if !strings.HasPrefix(toxi, "in-process") {
		toxi = "http://" + toxi
	}
	fmt.Fprintf(w, "\nToxiproxy API:    %s\nPlaces emulator:  %s\nRun id:           %s\nState file:       %s\n",
		toxi, st.PlacesURL, st.RunID, statePath)
}

func (a *app) downCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop the herd brought up with 'herdctl up' and remove its containers and network",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := a.loadState()
			if err != nil {
				return err
			}
			if st.Backend == "local" {
				return a.downLocal(cmd.Context(), st)
			}
			cli, err := containers.NewDockerClient(cmd.Context())
			if err != nil {
				return err
			}
			defer cli.Close()
			swept, err := containers.Sweep(cmd.Context(), cli, st.Herd.RunID)
			if err != nil {
				return err
			}
			if err := os.Remove(a.statePath); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "herd %s is down: removed %d containers and %d networks\n", st.Herd.RunID, swept.Containers, swept.Networks)
			return nil
		},
	}
}

// downLocal asks the owner of a local herd to stop it, and waits until it has.
func (a *app) downLocal(ctx context.Context, st *stateFile) error {
	p, err := os.FindProcess(st.Owner)
	if err == nil {
		err = p.Signal(syscall.SIGTERM)
	}
	if err != nil {
		os.Remove(a.statePath)
		return fmt.Errorf("the owner of local herd %s (pid %d) is gone: %v; state file removed", st.Herd.RunID, st.Owner, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(st.Owner, 0) == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("the owner of local herd %s (pid %d) did not stop within 30s", st.Herd.RunID, st.Owner)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	os.Remove(a.statePath)
	fmt.Fprintf(a.out, "herd %s is down\n", st.Herd.RunID)
	return nil
}

func (a *app) cleanCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "clean",
		Short: "Remove every container and network any run of the framework left behind",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			swept, err := containers.SweepAll(cmd.Context())
			if err != nil {
				return err
			}
			os.Remove(a.statePath)
			fmt.Fprintf(a.out, "removed %d containers and %d networks\n", swept.Containers, swept.Networks)
			return nil
		},
	}
}

// statusReport is what 'herdctl status' shows.
type statusReport struct {
	RunID   string         `json:"run_id"`
	Servers []serverStatus `json:"servers"`
	Links   []linkStatus   `json:"links"`
	Faults  []faultStatus  `json:"faults"`
}

type serverStatus struct {
	Name    string   `json:"name"`
	State   string   `json:"state"` // running, paused, crashed, stopped
	Address string   `json:"address"`
	Clients []string `json:"clients,omitempty"` // the AT line held per client (our herd)
}

type linkStatus struct {
	Link   string   `json:"link"`
	Faults []string `json:"faults,omitempty"`
}

type faultStatus struct {
	ID    string    `json:"id"`
	Fault string    `json:"fault"`
	Since time.Time `json:"since"`
}

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Servers, every link with the faults on it, the faults in force, and what each server holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.attach(cmd.Context())
			if err != nil {
				return err
			}
			defer s.release()
			rep := s.report(cmd.Context())
			if a.json {
				return a.printJSON(rep)
			}
			printStatus(a.out, rep)
			return nil
		},
	}
}

func (s *session) report(ctx context.Context) statusReport {
	rep := statusReport{RunID: s.st.Herd.RunID}
	cfg := s.st.Herd.Topology
	for _, n := range cfg.Names() {
		state := string(s.c.State(n))
		if ns, ok := s.b.(interface {
			NodeStatus(context.Context, string) (string, error)
		}); ok {
			if docker, err := ns.NodeStatus(ctx, n); err == nil && docker != "running" && state == "running" {
				state = docker // what Docker says when no fault of ours explains it
			}
		}
		ss := serverStatus{Name: n, State: state, Address: s.st.Herd.Nodes[n].Addr}
		if m := s.st.Herd.Nodes[n].Metrics; m != "" && state == "running" {
			ss.Clients = fetchClients(ctx, "http://"+m+"/clients")
		}
		rep.Servers = append(rep.Servers, ss)
	}
	onLink := map[chaos.Link][]string{}
	for _, af := range s.c.Active() {
		for _, l := range af.Effects.Cut {
			onLink[l] = append(onLink[l], af.ID+" cut")
		}
		for _, t := range af.Effects.Toxics {
			onLink[t.Link] = append(onLink[t.Link], fmt.Sprintf("%s %s/%s %v", af.ID, t.Toxic.Type, t.Toxic.Stream, t.Toxic.Attributes))
		}
		rep.Faults = append(rep.Faults, faultStatus{ID: af.ID, Fault: af.Fault.String(), Since: time.Now().Add(-(s.c.History.Now() - af.Since))})
	}
	for _, l := range chaos.AllLinks(cfg) {
		rep.Links = append(rep.Links, linkStatus{Link: l.String(), Faults: onLink[l]})
	}
	return rep
}

func fetchClients(ctx context.Context, url string) []string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	sort.Strings(lines)
	return lines
}

func printStatus(w io.Writer, rep statusReport) {
	fmt.Fprintf(w, "herd %s\n\n", rep.RunID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tSTATE\tADDRESS\tCLIENTS")
	for _, s := range rep.Servers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", s.Name, s.State, s.Address, len(s.Clients))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tFAULTS")
	for _, l := range rep.Links {
		f := "-"
		if len(l.Faults) > 0 {
			f = strings.Join(l.Faults, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\n", l.Link, f)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(rep.Faults) == 0 {
		fmt.Fprintln(w, "no faults in force")
	}
	for _, f := range rep.Faults {
		fmt.Fprintf(w, "%s  %s  (since %s)\n", f.ID, f.Fault, f.Since.Format(time.TimeOnly))
	}
	for _, s := range rep.Servers {
		if len(s.Clients) > 0 {
			fmt.Fprintf(w, "\n%s holds:\n", s.Name)
			for _, c := range s.Clients {
				fmt.Fprintf(w, "  %s\n", c)
			}
		}
	}
}
