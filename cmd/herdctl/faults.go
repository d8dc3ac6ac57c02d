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

// faultCmds are a command per registered fault kind (chaos.Commands), and resume.
func (a *app) faultCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, kc := range chaos.Commands() {
		cmds = append(cmds, a.faultCmd(kc))
	}
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
	return cmds
}

// faultCmd is the command that injects a fault of one kind: its arguments fill the spec
// field its form names, its flags the others.
func (a *app) faultCmd(kc chaos.KindCommand) *cobra.Command {
	spec := chaos.FaultSpec{Kind: kc.Kind}
	cmd := &cobra.Command{
		Use:     kc.Name + " " + string(kc.Args),
		Short:   kc.Short,
		Example: kc.Example,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := spec
			switch kc.Args {
			case chaos.ArgsLinks:
				s.Links = args
			case chaos.ArgsServer, chaos.ArgsServers:
				s.Nodes = args
			case chaos.ArgsGroups:
				for _, g := range args {
					s.Groups = append(s.Groups, strings.Split(g, ","))
				}
			case chaos.ArgsStatus:
				s.Status = args[0]
			}
			return a.inject(cmd, s)
		},
	}
	switch kc.Args {
	case chaos.ArgsLinks:
		cmd.Args, cmd.ValidArgsFunction = cobra.MinimumNArgs(1), a.completeLinks
	case chaos.ArgsServer:
		cmd.Args, cmd.ValidArgsFunction = cobra.ExactArgs(1), a.completeServers
	case chaos.ArgsServers:
		cmd.ValidArgsFunction = a.completeServers
	case chaos.ArgsGroups:
		cmd.Args = cobra.MinimumNArgs(2)
	case chaos.ArgsStatus:
		cmd.Args, cmd.ValidArgs = cobra.ExactArgs(1), kc.Values
	default:
		panic(fmt.Sprintf("herdctl: fault kind %s: unknown argument form %q", kc.Kind, kc.Args))
	}
	fs := cmd.Flags()
	for _, fl := range kc.Flags {
		switch fl.Field {
		case "latency":
			fs.DurationVar(&spec.Latency, fl.Field, fl.Duration, fl.Usage)
		case "jitter":
			fs.DurationVar(&spec.Jitter, fl.Field, fl.Duration, fl.Usage)
		case "after":
			fs.DurationVar(&spec.After, fl.Field, fl.Duration, fl.Usage)
		case "delay":
			fs.DurationVar(&spec.Delay, fl.Field, fl.Duration, fl.Usage)
		case "rate":
			fs.IntVar(&spec.Rate, fl.Field, fl.Int, fl.Usage)
		case "size":
			fs.IntVar(&spec.Size, fl.Field, fl.Int, fl.Usage)
		case "variation":
			fs.IntVar(&spec.Variation, fl.Field, fl.Int, fl.Usage)
		default:
			panic(fmt.Sprintf("herdctl: fault kind %s: no flag for the spec field %q", kc.Kind, fl.Field))
		}
	}
	return cmd
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
