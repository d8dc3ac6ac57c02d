package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/bench"
)

// benchReport is what 'herdctl bench' measured.
type benchReport struct {
	Server      string              `json:"server"`
	Throughput  []bench.Throughput  `json:"throughput"`
	Propagation []bench.Propagation `json:"propagation"`
	Messages    *messagesPerUpdate  `json:"messages_per_update,omitempty"`
	Herd        string              `json:"herd"`
	Targets     map[string]string   `json:"targets"`
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
	var duration time.Duration
	var server string
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
			backend, release, err := a.herdForRun(ctx, o)
			if err != nil {
				return err
			}
			defer release()
			cfg := backend.Config()
			if server == "" {
				server = cfg.Names()[0]
			}
			addrs := map[string]string{}
			for _, n := range cfg.Names() {
				if addrs[n], err = backend.ClientAddr(ctx, n); err != nil {
					return err
				}
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
			fmt.Fprintf(a.errOut, "one-shot IAMATs at %s: %d clients for %v\n", server, clients, duration)
			rep.Throughput = append(rep.Throughput, bench.OneShot(ctx, addrs[server], clients, duration))
			fmt.Fprintf(a.errOut, "pipelined IAMATs at %s: %d connections for %v\n", server, pipes, duration)
			rep.Throughput = append(rep.Throughput, bench.Pipelined(ctx, addrs[server], pipes, window, duration))

			// Count only once the load's floods are over.
			before, metricsOK, err := chaos.SettledPeerMessages(ctx, backend, cfg.Names(), 300*time.Millisecond, 30*time.Second)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.errOut, "propagation: %d samples for each of %d pairs\n", samples, len(cfg.Names())*(len(cfg.Names())-1))
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
	cmd.Flags().IntVar(&clients, "clients", 32, "concurrent one-shot clients")
	cmd.Flags().IntVar(&pipes, "pipes", 8, "persistent pipelined connections")
	cmd.Flags().IntVar(&window, "window", 256, "unanswered IAMATs allowed per pipelined connection")
	cmd.Flags().IntVar(&samples, "samples", 20, "propagation samples per ordered pair")
	cmd.Flags().DurationVar(&duration, "duration", 5*time.Second, "how long each throughput run lasts")
	cmd.Flags().StringVar(&server, "server", "", "the server that takes the load (default: the first)")
	return cmd
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

func printBench(w io.Writer, rep benchReport) {
	fmt.Fprintf(w, "herd: %s; load on %s\n\n", rep.Herd, rep.Server)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tCLIENTS\tOPS/S\tP50 ms\tP90 ms\tP99 ms\tMAX ms\tERRORS\tTARGET")
	for _, t := range rep.Throughput {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\n", t.Mode, t.Clients, t.PerSecond,
			ms(t.Latency.P50), ms(t.Latency.P90), ms(t.Latency.P99), ms(t.Latency.Max), t.Errors, rep.Targets[t.Mode])
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROPAGATION\tHOPS\tP50 ms\tP99 ms\tMAX ms")
	for _, p := range rep.Propagation {
		fmt.Fprintf(tw, "%s->%s\t%d\t%s\t%s\t%s\n", p.From, p.To, p.Hops, ms(p.Latency.P50), ms(p.Latency.P99), ms(p.Latency.Max))
	}
	tw.Flush()
	if m := rep.Messages; m != nil {
		fmt.Fprintf(w, "\npeer messages per update: %.2f (%d for %d updates; at most 2E-N+1 = %d)\n", m.PerUpd, m.Messages, m.Updates, m.Limit)
	}
}
