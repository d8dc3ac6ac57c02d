// Package ginkgo is the herd tested from a Ginkgo suite in a user's module: one herd for
// the whole suite (herdtest.Start(GinkgoT()) in BeforeSuite, removed after the suite), and
// after each spec herdtest's ResetAfter heals what the spec left, settles the herd, and
// saves a failed spec's artifacts. Run it from examples/ with
//
//	go tool ginkgo ./ginkgo                          (containers; make examples)
//	HERD_BACKEND=local go tool ginkgo ./ginkgo       (local processes, no Docker)
//	go test ./ginkgo                                 (the same through go test)
package ginkgo

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos/herdtest"
)

func TestHerd(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "The herd from a user's Ginkgo suite")
}

// h is the suite's herd; every spec uses it, with client ids of its own (h.ClientID).
var h *herdtest.Herd

var _ = BeforeSuite(func() {
	// The random choices follow Ginkgo's seed (--seed), so a run can be replayed.
	seed := uint64(GinkgoRandomSeed())
	h = herdtest.Start(GinkgoT(), herdtest.WithBackend(os.Getenv("HERD_BACKEND")), herdtest.WithSeed(seed))
})

var _ = AfterEach(func(ctx SpecContext) {
	h.ResetAfter(ctx, GinkgoT())
})
