package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/herdchaos/herd/chaos"
)

// testCmd runs the whole fault-tolerance suite against a herd and prints its scorecard.
func (a *app) testCmd() *cobra.Command {
	var herdFile, backend, out, html, focus string
	var seed uint64
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Run the whole suite against a herd and print its scorecard (one row per property)",
		Long: `herdctl test runs the fault-tolerance suite (specs/) against a herd, ours by default or
the one --herd describes, and prints a scorecard: one row per property (replies conform,
newest wins, delivery while connected and under latency, exactly the reachable set under
partitions and cuts, convergence after heal, survives crashes and pauses, WHATSAT correct,
Places faults answered, ...), each with its verdict, the first failing spec, its cause in
one line and the folder of its logs. It exits 1 when a property fails.

The suite runs from this source tree (Go is needed). A herd that dials its neighbours on
loopback at fixed ports (dial: loopback) runs on the local backend, as root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			root, err := chaos.SourceRoot(ctx)
			if err != nil {
				return err
			}
			env := []string{}
			name := "our herd"
			if herdFile != "" {
				abs, err := filepath.Abs(herdFile)
				if err != nil {
					return err
				}
				spec, err := chaos.LoadHerdSpec(abs)
				if err != nil {
					return err
				}
				name = spec.Name
				env = append(env, "HERD_DESCRIPTION="+abs)
				if spec.Sandboxed() && backend == "" {
					backend = "local"
				}
			}
			if backend != "" {
				env = append(env, "HERD_BACKEND="+backend)
			}
			if seed == 0 {
				seed = uint64(time.Now().UnixNano()) & (1<<31 - 1)
			}
			if out == "" {
				out = "herdctl-test-" + time.Now().Format("20060102-150405")
			}
			if out, err = filepath.Abs(out); err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			env = append(env, "HERD_ARTIFACTS="+out, "HERD_SEED="+strconv.FormatUint(seed, 10))
			if _, set := os.LookupEnv("HERD_SHRINK"); !set {
				// A scorecard first: the schedule spec names the command that shrinks its
				// failure rather than spending minutes on it (HERD_SHRINK=N asks for it).
				env = append(env, "HERD_SHRINK=0")
			}
			logPath := filepath.Join(out, "suite.log")
			fmt.Fprintf(a.errOut, "testing %s with the suite (seed %d; replay with --seed %d); its output goes to %s\n", name, seed, seed, logPath)
			suiteFailed, err := runSuite(ctx, root, env, focus, logPath, a.errOut)
			if err != nil {
				return err
			}
			scPath := filepath.Join(out, fmt.Sprintf("run-%d", seed), "scorecard.json")
			b, err := os.ReadFile(scPath)
			if err != nil {
				return fmt.Errorf("the suite left no scorecard (%v): see %s", err, logPath)
			}
			var sc chaos.Scorecard
			if err := json.Unmarshal(b, &sc); err != nil {
				return fmt.Errorf("%s: %w", scPath, err)
			}
			if html != "" {
				f, err := os.Create(html)
				if err != nil {
					return err
				}
				if err := sc.WriteHTML(f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
			}
			if a.json {
				a.out.Write(append(b, '\n'))
			} else {
				sc.WriteText(a.out)
			}
			if sc.Failed() {
				return alreadyReported{} // the scorecard says what failed
			}
			if suiteFailed {
				return fmt.Errorf("the suite failed, but no property did: its log ends with\n%s", logTail(logPath, 3000))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&herdFile, "herd", "", "a herd description (YAML) to test another implementation (default: ours, built from this tree)")
	cmd.Flags().StringVar(&backend, "backend", "", "containers or local (default: the suite's, containers; local for a herd that dials on loopback)")
	cmd.Flags().StringVar(&out, "out", "", "the folder for the suite's log, artifacts and scorecard (default herdctl-test-TIME)")
	cmd.Flags().StringVar(&html, "html", "", "also write the scorecard as an HTML page to this file")
	cmd.Flags().StringVar(&focus, "focus", "", "run only the specs whose text matches this regular expression")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "the suite's seed (default: from the clock; printed)")
	return cmd
}

// logTail is the end of a file, for an error message.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// runSuite compiles and runs the suite in root with env added, its output to logPath,
// and a line of progress every 30 s. A failing suite is not an error here (the scorecard
// says what failed); failed says whether it failed.
func runSuite(ctx context.Context, root string, env []string, focus, logPath string, progress io.Writer) (failed bool, err error) {
	log, err := os.Create(logPath)
	if err != nil {
		return false, err
	}
	defer log.Close()
	args := []string{"test", "./specs", "-count=1", "-timeout=85m", "-args", "-ginkgo.no-color", "-ginkgo.timeout=85m"}
	if focus != "" {
		args = append(args, "-ginkgo.focus="+focus)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Run() }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			fmt.Fprintf(progress, "the suite ran for %v\n", time.Since(start).Round(time.Second))
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				return false, fmt.Errorf("running the suite: %w", err)
			}
			return err != nil, nil
		case <-tick.C:
			fmt.Fprintf(progress, "  %v ...\n", time.Since(start).Round(time.Second))
		}
	}
}
