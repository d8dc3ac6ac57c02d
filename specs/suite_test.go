// Package specs is the fault-tolerance suite: Ginkgo specs that start all five servers
// under testcontainers-go with every link through Toxiproxy, inject faults and assert what
// must stay true. Run it with `ginkgo ./specs` or `go test ./specs`.
//
// Environment:
//
//	HERD_SEED=N             replay a run: every random choice comes from this seed
//	HERD_DESCRIPTION=FILE   test another herd implementation described by FILE (see chaos.HerdSpec)
//	HERD_ARTIFACTS=DIR      where failed specs leave logs, history and faults (default ./artifacts)
//	HERD_BACKEND=local      run the servers as local processes with Toxiproxy in-process (no Docker)
//	HERD_BACKEND=sim        run our herd in this process on an in-memory network, in simulated time
//	HERD_OVERLAY=FILE       test our herd built with go build -overlay FILE (a mutant: see specs/mutants)
//	HERD_SHRINK=N           a failed random schedule is shrunk in at most N runs (default 20; 0: not)
package specs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/chaos/backends"
	"github.com/herdchaos/herd/containers"
)

var (
	cluster   *chaos.Cluster
	seed      uint64
	artifacts string
	names     = graph.names
)

func TestSpecs(t *testing.T) {
	RegisterFailHandler(Fail)
	suiteCfg, reporterCfg := GinkgoConfiguration()
	// One seed drives everything: Ginkgo's spec order and every random choice of ours.
	// HERD_SEED wins; otherwise Ginkgo's own (--seed) is used.
	seed = uint64(suiteCfg.RandomSeed)
	if s := os.Getenv("HERD_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			t.Fatalf("HERD_SEED=%q: want a whole number", s)
		}
		seed = n
	}
	suiteCfg.RandomSeed = int64(seed)
	if reporterCfg.JUnitReport == "" {
		reporterCfg.JUnitReport = filepath.Join(artifactsRoot(), "junit.xml")
	}
	if os.Getenv("HERD_BACKEND") == "sim" {
		runSimulated(t, func(t *testing.T) bool { return RunSpecs(t, "Herd fault tolerance", suiteCfg, reporterCfg) })
		return
	}
	RunSpecs(t, "Herd fault tolerance", suiteCfg, reporterCfg)
}

func artifactsRoot() string {
	if d := os.Getenv("HERD_ARTIFACTS"); d != "" {
		return d
	}
	abs, _ := filepath.Abs("artifacts")
	return abs
}

// herdOptions say which herd to start, whatever the backend.
type herdOptions struct {
	herd    chaos.HerdSpec
	env     map[string]string
	overlay string
}

// startHerd starts a herd on the chosen backend (HERD_BACKEND: containers, the default,
// or local) and removes it when the suite (or the container that called it) ends, even
// on interrupt.
func startHerd(ctx context.Context, o herdOptions) *chaos.Cluster {
	c := launchHerd(ctx, o)
	DeferCleanup(func(ctx SpecContext) {
		Expect(c.Backend().Close(ctx)).To(Succeed())
	}, NodeTimeout(2*time.Minute))
	return c
}

// launchHerd starts a herd; the caller removes it (Backend().Close).
func launchHerd(ctx context.Context, o herdOptions) *chaos.Cluster {
	start := time.Now()
	progress := func(s string) { GinkgoWriter.Printf("%6.1fs %s\n", time.Since(start).Seconds(), s) }
	backend := os.Getenv("HERD_BACKEND")
	if backend == "direct" {
		Fail("HERD_BACKEND=direct has no proxies, so no link faults: the suite runs on containers or local")
	}
	b, err := backends.Start(ctx, backend, backends.WithHerd(o.herd), backends.WithEnv(o.env),
		backends.WithBuildOverlay(o.overlay), backends.WithProgress(progress))
	if errors.Is(err, backends.ErrNoDocker) {
		err = fmt.Errorf("%w\n(no Docker here: HERD_BACKEND=local runs the suite with local processes)", err)
	}
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("herd start", time.Since(start).Round(time.Millisecond).String())
	c := chaos.NewCluster(b, seed)
	c.Claims = o.herd.Claims
	return c
}

var _ = BeforeSuite(func(ctx SpecContext) {
	artifacts = filepath.Join(artifactsRoot(), fmt.Sprintf("run-%d", seed))
	fmt.Fprintf(os.Stderr, "herd specs: seed %d (replay with HERD_SEED=%d); artifacts of failed specs go to %s\n", seed, seed, artifacts)
	AddReportEntry("seed", seed)

	if b := os.Getenv("HERD_BACKEND"); b == "" || b == "containers" {
		// testcontainers-go's banner (Docker's details, once per process, to its
		// process-wide logger, which Run leaves alone) goes with the suite's other output.
		tclog.SetDefault(log.New(GinkgoWriter, "", log.LstdFlags))
		cli, err := containers.NewDockerClient(ctx)
		Expect(err).NotTo(HaveOccurred(), "(no Docker here: HERD_BACKEND=local runs the suite with local processes)")
		swept, err := containers.SweepStale(ctx, cli)
		cli.Close()
		Expect(err).NotTo(HaveOccurred())
		if swept.Containers+swept.Networks > 0 {
			fmt.Fprintf(os.Stderr, "herd specs: removed %d containers and %d networks left by killed runs\n", swept.Containers, swept.Networks)
		}
	}

	if len(graph.names) < 2 || len(graph.links()) == 0 {
		Fail(fmt.Sprintf("the herd's graph has %d servers and %d links: the suite tests a herd of at least two linked servers", len(graph.names), len(graph.links())))
	}
	var opts herdOptions
	if path := os.Getenv("HERD_DESCRIPTION"); path != "" {
		spec, err := chaos.LoadHerdSpec(path)
		Expect(err).NotTo(HaveOccurred())
		opts.herd = spec
		fmt.Fprintf(os.Stderr, "herd specs: testing %q from %s\n", spec.Name, path)
	}
	if overlay := os.Getenv("HERD_OVERLAY"); overlay != "" {
		// A mutant: our herd with some source files replaced, to show the suite kills it.
		opts.overlay = overlay
		fmt.Fprintf(os.Stderr, "herd specs: testing our herd built with -overlay %s\n", overlay)
	}
	suiteHerd = opts
	cluster = launchHerd(ctx, opts)
	// The suite's herd may be replaced by a fresh one (see AfterEach): remove whichever
	// it is at the end.
	DeferCleanup(func(ctx SpecContext) {
		Expect(cluster.Backend().Close(ctx)).To(Succeed())
	}, NodeTimeout(2*time.Minute))
}, NodeTimeout(5*time.Minute))

// suiteHerd is how the suite's herd was started, to start a fresh one like it.
var suiteHerd herdOptions

// A plain summary line, for tools that read the last lines of a run.
var _ = ReportAfterSuite("summary", func(r Report) {
	passed, failed, skipped := 0, 0, 0
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			continue
		}
		switch {
		case s.State.Is(types.SpecStatePassed):
			passed++
		case s.State.Is(types.SpecStateFailureStates):
			failed++
		default:
			skipped++
		}
	}
	fmt.Printf("specs: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if restarts > 0 {
		fmt.Printf("specs: %d times a fresh herd replaced one that did not settle after a spec\n", restarts)
	}
	writeScorecard(r)
})

// writeScorecard prints one row per property of the herd (chaos.Properties) and saves it
// as scorecard.txt, .json and .html in the run's artifacts folder.
func writeScorecard(r Report) {
	var results []chaos.SpecResult
	var outside []string // failures of setup outside every spec (BeforeSuite: the herd did not start)
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			if s.State.Is(types.SpecStateFailureStates) {
				outside = append(outside, s.LeafNodeType.String()+": "+chaos.FirstLine(s.Failure.Message))
			}
			continue
		}
		res := chaos.SpecResult{Name: s.FullText(), Labels: s.Labels(), State: "skipped"}
		switch {
		case s.State.Is(types.SpecStatePassed):
			res.State = "passed"
		case s.State.Is(types.SpecStateFailureStates):
			res.State, res.Failure = "failed", s.Failure.Message
		}
		for _, e := range s.ReportEntries {
			if e.Name == "artifacts" {
				res.Artifacts = e.StringRepresentation()
			}
		}
		results = append(results, res)
	}
	herd := "our herd"
	if described != nil {
		herd = described.Name
	}
	sc := chaos.NewScorecard(herd, seed, results)
	sc.SuiteFailure = strings.Join(outside, "; ")
	var text bytes.Buffer
	sc.WriteText(&text)
	fmt.Print("\n" + text.String())
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "scorecard: %v\n", err)
		return
	}
	os.WriteFile(filepath.Join(artifacts, "scorecard.txt"), text.Bytes(), 0o644)
	if b, err := sc.JSON(); err == nil {
		os.WriteFile(filepath.Join(artifacts, "scorecard.json"), b, 0o644)
	}
	var page bytes.Buffer
	if sc.WriteHTML(&page) == nil {
		os.WriteFile(filepath.Join(artifacts, "scorecard.html"), page.Bytes(), 0o644)
	}
	fmt.Printf("scorecard: %s (also .json, .html)\n", filepath.Join(artifacts, "scorecard.txt"))
}

// Every spec starts and ends with a whole herd: faults healed, every server serving and
// connected again. A herd that does not settle fails the spec that left it so, and the
// next spec gets a fresh herd: one broken herd does not fail every spec after it.
var _ = AfterEach(func(ctx SpecContext) {
	if CurrentSpecReport().Failed() {
		saveArtifacts(ctx, cluster, specDir())
		if suite, _ := GinkgoConfiguration(); suite.FailFast {
			return // no spec follows (the mutation campaign): AfterSuite removes the herd as it is
		}
	}
	err := cluster.HealAndSettle(ctx, id("settle")+"-")
	if err == nil {
		return
	}
	if !CurrentSpecReport().Failed() {
		saveArtifacts(ctx, cluster, specDir())
	}
	restarts++
	fmt.Fprintf(os.Stderr, "herd specs: the herd did not settle after %q (%v): a fresh herd for the next spec (%d so far)\n",
		CurrentSpecReport().FullText(), err, restarts)
	// The old herd goes first, with time of its own: it must not outlive the run.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	closeErr := cluster.Backend().Close(cctx)
	cancel()
	cluster = launchHerd(ctx, suiteHerd)
	Expect(err).NotTo(HaveOccurred(), "after the spec, with every fault healed, the herd did not settle (an update at each server reaching every other): the next spec runs on a fresh herd (removing this one: %v); seed %d; artifacts in %s", closeErr, seed, specDir())
}, NodeTimeout(5*time.Minute))

// restarts counts the fresh herds the suite started after one did not settle.
var restarts int

// settle waits until an update from every server reaches all the others again, and fails
// the spec if one does not.
func settle(ctx context.Context, c *chaos.Cluster) {
	GinkgoHelper()
	Expect(trySettle(ctx, c)).To(Succeed(), "settling")
}

// trySettle sends an update at every server and waits until it reaches all the others.
func trySettle(ctx context.Context, c *chaos.Cluster) error {
	return c.Settle(ctx, id("settle")+"-")
}

// specDir is where the current spec's artifacts go if it fails.
func specDir() string {
	name := chaos.FileName(CurrentSpecReport().FullText())
	if len(name) > 120 {
		name = name[:120]
	}
	return filepath.Join(artifacts, name)
}

// check fails the spec on err, naming the artifacts folder.
func check(err error, what ...any) {
	GinkgoHelper()
	desc := fmt.Sprint(what...)
	if desc != "" {
		desc += ": "
	}
	if err == nil {
		return
	}
	// The error first: the first line of a failure is what a scorecard shows of it.
	Fail(fmt.Sprintf("%s%v\nseed %d; artifacts in %s", desc, err, seed, specDir()))
}

func saveArtifacts(ctx context.Context, c *chaos.Cluster, dir string) {
	if err := chaos.SaveArtifacts(ctx, c, dir); err != nil {
		GinkgoWriter.Printf("artifacts: %v\n", err)
	}
	AddReportEntry("artifacts", dir)
}

var counter int

// id is a client id unique to this run and spec.
func id(prefix string) string {
	counter++
	return fmt.Sprintf("%s-%x-%d", prefix, seed&0xffffff, counter)
}

// here is the location the suite's clients send when any will do, in the common format
// of docs/PROTOCOL.md (six fraction digits: a herd may reject the short forms we accept).
const here = "+34.068930-118.445127"

// now is a client time: this machine's clock, so diffs stay small, always increasing.
func now() string { return chaos.ClientTime() }

// longAgo is the whole seconds of a time years before now: older than any update of the
// run, whatever the clock (the sim backend's starts in 2000, where 2018 is the future).
func longAgo() string { return strconv.FormatInt(time.Now().Unix()-250_000_000, 10) }

// allLinks are every directed peer link of the herd.
func allLinks() []chaos.Link { return chaos.PeerLinks(cluster.Config()) }

func inject(ctx context.Context, f chaos.Fault) string {
	GinkgoHelper()
	fid, err := cluster.Inject(ctx, f)
	check(err, "injecting ", f)
	return fid
}

// update sends an IAMAT and waits until it reaches every server the oracle says it must;
// it also checks that no server cut off from it has it.
func update(ctx context.Context, origin string) chaos.Accepted {
	GinkgoHelper()
	u, err := cluster.Update(ctx, origin, id("c"), here, now())
	check(err)
	_, err = cluster.AwaitDelivery(ctx, u)
	check(err)
	check(cluster.CheckNotDelivered(ctx, u))
	return u
}

// described is the herd description under test (HERD_DESCRIPTION), if any.
var described = func() *chaos.HerdSpec {
	path := os.Getenv("HERD_DESCRIPTION")
	if path == "" {
		return nil
	}
	spec, err := chaos.LoadHerdSpec(path) // an error is reported by BeforeSuite
	if err != nil {
		return nil
	}
	return &spec
}()

// claims says whether the herd under test claims an extension beyond docs/PROTOCOL.md's
// common part (a choice marked "ours" there; the names are in the README): ours claims
// every one; a described herd those in its extensions ("all": every one).
func claims(ext string) bool {
	if described == nil {
		return os.Getenv("HERD_DESCRIPTION") == ""
	}
	return described.Claims(ext)
}

// oursOnly skips a spec of a property only our herd promises (our peer protocol, our
// limits, acknowledged means logged) unless the herd under test claims "ours" (or "all").
func oursOnly(property string) {
	GinkgoHelper()
	if !claims("ours") {
		Skip(property + " is a promise of our herd's; the herd under test, from " + os.Getenv("HERD_DESCRIPTION") + ", does not claim it")
	}
}

// processesOnly skips a spec that starts a herd from a description file: a program to
// run, which the sim backend (our herd compiled into the suite) cannot.
func processesOnly(property string) {
	GinkgoHelper()
	if os.Getenv("HERD_BACKEND") == "sim" {
		Skip(property + ": a described herd is a program to start, and the sim backend runs only the herd compiled into the suite (use local or containers)")
	}
}

// needs skips a spec (or the part of one) that tests an extension the herd does not claim.
func needs(ext, property string) {
	GinkgoHelper()
	if !claims(ext) {
		Skip(property + ": the extension " + ext + ", which the herd under test does not claim")
	}
}

// ownHerd starts a herd of its own, like the suite's (the same description or overlay),
// for a spec whose traffic must not stay in the suite's herd: the stall spec leaves 20 MB
// of client state and hundreds of MB of logs, which would slow every later resync over a
// slow link and every later failure's artifacts. It is removed after the container.
func ownHerd(ctx context.Context) *chaos.Cluster {
	GinkgoHelper()
	var opts herdOptions
	if path := os.Getenv("HERD_DESCRIPTION"); path != "" {
		spec, err := chaos.LoadHerdSpec(path)
		check(err)
		opts.herd = spec
	}
	opts.overlay = os.Getenv("HERD_OVERLAY")
	return startHerd(ctx, opts)
}

// ownHerdIn gives an Ordered container a herd of its own: started before its first spec,
// healed after each, its artifacts saved when one fails. It returns the herd's getter.
func ownHerdIn() func() *chaos.Cluster {
	var herd *chaos.Cluster
	BeforeAll(func(ctx SpecContext) {
		herd = ownHerd(ctx)
	}, NodeTimeout(3*time.Minute))
	AfterEach(func(ctx SpecContext) {
		if herd == nil { // skipped before it started
			return
		}
		if CurrentSpecReport().Failed() {
			saveArtifacts(ctx, herd, specDir()+"/own-herd")
		}
		check(herd.HealAll(ctx))
	}, NodeTimeout(time.Minute))
	return func() *chaos.Cluster { return herd }
}

// halfCloser is a connection that can close its sending side alone: TCP's, or the sim
// backend's in-memory one.
type halfCloser interface{ CloseWrite() error }
