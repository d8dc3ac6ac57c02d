package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
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
	cmd.Flags().StringVar(&o.topologyFile, "topology", "", "a herd config file giving the servers and links (default: the five of PROTOCOL.md)")
}

func (o *herdOptions) containerOptions(progress func(string)) (containers.Options, error) {
	opts := containers.Options{Progress: progress}
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
					s.h.Release()
					return fmt.Errorf("a herd is already up (run %s): 'herdctl down' first", st.Herd.RunID)
				}
				fmt.Fprintf(a.errOut, "forgetting herd %s: it is gone\n", st.Herd.RunID)
			}
			opts, err := o.containerOptions(a.progress())
			if err != nil {
				return err
			}
			opts.Detached = true
			h, err := containers.Start(ctx, opts) // on error or Ctrl-C it removes what it started
			if err != nil {
				return err
			}
			st := &stateFile{Herd: h.State(), Seed: uint64(time.Now().UnixNano())}
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
	return cmd
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
	fmt.Fprintf(w, "\nToxiproxy API:    http://%s\nPlaces emulator:  %s\nRun id:           %s\nState file:       %s\n",
		st.ToxiproxyAPI, st.PlacesURL, st.RunID, statePath)
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
			defer s.h.Release()
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
		if docker, err := s.h.NodeStatus(ctx, n); err == nil && docker != "running" && state == "running" {
			state = docker // what Docker says when no fault of ours explains it
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
	var links []chaos.Link
	for _, l := range cfg.Links() {
		links = append(links, chaos.Link{From: l[0], To: l[1]}, chaos.Link{From: l[1], To: l[0]})
	}
	for _, n := range cfg.Names() {
		links = append(links, chaos.Link{From: n, To: chaos.Places})
	}
	for _, l := range links {
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
