package specs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/topology"
)

// The scenarios herdctl ships must stay valid and pass against a healthy herd.
var _ = Describe("The shipped scenarios", Label("scenarios", "survival"), func() {
	files, _ := filepath.Glob("../cmd/herdctl/scenarios/*.yaml")
	It("are shipped", func() { Expect(files).NotTo(BeEmpty()) })
	for _, f := range files {
		It("pass: "+strings.TrimSuffix(filepath.Base(f), ".yaml"), func(ctx SpecContext) {
			if def := newGraph(topology.Default("127.0.0.1")); !slices.Equal(graph.names, def.names) || !slices.Equal(graph.links(), def.links()) {
				Skip("the shipped scenarios name the five servers and links of docs/PROTOCOL.md; this herd's graph is another")
			}
			sc, err := chaos.LoadScenario(f, cluster.Config())
			check(err)
			verdict, err := chaos.RunScenario(ctx, cluster, sc, func(s string) { GinkgoWriter.Println(s) })
			check(err, f)
			Expect(verdict.Checks).NotTo(BeEmpty(), "a scenario that checks nothing")
			for _, cr := range verdict.Checks {
				Expect(cr.OK).To(BeTrue(), "%s line %d: check %s failed: %s (seed %d; artifacts in %s)", f, cr.Line, cr.Check, cr.Error, seed, specDir())
			}
			if os.Getenv("HERD_KEEP_TIMELINES") != "" {
				out, _ := os.Create(filepath.Join(artifactsRoot(), filepath.Base(f)+".html"))
				chaos.WriteTimeline(out, sc.Name, cluster.Nodes(), cluster.History)
				out.Close()
			}
		}, NodeTimeout(3*time.Minute))
	}
})
