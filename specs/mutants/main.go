// Command mutants is the suite's mutation campaign: it builds our herd with one realistic
// bug at a time (a mutant from mutants.yaml, applied with go build -overlay, so the herd's
// source never carries it), runs the Ginkgo suite against it on the local backend, stopping
// at the first failure, and prints which spec killed it.
//
//	go run ./specs/mutants                 every mutant, the whole suite each (make mutants)
//	go run ./specs/mutants -quick          the mutants marked quick, each against its own spec only (make test)
//	go run ./specs/mutants -only a,b       some of them
//	go run ./specs/mutants -check          only check that every mutant applies and compiles
//	go run ./specs/mutants -focus REGEX    every mutant against some specs only (is a new spec sharp?)
//	go run ./specs/mutants -sim            every mutant of herd/core, herd/proto or herd/places against the simulator (herd/sim)
//
// A mutant survives when the whole suite passes with it. It must then be killed by a new or
// sharper spec, or argued equivalent (no observable difference) in mutants.yaml. The run
// exits 1 when a mutant that is not argued equivalent survives, or cannot be applied.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"gopkg.in/yaml.v3"
)

// Mutant is one realistic bug: a few edits to our herd's source.
type Mutant struct {
	Name  string `yaml:"name"`
	Bug   string `yaml:"bug"` // what a person would have written wrong, in words
	Edits []Edit `yaml:"edits"`
	// Quick is the focus (a regular expression over spec names) of the spec that kills
	// it fast; mutants with one run in make test.
	Quick string `yaml:"quick,omitempty"`
	// Equivalent, when set, argues in one line why no test can tell this mutant from
	// the herd. A surviving equivalent mutant does not fail the campaign.
	Equivalent string `yaml:"equivalent,omitempty"`
	// Unit, when set, names the herd's unit test (go test -run) that kills a mutant the
	// suite cannot see within its budget; Why says why it cannot. A mutant that survives
	// the suite is then run against that test, and the table says which killed it.
	Unit string `yaml:"unit,omitempty"`
	Why  string `yaml:"why,omitempty"`
}

// Edit replaces the one occurrence of From in File (relative to the module root) by To.
type Edit struct {
	File string `yaml:"file"`
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Result is what one mutant's run found.
type Result struct {
	Mutant   string
	Verdict  string // killed, survived, equivalent, error
	KilledBy string // the first failed spec
	Message  string // the first line of its failure
	Took     time.Duration
}

func main() {
	var (
		catalogue = flag.String("mutants", "specs/mutants/mutants.yaml", "the catalogue of mutants")
		only      = flag.String("only", "", "comma-separated mutant names to run (default: all)")
		quick     = flag.Bool("quick", false, "run only mutants with a quick focus, each against that spec alone")
		checkOnly = flag.Bool("check", false, "only check that every mutant applies once and compiles")
		seed      = flag.Uint64("seed", 1, "HERD_SEED for every suite run (spec order and random choices)")
		timeout   = flag.Duration("timeout", 15*time.Minute, "longest run of the suite for one mutant")
		keep      = flag.String("keep", "", "keep each mutant's artifacts under this folder (default: removed)")
		backend   = flag.String("backend", "local", "HERD_BACKEND of the suite runs (sim: each mutant's suite is compiled with the mutant, and runs in simulated time)")
		focus     = flag.String("focus", "", "run only the specs this regular expression matches, for every mutant")
		simMode   = flag.Bool("sim", false, "run every mutant whose edits are all in herd/core, herd/proto or herd/places against the simulator (go test ./herd/sim) instead of the suite")
		simSeeds  = flag.Int("sim-seeds", 500, "with -sim: how many seeds each mutant gets")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *simMode {
		if err := runSim(ctx, *catalogue, *only, *simSeeds); err != nil {
			fmt.Fprintln(os.Stderr, "mutants:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, *catalogue, *only, *quick, *checkOnly, *seed, *timeout, *keep, *backend, *focus); err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, catalogue, only string, quick, checkOnly bool, seed uint64, timeout time.Duration, keep, backend, focusAll string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	all, err := Load(filepath.Join(root, catalogue))
	if err != nil {
		return err
	}
	mutants := all[:0:0]
	for _, m := range all {
		if only != "" && !slices.Contains(strings.Split(only, ","), m.Name) {
			continue
		}
		if quick && m.Quick == "" {
			continue
		}
		mutants = append(mutants, m)
	}
	if len(mutants) == 0 {
		return errors.New("no mutant selected")
	}
	work, err := os.MkdirTemp("", "herd-mutants-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Printf("mutants: %d of %d, suite on the %s backend, HERD_SEED=%d\n", len(mutants), len(all), backend, seed)
	start := time.Now()
	// The suite is compiled once; each mutant's run builds only the herd.
	suite := filepath.Join(work, "specs.test")
	if !checkOnly {
		if err := compileSuite(ctx, root, "", suite); err != nil {
			return err
		}
	}
	if keep != "" {
		if keep, err = filepath.Abs(keep); err != nil {
			return err
		}
	}
	if !checkOnly {
		// The herd as it is must pass what the mutants are run against: a failing or
		// flaky spec would otherwise kill every mutant.
		focus := focusAll
		if quick {
			var foci []string
			for _, m := range mutants {
				foci = append(foci, "(?:"+m.Quick+")")
			}
			focus = strings.Join(foci, "|")
		}
		base := runSuite(ctx, root, suite, Mutant{Name: "(no mutant)"}, "", filepath.Join(work, "baseline"), focus, seed, timeout, backend)
		if base.Verdict != "survived" {
			return fmt.Errorf("the suite does not pass on the herd without a mutant (%s: %s %s); fix that first", base.Verdict, base.KilledBy, base.Message)
		}
		fmt.Printf("%-28s %-10s %6.1fs\n", "(no mutant)", "passes", base.Took.Seconds())
	}
	var results []Result
	for _, m := range mutants {
		dir := filepath.Join(work, m.Name)
		overlay, err := m.Overlay(root, dir)
		mutantSuite, herdOverlay := suite, overlay
		switch {
		case err != nil:
		case backend == "sim":
			// The sim backend runs the herd compiled into the suite: the mutant's suite.
			mutantSuite, herdOverlay = filepath.Join(dir, "specs.test"), ""
			err = compileSuite(ctx, root, overlay, mutantSuite)
		default:
			err = build(ctx, root, overlay, filepath.Join(dir, "herd"))
		}
		if err != nil {
			results = append(results, Result{Mutant: m.Name, Verdict: "error", Message: oneLine(err.Error())})
			fmt.Printf("%-28s error: %s\n", m.Name, oneLine(err.Error()))
			continue
		}
		if checkOnly {
			fmt.Printf("%-28s applies and compiles\n", m.Name)
			continue
		}
		arts := filepath.Join(dir, "artifacts")
		if keep != "" {
			arts = filepath.Join(keep, m.Name)
		}
		focus := focusAll
		if quick {
			focus = m.Quick
		}
		r := runSuite(ctx, root, mutantSuite, m, herdOverlay, arts, focus, seed, timeout, backend)
		if r.Verdict == "survived" && m.Unit != "" && !quick {
			r = runUnit(ctx, root, m, overlay, r)
		}
		results = append(results, r)
		fmt.Printf("%-28s %-10s %6.1fs  %s\n", m.Name, r.Verdict, r.Took.Seconds(), r.KilledBy)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if checkOnly {
		return verdict(results)
	}
	summarize("mutants", results, start)
	return verdict(results)
}

// summarize prints the table of results and one line counting each verdict.
func summarize(what string, results []Result, start time.Time) {
	fmt.Println()
	printTable(os.Stdout, results)
	count := map[string]int{}
	for _, r := range results {
		count[r.Verdict]++
	}
	fmt.Printf("\n%s: %d killed, %d survived, %d equivalent, %d errors (%s)\n", what,
		count["killed"], count["survived"], count["equivalent"], count["error"], time.Since(start).Round(time.Second))
}

func verdict(results []Result) error {
	var bad []string
	for _, r := range results {
		if r.Verdict == "survived" || r.Verdict == "error" {
			bad = append(bad, r.Mutant+" "+r.Verdict)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, ", "))
	}
	return nil
}

// Load reads the catalogue and checks it: unique names, each with a bug and edits.
func Load(path string) ([]Mutant, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ms []Mutant
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&ms); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, m := range ms {
		switch {
		case m.Name == "":
			return nil, fmt.Errorf("%s: mutant %d has no name", path, i+1)
		case seen[m.Name]:
			return nil, fmt.Errorf("%s: mutant %s twice", path, m.Name)
		case m.Bug == "" || len(m.Edits) == 0:
			return nil, fmt.Errorf("%s: mutant %s needs a bug and edits", path, m.Name)
		case (m.Unit == "") != (m.Why == ""):
			return nil, fmt.Errorf("%s: mutant %s: a unit test goes with why the suite cannot see the mutant", path, m.Name)
		}
		seen[m.Name] = true
	}
	return ms, nil
}

// Apply returns the mutated content of every file the mutant edits, by path relative to
// root. Each From must occur exactly once in its file (after the earlier edits).
func (m Mutant) Apply(root string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for i, e := range m.Edits {
		src, ok := files[e.File]
		if !ok {
			b, err := os.ReadFile(filepath.Join(root, e.File))
			if err != nil {
				return nil, fmt.Errorf("mutant %s: %w", m.Name, err)
			}
			src = b
		}
		if e.From == "" || e.From == e.To {
			return nil, fmt.Errorf("mutant %s, edit %d: from must be non-empty and differ from to", m.Name, i+1)
		}
		if n := bytes.Count(src, []byte(e.From)); n != 1 {
			return nil, fmt.Errorf("mutant %s, edit %d: %q occurs %d times in %s, want once (has the code changed?)", m.Name, i+1, e.From, n, e.File)
		}
		files[e.File] = bytes.Replace(src, []byte(e.From), []byte(e.To), 1)
	}
	return files, nil
}

// Overlay writes the mutated files and a go build -overlay file for them under dir.
func (m Mutant) Overlay(root, dir string) (string, error) {
	files, err := m.Apply(root)
	if err != nil {
		return "", err
	}
	replace := map[string]string{}
	for rel, b := range files {
		dst := filepath.Join(dir, "src", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return "", err
		}
		replace[filepath.Join(root, rel)] = dst
	}
	b, _ := json.Marshal(map[string]any{"Replace": replace})
	overlay := filepath.Join(dir, "overlay.json")
	return overlay, os.WriteFile(overlay, b, 0o644)
}

// compileSuite compiles the suite (go test -c), with overlay if one is given.
func compileSuite(ctx context.Context, root, overlay, out string) error {
	args := []string{"test", "-c", "-o", out}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./specs")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("compiling the suite: %v\n%s", err, b)
	}
	return nil
}

func build(ctx context.Context, root, overlay, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", overlay, "-o", out, "./cmd/herd")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("does not compile: %v: %s", err, b)
	}
	return nil
}

// runSuite runs the suite against the mutant, stopping at its first failure.
func runSuite(ctx context.Context, root, suite string, m Mutant, overlay, arts, focus string, seed uint64, timeout time.Duration, backend string) Result {
	start := time.Now()
	r := Result{Mutant: m.Name}
	os.MkdirAll(arts, 0o755)
	os.Remove(filepath.Join(arts, "report.json")) // a report of an earlier run is not this one's
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"-test.timeout=0", "-ginkgo.fail-fast", "-ginkgo.no-color",
		"-ginkgo.json-report=" + filepath.Join(arts, "report.json"), "-ginkgo.junit-report=" + filepath.Join(arts, "junit.xml")}
	if focus != "" {
		args = append(args, "-ginkgo.focus="+focus)
	}
	cmd := exec.CommandContext(ctx, suite, args...)
	cmd.Dir = filepath.Join(root, "specs") // as go test runs it: testdata/ is relative
	cmd.Env = append(os.Environ(), "HERD_BACKEND="+backend, "HERD_OVERLAY="+overlay, "HERD_ARTIFACTS="+arts,
		fmt.Sprintf("HERD_SEED=%d", seed))

	// The whole process group, so an interrupted run leaves no server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	r.Took = time.Since(start)
	os.WriteFile(filepath.Join(arts, "ginkgo.log"), out.Bytes(), 0o644)

	failed := firstFailure(filepath.Join(arts, "report.json"))
	switch {
	case failed != nil && m.Equivalent != "":
		r.Verdict = "error"
		r.KilledBy = specName(*failed)
		r.Message = "argued equivalent, but killed: the argument is wrong"
	case ctx.Err() != nil:
		r.Verdict = "error"
		r.Message = "no result within " + timeout.String() + " (a hang, or a machine too slow: run it again with -timeout)"
	case failed != nil:
		r.Verdict = "killed"
		r.KilledBy = specName(*failed)
		r.Message = oneLine(boilerplate.ReplaceAllString(failed.Failure.Message, " "))
	case runErr == nil && m.Equivalent != "":
		r.Verdict = "equivalent"
		r.Message = m.Equivalent
	case runErr == nil:
		r.Verdict = "survived"
	default:
		r.Verdict = "error"
		r.Message = oneLine(lastLines(out.String(), 3))
	}
	return r
}

// runUnit runs the herd's unit test that kills a mutant the suite cannot see.
func runUnit(ctx context.Context, root string, m Mutant, overlay string, r Result) Result {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-overlay", overlay, "-run", "^("+m.Unit+")$", "./herd/...", "./cmd/herd/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		r.Message = "the suite cannot see it (" + m.Why + "), and " + m.Unit + " passes with it too"
		return r
	}
	r.Verdict = "killed"
	r.KilledBy = "unit test " + m.Unit + " (the suite cannot see it: " + m.Why + ")"
	r.Message = oneLine(lastLines(string(out), 4))
	if l := testFailure.FindString(string(out)); l != "" {
		r.Message = oneLine(l)
	}
	return r
}

// testFailure is the first line go test prints for a failed check: "file_test.go:12: ...".
var testFailure = regexp.MustCompile(`\w+_test\.go:\d+: .*`)

// firstFailure is the earliest failed spec (or suite node) of a Ginkgo JSON report.
func firstFailure(path string) *types.SpecReport {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var reports []types.Report
	if json.Unmarshal(b, &reports) != nil {
		return nil
	}
	var first *types.SpecReport
	for _, rep := range reports {
		for i := range rep.SpecReports {
			s := &rep.SpecReports[i]
			if s.State.Is(types.SpecStateFailureStates) && (first == nil || s.StartTime.Before(first.StartTime)) {
				first = s
			}
		}
	}
	return first
}

func specName(s types.SpecReport) string {
	name := strings.TrimSpace(strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " "))
	if name == "" {
		name = s.LeafNodeType.String()
	}
	if s.Failure.FailureNodeType != types.NodeTypeIt && s.Failure.FailureNodeType != types.NodeTypeInvalid {
		name += " (in " + s.Failure.FailureNodeType.String() + ")"
	}
	return name
}

// boilerplate is what failure messages say that a table of verdicts need not repeat:
// the seed and artifacts folder (one campaign, one seed), Gomega's framing and types.
var boilerplate = regexp.MustCompile(`\(?seed \d+; artifacts in \S+\)?|Expected success, but got an error:|Unexpected error:|<[*\w.]+ \| 0x[0-9a-f]+>:?|<[*\w.]+>:?|\{\s*(s|errs): [\s\S]*occurred\s*$`)

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.Trim(s, " :;")
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

func printTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "mutant\t| verdict\t| killed by (spec)\t| message")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t| %s\t| %s\t| %s\n", r.Mutant, r.Verdict, r.KilledBy, r.Message)
	}
	tw.Flush()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from the herd's source tree")
	}
	return filepath.Dir(mod), nil
}
