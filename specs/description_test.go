package specs

import (
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// The framework is not tied to our herd's command line: a herd described in a file is
// started, faulted and checked the same way, whatever its servers, links and ports.
var _ = describedHerd("testdata/herd-from-flags.yaml")

// Six servers of other names and links, fixed ports, neighbours dialled on loopback.
var _ = describedHerd("testdata/herd-sandboxed.yaml")

func describedHerd(path string) bool {
	return Describe("A herd started from a description file ("+path+")", Ordered, Label("description", "ours"), func() {
		var other *chaos.Cluster
		var g herdGraph
		BeforeAll(func(ctx SpecContext) {
			oursOnly("the framework starting our herd from " + path)
			processesOnly("the framework starting our herd from " + path)
			spec, err := chaos.LoadHerdSpec(path)
			check(err)
			if spec.Sandboxed() && os.Getenv("HERD_BACKEND") == "local" && os.Geteuid() != 0 {
				Skip("a herd that dials its neighbours on loopback needs network namespaces of its own: on the local backend, root")
			}
			other = startHerd(ctx, herdOptions{herd: spec, overlay: os.Getenv("HERD_OVERLAY")})
			g = newGraph(other.Config())
		}, NodeTimeout(3*time.Minute))

		It("floods, answers WHATSAT correctly and survives a crash", func(ctx SpecContext) {
			u, err := other.Update(ctx, g.leaf(), id("described"), here, now())
			check(err)
			got, err := other.AwaitDelivery(ctx, u)
			check(err)
			Expect(got).To(HaveLen(len(g.names)))
			far := g.far(g.leaf())
			rep, err := other.WHATSAT(ctx, far, u.Client, "10", 4)
			check(err)
			check(other.CheckWhatsat(ctx, far, rep, u, "10", 4))

			fid, err := other.Inject(ctx, chaos.Crash{Node: g.hub()})
			check(err)
			v, err := other.Update(ctx, g.other(g.hub()), id("described"), here, now())
			check(err)
			_, err = other.AwaitDelivery(ctx, v)
			check(err)
			check(other.CheckNotDelivered(ctx, v))
			check(other.Heal(ctx, fid))
			check(other.AwaitConvergence(ctx, map[string]string{u.Client: u.AT, v.Client: v.AT}, 15*time.Second))
		})
	})
}
