package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
)

func (a *app) checkCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check HISTORY.json",
		Short: "Check a saved run again from its history alone; exit 1 if a check fails",
		Long: `Judge a saved history (the history.json that 'herdctl run', 'herdctl chaos', the suite's
artifacts and chaos/herdtest write) again, with no herd: every check the run asked is
judged from the recorded reads, the fault windows, the topology and the oracle's timing,
and the verdicts are printed as the run printed them. A history of a scenario prints the
scenario's checks; any other (the suite's, a go test's) each check it asked, by number.`,
		Example: "  herdctl check herdctl-run-20261129-061500/history.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			h, err := chaos.LoadHistory(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if len(h.Results) > 0 {
				v := chaos.Judge(h)
				if failed := a.printVerdict(v); failed > 0 {
					return checkFailed{failed}
				}
				return nil
			}
			each := chaos.JudgeEach(h)
			failed := 0
			for _, av := range each {
				if !av.OK {
					failed++
				}
			}
			if a.json {
				if err := a.printJSON(each); err != nil {
					return err
				}
			} else {
				for _, av := range each {
					if !av.OK {
						fmt.Fprintf(a.out, "FAILED  check %d  %s: %s\n", av.ID, av.Kind, av.Error)
					}
				}
				fmt.Fprintf(a.out, "%d checks: %d passed, %d failed\n", len(each), len(each)-failed, failed)
			}
			if failed > 0 {
				return checkFailed{failed}
			}
			return nil
		},
	}
}

// printVerdict prints a scenario's verdict as 'herdctl run' and 'herdctl check' do (JSON
// with --json) and returns how many checks failed.
func (a *app) printVerdict(v chaos.Verdict) int {
	failed := 0
	for _, cr := range v.Checks {
		if !cr.OK {
			failed++
		}
	}
	if a.json {
		if err := a.printJSON(v); err != nil {
			fmt.Fprintln(a.errOut, err)
		}
		return failed
	}
	for _, cr := range v.Checks {
		if !cr.OK {
			fmt.Fprintf(a.out, "FAILED  line %d  check %s: %s\n", cr.Line, cr.Check, cr.Error)
		}
	}
	fmt.Fprintf(a.out, "%d checks: %d passed, %d failed\n", len(v.Checks), len(v.Checks)-failed, failed)
	return failed
}
