package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/client"
)

// inject applies a fault to the herd that is up and prints its id.
func (a *app) inject(cmd *cobra.Command, spec chaos.FaultSpec) error {
	f, err := spec.Fault()
	if err != nil {
		return err
	}
	s, err := a.attach(cmd.Context())
	if err != nil {
		return err
	}
	defer s.release()
	id, err := s.c.Inject(cmd.Context(), f)
	if err != nil {
		return err
	}
	if err := s.save(); err != nil {
		return err
	}
	if a.json {
		return a.printJSON(map[string]any{"id": id, "fault": spec})
	}
	fmt.Fprintf(a.out, "%s  %s\n", id, f)
	return nil
}

func (a *app) faultCmds() []*cobra.Command {
	var cmds []*cobra.Command
	linkCmd := func(use, short string, build func(links []string) chaos.FaultSpec, flags func(*cobra.Command)) {
		cmd := &cobra.Command{
			Use:               use + " LINK...",
			Short:             short,
			Args:              cobra.MinimumNArgs(1),
			ValidArgsFunction: a.completeLinks,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.inject(cmd, build(args))
			},
		}
		if flags != nil {
			flags(cmd)
		}
		cmds = append(cmds, cmd)
	}
	nodeCmd := func(use, short, kind string) {
		cmds = append(cmds, &cobra.Command{
			Use:               use + " SERVER",
			Short:             short,
			Args:              cobra.ExactArgs(1),
			ValidArgsFunction: a.completeServers,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.inject(cmd, chaos.FaultSpec{Kind: kind, Nodes: args})
			},
		})
	}

	var latency, jitter, delay, after time.Duration
	var rate, size int
	linkCmd("latency", "Delay what links carry (e.g. herdctl latency 'Goloman<->Hands' --latency 200ms --jitter 50ms)",
		func(l []string) chaos.FaultSpec {
			return chaos.FaultSpec{Kind: "latency", Links: l, Latency: latency, Jitter: jitter}
		}, func(c *cobra.Command) {
			c.Flags().DurationVar(&latency, "latency", 100*time.Millisecond, "added delay")
			c.Flags().DurationVar(&jitter, "jitter", 0, "random extra delay, up to this either way")
		})
	linkCmd("bandwidth", "Limit links to a rate in KB/s", func(l []string) chaos.FaultSpec {
		return chaos.FaultSpec{Kind: "bandwidth", Links: l, Rate: rate}
	}, func(c *cobra.Command) { c.Flags().IntVar(&rate, "rate", 4, "KB per second") })
	linkCmd("slicer", "Cut what links carry into small pieces", func(l []string) chaos.FaultSpec {
		return chaos.FaultSpec{Kind: "slicer", Links: l, Size: size, Delay: delay}
	}, func(c *cobra.Command) {
		c.Flags().IntVar(&size, "size", 2, "average piece in bytes")
		c.Flags().DurationVar(&delay, "delay", 100*time.Microsecond, "between pieces")
	})
	linkCmd("slow-close", "Delay closing links' connections", func(l []string) chaos.FaultSpec {
		return chaos.FaultSpec{Kind: "slow_close", Links: l, Delay: delay}
	}, func(c *cobra.Command) { c.Flags().DurationVar(&delay, "delay", time.Second, "how long") })
	linkCmd("reset", "Reset links' connections (TCP RST) after a while", func(l []string) chaos.FaultSpec {
		return chaos.FaultSpec{Kind: "reset_peer", Links: l, After: after}
	}, func(c *cobra.Command) { c.Flags().DurationVar(&after, "after", 0, "connection age at the reset") })
	linkCmd("blackhole", "Keep links' connections open but drop everything, both ways", func(l []string) chaos.FaultSpec {
		return chaos.FaultSpec{Kind: "black_hole", Links: l}
	}, nil)
	linkCmd("cut", "Cut links (A->B is a one-way cut; A<->B both ways)", func(l []string) chaos.FaultSpec {
		return chaos.FaultSpec{Kind: "cut", Links: l}
	}, nil)

	cmds = append(cmds, &cobra.Command{
		Use:     "partition GROUP GROUP...",
		Short:   "Cut every link between groups of servers (a group is A,B,C)",
		Example: "  herdctl partition Goloman,Hands,Wilkes Holiday,Welsh",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var groups [][]string
			for _, g := range args {
				groups = append(groups, strings.Split(g, ","))
			}
			return a.inject(cmd, chaos.FaultSpec{Kind: "partition", Groups: groups})
		},
	})
	nodeCmd("isolate", "Cut every link into and out of a server", "isolate")
	nodeCmd("crash", "SIGKILL a server (heal starts it again, with no state)", "crash")
	nodeCmd("stop", "Stop a server gracefully (heal starts it again)", "stop")
	nodeCmd("restart", "SIGKILL a server and start it again at once", "restart")
	nodeCmd("pause", "Freeze a server (resume or heal thaws it)", "pause")
	cmds = append(cmds, &cobra.Command{
		Use:               "resume SERVER",
		Short:             "Thaw a paused server (heals its pause fault)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: a.completeServers,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.attach(cmd.Context())
			if err != nil {
				return err
			}
			defer s.release()
			for _, af := range s.c.Active() {
				if slices.Contains(af.Effects.Pause, args[0]) { // the fault that holds it paused, by its effects
					if err := s.c.Heal(cmd.Context(), af.ID); err != nil {
						return err
					}
					fmt.Fprintf(a.out, "healed %s  %s\n", af.ID, af.Fault)
					return s.save()
				}
			}
			return fmt.Errorf("%s is not paused", args[0])
		},
	})
	var placesLatency time.Duration
	slow := &cobra.Command{
		Use:               "places-slow [SERVER...]",
		Short:             "Delay the Places upstream of some servers (all when none are named)",
		ValidArgsFunction: a.completeServers,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inject(cmd, chaos.FaultSpec{Kind: "places_slow", Nodes: args, Latency: placesLatency})
		},
	}
	slow.Flags().DurationVar(&placesLatency, "latency", 5*time.Second, "added delay")
	cmds = append(cmds, slow, &cobra.Command{
		Use:               "places-down [SERVER...]",
		Short:             "Cut the Places upstream of some servers (all when none are named)",
		ValidArgsFunction: a.completeServers,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inject(cmd, chaos.FaultSpec{Kind: "places_down", Nodes: args})
		},
	}, &cobra.Command{
		Use:       "places-error STATUS",
		Short:     "Make the Places upstream answer every request with an error status",
		Example:   "  herdctl places-error OVER_QUERY_LIMIT",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"OVER_QUERY_LIMIT", "REQUEST_DENIED", "INVALID_REQUEST", "UNKNOWN_ERROR", "HTTP500"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.inject(cmd, chaos.FaultSpec{Kind: "places_error", Status: args[0]})
		},
	})
	return cmds
}

func (a *app) healCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "heal ID...|all",
		Short: "Heal faults by id (as 'status' shows them), or all",
		Args:  cobra.MinimumNArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			out := []string{"all"}
			if st, err := a.loadState(); err == nil {
				for _, f := range st.Faults.Faults {
					out = append(out, f.ID)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.attach(cmd.Context())
			if err != nil {
				return err
			}
			defer s.release()
			if len(args) == 1 && args[0] == "all" {
				err := s.c.HealAll(cmd.Context())
				if serr := s.save(); err == nil {
					err = serr
				}
				if err == nil {
					fmt.Fprintln(a.out, "healed all faults")
				}
				return err
			}
			for _, id := range args {
				if err := s.c.Heal(cmd.Context(), id); err != nil {
					s.save()
					return err
				}
				fmt.Fprintf(a.out, "healed %s\n", id)
			}
			return s.save()
		},
	}
}

func (a *app) iamatCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "iamat SERVER CLIENT LOCATION [TIME]",
		Short:             "Send an IAMAT to a server and print its raw reply (TIME: now)",
		Example:           "  herdctl iamat Welsh kiwi.cs.ucla.edu +34.068930-118.445127",
		Args:              cobra.RangeArgs(3, 4),
		ValidArgsFunction: a.completeServers,
		RunE: func(cmd *cobra.Command, args []string) error {
			tm := fmt.Sprintf("%d.%09d", time.Now().Unix(), time.Now().Nanosecond())
			if len(args) == 4 {
				tm = args[3]
			}
			return a.raw(cmd, args[0], fmt.Sprintf("IAMAT %s %s %s\n", args[1], args[2], tm))
		},
	}
}

func (a *app) whatsatCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "whatsat SERVER CLIENT RADIUS BOUND",
		Short:             "Send a WHATSAT to a server and print its raw reply",
		Example:           "  herdctl whatsat Hands kiwi.cs.ucla.edu 10 5",
		Args:              cobra.ExactArgs(4),
		ValidArgsFunction: a.completeServers,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.raw(cmd, args[0], fmt.Sprintf("WHATSAT %s %s %s\n", args[1], args[2], args[3]))
		},
	}
}

// raw sends text to a server of the herd that is up, graders' style, and prints the reply.
func (a *app) raw(cmd *cobra.Command, server, text string) error {
	st, err := a.loadState()
	if err != nil {
		return err
	}
	node := st.Herd.Nodes[server]
	if node == nil {
		return fmt.Errorf("unknown server %q (the herd has %s)", server, strings.Join(st.Herd.Topology.Names(), ", "))
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	out, err := client.Exchange(ctx, node.Addr, text)
	if err != nil {
		return fmt.Errorf("%s at %s: %w", server, node.Addr, err)
	}
	fmt.Fprint(a.out, out)
	return nil
}
