package specs

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// The framework is not tied to our herd's command line: a herd described in a file is
// started, faulted and checked the same way.
var _ = Describe("A herd started from a description file", Ordered, Label("description"), func() {
	var other *chaos.Cluster
	BeforeAll(func(ctx SpecContext) {
		spec, err := chaos.LoadHerdSpec("testdata/herd-from-flags.yaml")
		check(err)
		other = startHerd(ctx, herdOptions{herd: spec})
	}, NodeTimeout(3*time.Minute))

	It("floods, answers WHATSAT correctly and survives a crash", func(ctx SpecContext) {
		u, err := other.Update(ctx, "Welsh", id("described"), "+34.068930-118.445127", now())
		check(err)
		got, err := other.AwaitDelivery(ctx, u)
		check(err)
		Expect(got).To(HaveLen(5))
		rep, err := other.WHATSAT(ctx, "Hands", u.Client, "10", 4)
		check(err)
		check(other.CheckWhatsat(ctx, "Hands", rep, u, "10", 4))

		fid, err := other.Inject(ctx, chaos.Crash{Node: "Holiday"})
		check(err)
		v, err := other.Update(ctx, "Goloman", id("described"), here, now())
		check(err)
		_, err = other.AwaitDelivery(ctx, v)
		check(err)
		check(other.CheckNotDelivered(ctx, v))
		check(other.Heal(ctx, fid))
		check(other.AwaitConvergence(ctx, map[string]string{u.Client: u.AT, v.Client: v.AT}, 15*time.Second))
	})
})
