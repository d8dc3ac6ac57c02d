package specs

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
)

// runSimulated runs the suite inside a testing/synctest bubble (HERD_BACKEND=sim). The
// sim backend's herd waits only on its in-memory network and on timers, as the suite
// does, so whenever everything waits the bubble's fake clock jumps to the next timer:
// the suite's minutes of faults and timeouts pass in seconds.
func runSimulated(t *testing.T, run func(*testing.T) bool) {
	// The first signal.Notify of a process starts the runtime's signal loop, whose
	// channels must not belong to the bubble: Ginkgo's own Notify (in RunSpecs) would
	// then wait on them forever. Register once outside it.
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	signal.Stop(c)
	passed := false
	defer func() {
		// Ginkgo v2 never stops its interrupt handler's goroutine, which waits on
		// channels made in the bubble; when the bubble's main goroutine returns,
		// synctest reports it as a deadlock. That report, and only it, is expected.
		if r := recover(); r != nil && !strings.Contains(fmt.Sprint(r), "blocked goroutines remain") {
			panic(r)
		}
		if !passed {
			t.Fail()
		}
	}()
	synctest.Test(t, func(t *testing.T) { passed = run(t) })
}
