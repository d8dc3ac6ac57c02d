package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/bench"
	"github.com/herdchaos/herd/herd/topology"
	"github.com/herdchaos/herd/local"
)

// benchReport is what 'herdctl bench' measured.
type benchReport struct {
	Server      string              `json:"server,omitempty"`
	Throughput  []bench.Throughput  `json:"throughput,omitempty"`
	Propagation []bench.Propagation `json:"propagation,omitempty"`
	Grid        *gridReport         `json:"grid,omitempty"`
	Memory      *memoryReport       `json:"memory,omitempty"`
	Messages    *messagesPerUpdate  `json:"messages_per_update,omitempty"`
	Herd        string              `json:"herd"`
	Targets     map[string]string   `json:"targets"`
}

// gridReport is the scale measurement: every server as origin once, over links with an
// injected latency, each server's delay against the floor its hop count sets.
type gridReport struct {
	Latency      time.Duration `json:"latency_ns"`
	Updates      int           `json:"updates"`
	OverMedian   time.Duration `json:"over_floor_median_ns"` // delay - hops x latency
	OverMax      time.Duration `json:"over_floor_max_ns"`
	DelayMedian  time.Duration `json:"delay_median_ns"`
	DelayMax     time.Duration `json:"delay_max_ns"`
	WithinBudget bool          `json:"within_50ms"`
}

type memoryReport struct {
	Clients       int   `json:"clients"`
	ResidentBytes int64 `json:"resident_bytes"`
	BaseBytes     int64 `json:"resident_bytes_empty"`
}

type messagesPerUpdate struct {
	Updates  int     `json:"updates"`
	Messages int64   `json:"messages"`
	PerUpd   float64 `json:"per_update"`
	Limit    int     `json:"limit"` // 2E-N+1
}

func (a *app) benchCmd() *cobra.Command {
	var o runOptions
	var clients, pipes, window, samples int
	var duration, latency time.Duration
	var server, grid, servers string
	var memory int
	var only []string
	var netns bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a herd from outside: IAMAT throughput and latency, propagation between servers",
		Long: `Measure any herd that speaks the protocol, as clients see it:
  - IAMAT throughput and latency percentiles with --clients concurrent graders (one command
    per connection, half-closed) and with --pipes persistent pipelined connections;
  - propagation: an IAMAT at one server, the time until another answers WHATSAT with it,
    for every ordered pair (--samples each; the figure includes that WHATSAT's round trip);
  - peer messages per update, when the herd exports herd_peer_messages_sent_total.
It measures the herd that is up, or starts one for the run (--backend).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if netns && os.Getenv(netnsEnv) == "" {
				if servers != "" || (o.backend != "local" && o.backend != "direct") {
					return fmt.Errorf("--netns starts its own herd inside the namespace: use it with --backend local or direct (not --servers, not containers)")
				}
				fmt.Fprintln(a.errOut, "running again in a network namespace of its own")
				var ee *exec.ExitError
				if err := rerunInNetns(ctx, a.out, a.errOut); errors.As(err, &ee) {
					return alreadyReported{}
				} else if err != nil {
					return fmt.Errorf("--netns: %w", err)
				}
				return nil
			}
			if os.Getenv(netnsEnv) != "" {
				if err := loopbackUp(); err != nil {
					return err
				}
				o.fresh = true
			}
			switch {
			case memory > 0:
				return a.benchMemory(cmd, o, memory, pipes)
			case grid != "":
				var r, c int
				if _, err := fmt.Sscanf(grid, "%dx%d", &r, &c); err != nil || r < 1 || c < 1 {
					return fmt.Errorf("--grid %q: want RxC, e.g. 5x5", grid)
				}
				names, links := topology.Grid(r, c)
				o.cfg = topology.Build(names, links, func(string) string { return "127.0.0.1:1" }, func(string) string { return "127.0.0.1:0" })
			}
			var backend chaos.Backend
			var cfg topology.Config
			addrs := map[string]string{}
			if servers != "" {
				// A herd we did not start: measure it as it is, through no proxy.
				for _, kv := range strings.Split(servers, ",") {
					name, addr, ok := strings.Cut(kv, "=")
					if !ok || name == "" || addr == "" {
						return fmt.Errorf("--servers: want NAME=HOST:PORT,..., got %q", kv)
					}
					addrs[name] = addr
				}
				cfg = topology.Default("127.0.0.1")
				for n := range addrs {
					if cfg.Server(n) == nil {
						cfg = topology.Build(sortedNames(addrs), nil, func(string) string { return "" }, func(string) string { return "" })
						break
					}
				}
			} else {
				b, release, err := a.herdForRun(ctx, o)
				if err != nil {
					return err
				}
				defer release()
				if grid != "" {
					return a.benchGrid(cmd, b, latency)
				}
				backend, cfg = b, b.Config()
				for _, n := range cfg.Names() {
					if addrs[n], err = backend.ClientAddr(ctx, n); err != nil {
						return err
					}
				}
			}
			run := map[string]bool{}
			for _, m := range only {
				if m != "oneshot" && m != "pipelined" && m != "propagation" {
					return fmt.Errorf("--only %q: want oneshot, pipelined or propagation", m)
				}
				run[m] = true
			}
			all := len(run) == 0
			if server == "" {
				server = cfg.Names()[0]
			}
			if _, ok := addrs[server]; !ok {
				return fmt.Errorf("unknown server %q", server)
			}
			rep := benchReport{Server: server, Herd: fmt.Sprintf("%d servers, %d links", len(cfg.Servers), len(cfg.Links())),
				Targets: map[string]string{
					"oneshot":     "at least 20000/s with p99 under 10 ms",
					"pipelined":   "at least 200000/s",
					"propagation": "three hops: p50 under 1 ms, p99 under 5 ms",
				}}
			if all || run["oneshot"] {
				fmt.Fprintf(a.errOut, "one-shot IAMATs at %s: %d clients for %v\n", server, clients, duration)
				rep.Throughput = append(rep.Throughput, measured(backend, cfg.Names(), func() bench.Throughput {
					return bench.OneShot(ctx, addrs[server], clients, duration)
				}))
			}
			if all || run["pipelined"] {
				fmt.Fprintf(a.errOut, "pipelined IAMATs at %s: %d connections for %v\n", server, pipes, duration)
				rep.Throughput = append(rep.Throughput, measured(backend, cfg.Names(), func() bench.Throughput {
					return bench.Pipelined(ctx, addrs[server], pipes, window, duration)
				}))
			}
			if !all && !run["propagation"] {
				if a.json {
					return a.printJSON(rep)
				}
				printBench(a.out, rep)
				return nil
			}

			// Count only once the load's floods are over.
			var before int64
			metricsOK := false
			if backend != nil {
				var err error
				if before, metricsOK, err = chaos.SettledPeerMessages(ctx, backend, cfg.Names(), 300*time.Millisecond, 30*time.Second); err != nil {
					return err
				}
			}
			fmt.Fprintf(a.errOut, "propagation: %d samples for each of %d pairs\n", samples, len(cfg.Names())*(len(cfg.Names())-1))
			var err error
			if rep.Propagation, err = bench.Propagations(ctx, addrs, samples); err != nil {
				return err
			}
			oracle := chaos.NewOracle(cfg, nil, chaos.DefaultTiming)
			for i := range rep.Propagation {
				p := &rep.Propagation[i]
				p.Hops = oracle.Hops(p.From, p.To)
			}
			if metricsOK {
				after, _, err := chaos.SettledPeerMessages(ctx, backend, cfg.Names(), 300*time.Millisecond, 10*time.Second)
				if err != nil {
					return err
				}
				updates := samples * len(rep.Propagation)
				rep.Messages = &messagesPerUpdate{Updates: updates, Messages: after - before,
					PerUpd: float64(after-before) / float64(updates), Limit: 2*len(cfg.Links()) - len(cfg.Servers) + 1}
			}
			if a.json {
				return a.printJSON(rep)
			}
			printBench(a.out, rep)
			return nil
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVar(&netns, "netns", false, "run in a network namespace of its own (Linux; root, or unprivileged user namespaces): a loopback with no firewall or connection tracking, as on a bare machine; with --backend local or direct")
	cmd.Flags().StringSliceVar(&only, "only", nil, "run only these measurements: oneshot, pipelined, propagation (comma-separated; default all)")
	cmd.Flags().IntVar(&clients, "clients", 32, "concurrent one-shot clients")
	cmd.Flags().IntVar(&pipes, "pipes", 8, "persistent pipelined connections")
	cmd.Flags().IntVar(&window, "window", 256, "unanswered IAMATs allowed per pipelined connection")
	cmd.Flags().IntVar(&samples, "samples", 20, "propagation samples per ordered pair")
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long each throughput run lasts")
	cmd.Flags().StringVar(&server, "server", "", "the server that takes the load (default: the first)")
	cmd.Flags().StringVar(&grid, "grid", "", "scale: an RxC grid herd (e.g. 5x5), every server as origin once, delays against the hop-count floor")
	cmd.Flags().DurationVar(&latency, "latency", 100*time.Millisecond, "with --grid: latency injected on every link")
	cmd.Flags().IntVar(&memory, "memory", 0, "memory: resident size of one server (local backend) holding this many clients")
	cmd.Flags().StringVar(&servers, "servers", "", "measure a herd already running at these addresses, through no proxy: NAME=HOST:PORT,... (hops assume the default five when the names match)")
	return cmd
}

// benchGrid measures fan-out over a grid with latency on every link.
func (a *app) benchGrid(cmd *cobra.Command, backend chaos.Backend, latency time.Duration) error {
	ctx := cmd.Context()
	cfg := backend.Config()
	c := chaos.NewCluster(backend, 1)
	if _, err := c.Inject(ctx, chaos.Latency{Links: chaos.PeerLinks(cfg), Latency: latency}); err != nil {
		return err
	}
	addrs := map[string]string{}
	for _, n := range cfg.Names() {
		var err error
		if addrs[n], err = backend.ClientAddr(ctx, n); err != nil {
			return err
		}
	}
	before, metricsOK, err := chaos.SettledPeerMessages(ctx, backend, cfg.Names(), 300*time.Millisecond, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.errOut, "fan-out over a %d-server grid with %v on every link: one update from each server\n", len(cfg.Servers), latency)
	fans, err := bench.Fanouts(ctx, addrs, cfg.Names())
	if err != nil {
		return err
	}
	oracle := chaos.NewOracle(cfg, nil, chaos.DefaultTiming)
	var over, delays []time.Duration
	for _, f := range fans {
		for target, d := range f.Delay {
			over = append(over, d-time.Duration(oracle.Hops(f.Origin, target))*latency)
			delays = append(delays, d)
		}
	}
	os, ds := bench.Summarise(over), bench.Summarise(delays)
	rep := benchReport{Herd: fmt.Sprintf("%d servers, %d links (grid)", len(cfg.Servers), len(cfg.Links())),
		Targets: map[string]string{"grid": "every update at every server within hops x latency + 50 ms; at most 2E-N+1 messages per update"},
		Grid: &gridReport{Latency: latency, Updates: len(fans), OverMedian: os.P50, OverMax: os.Max,
			DelayMedian: ds.P50, DelayMax: ds.Max, WithinBudget: os.Max <= 50*time.Millisecond}}
	if metricsOK {
		after, _, err := chaos.SettledPeerMessages(ctx, backend, cfg.Names(), 300*time.Millisecond, 30*time.Second)
		if err != nil {
			return err
		}
		rep.Messages = &messagesPerUpdate{Updates: len(fans), Messages: after - before,
			PerUpd: float64(after-before) / float64(len(fans)), Limit: 2*len(cfg.Links()) - len(cfg.Servers) + 1}
	}
	if a.json {
		return a.printJSON(rep)
	}
	g := rep.Grid
	fmt.Fprintf(a.out, "herd: %s, %v on every link, %d updates (one from each server)\n", rep.Herd, latency, g.Updates)
	fmt.Fprintf(a.out, "delay at each server: median %s ms, max %s ms\n", ms(g.DelayMedian), ms(g.DelayMax))
	fmt.Fprintf(a.out, "over the floor (hops x %v): median %s ms, max %s ms; within 50 ms: %v\n", latency, ms(g.OverMedian), ms(g.OverMax), g.WithinBudget)
	if m := rep.Messages; m != nil {
		fmt.Fprintf(a.out, "peer messages per update: %.2f (at most 2E-N+1 = %d)\n", m.PerUpd, m.Limit)
	}
	return nil
}

// benchMemory loads one server of its own local herd with n clients and reads its
// resident size.
func (a *app) benchMemory(cmd *cobra.Command, o runOptions, n, pipes int) error {
	ctx := cmd.Context()
	cfg := topology.Build([]string{"Solo"}, nil, func(string) string { return "127.0.0.1:1" }, func(string) string { return "127.0.0.1:0" })
	fmt.Fprintln(a.errOut, "starting a one-server herd on the local backend")
	h, err := local.Start(ctx, local.Options{Config: cfg, Progress: a.progress()})
	if err != nil {
		return err
	}
	defer h.Close(context.WithoutCancel(ctx))
	base, err := h.ResidentBytes("Solo")
	if err != nil {
		return err
	}
	addr, _ := h.ClientAddr(ctx, "Solo")
	start := time.Now()
	fmt.Fprintf(a.errOut, "storing %d clients over %d pipelined connections\n", n, pipes)
	if err := bench.Load(ctx, addr, n, pipes); err != nil {
		return err
	}
	took := time.Since(start)
	rss, err := h.ResidentBytes("Solo")
	if err != nil {
		return err
	}
	rep := benchReport{Herd: "one server (local backend)", Targets: map[string]string{"memory": "one million clients in under 500 MB"},
		Memory: &memoryReport{Clients: n, ResidentBytes: rss, BaseBytes: base}}
	if a.json {
		return a.printJSON(rep)
	}
	fmt.Fprintf(a.out, "%d clients stored in %v (%.0f/s); resident %.1f MB (%.1f MB empty), %.0f bytes per client\n",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), float64(rss)/1e6, float64(base)/1e6, float64(rss-base)/float64(n))
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// cpuTimer is a backend whose servers' processor time can be read (the local backend).
type cpuTimer interface {
	CPUTime(name string) (time.Duration, error)
}

// measured runs one throughput measurement and adds the herd's processor time per IAMAT,
// when the backend can tell, and the machine's CPU steal over the run. On a shared virtual
// machine throughput swings with the neighbours; CPU per IAMAT swings less.
func measured(b chaos.Backend, names []string, run func() bench.Throughput) bench.Throughput {
	herdCPU := func() (time.Duration, bool) {
		ct, ok := b.(cpuTimer)
		if !ok {
			return 0, false
		}
		var sum time.Duration
		for _, n := range names {
			t, err := ct.CPUTime(n)
			if err != nil {
				return 0, false
			}
			sum += t
		}
		return sum, true
	}
	cpu0, cpuOK := herdCPU()
	steal0, total0 := cpuSteal()
	t := run()
	steal1, total1 := cpuSteal()
	t.Steal = -1
	if total1 > total0 {
		t.Steal = float64(steal1-steal0) / float64(total1-total0)
	}
	if cpu1, ok := herdCPU(); ok && cpuOK && t.Ops > 0 {
		t.HerdCPUPerOp = (cpu1 - cpu0) / time.Duration(t.Ops)
	}
	return t
}

// cpuSteal reads the machine's stolen and total processor ticks from /proc/stat (zeros
// where there is none).
func cpuSteal() (steal, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:9] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i == 7 {
			steal = n
		}
	}
	return steal, total
}

func printBench(w io.Writer, rep benchReport) {
	fmt.Fprintf(w, "herd: %s; load on %s\n\n", rep.Herd, rep.Server)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tCLIENTS\tOPS/S\tP50 ms\tP90 ms\tP99 ms\tMAX ms\tERRORS\tHERD CPU/OP\tSTEAL\tTARGET")
	for _, t := range rep.Throughput {
		cpu, steal := "-", "-"
		if t.HerdCPUPerOp > 0 {
			cpu = fmt.Sprintf("%.1f µs", float64(t.HerdCPUPerOp)/1e3)
		}
		if t.Steal >= 0 {
			steal = fmt.Sprintf("%.1f%%", 100*t.Steal)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", t.Mode, t.Clients, t.PerSecond,
			ms(t.Latency.P50), ms(t.Latency.P90), ms(t.Latency.P99), ms(t.Latency.Max), t.Errors, cpu, steal, rep.Targets[t.Mode])
	}
	tw.Flush()
	if len(rep.Propagation) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PROPAGATION\tHOPS\tP50 ms\tP99 ms\tMAX ms")
		for _, p := range rep.Propagation {
			fmt.Fprintf(tw, "%s->%s\t%d\t%s\t%s\t%s\n", p.From, p.To, p.Hops, ms(p.Latency.P50), ms(p.Latency.P99), ms(p.Latency.Max))
		}
		tw.Flush()
	}
	if m := rep.Messages; m != nil {
		fmt.Fprintf(w, "\npeer messages per update: %.2f (%d for %d updates; at most 2E-N+1 = %d)\n", m.PerUpd, m.Messages, m.Updates, m.Limit)
	}
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
