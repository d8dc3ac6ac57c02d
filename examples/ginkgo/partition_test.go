package ginkgo

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

var _ = Describe("a herd split in two", func() {
	It("floods an update within its side only, and everywhere once healed", func(ctx SpecContext) {
		split, err := h.Inject(ctx, chaos.Partition{Groups: [][]string{{"Goloman", "Hands", "Holiday"}, {"Welsh", "Wilkes"}}})
		Expect(err).NotTo(HaveOccurred())

		u := h.Update(ctx, "Hands", h.ClientID("phone"), "+34.068930-118.445127")
		_, err = h.AwaitDelivery(ctx, u) // every server Hands can reach, in time
		Expect(err).NotTo(HaveOccurred())
		Expect(h.CheckNotDelivered(ctx, u)).To(Succeed()) // and not Welsh or Wilkes

		Expect(h.Heal(ctx, split)).To(Succeed())
		Expect(h.AwaitConverged(ctx, 20*time.Second)).To(Succeed())
	})
})

var _ = Describe("a crashed server", func() {
	It("does not keep the others from getting an update", func(ctx SpecContext) {
		_, err := h.Inject(ctx, chaos.Crash{Node: "Holiday"})
		Expect(err).NotTo(HaveOccurred())

		u := h.Update(ctx, "Goloman", h.ClientID("watch"), "-33.868820+151.209296")
		_, err = h.AwaitDelivery(ctx, u) // every running server
		Expect(err).NotTo(HaveOccurred())

		// No heal here: ResetAfter, in AfterEach, restarts Holiday and settles the herd
		// for the next spec.
	})
})
