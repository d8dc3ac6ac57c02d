package specs

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	. "github.com/onsi/ginkgo/v2"
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
	stop := make(chan struct{})
	defer close(stop)
	go watchClock(stop, clockStall)
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
	synctest.Test(t, func(t *testing.T) {
		ticking := make(chan struct{})
		go tick(ticking)
		passed = run(t)
		close(ticking)
	})
}

// The simulated clock's progress, as the watchdog outside the bubble sees it: tick
// counts tenths of simulated seconds, and the spec running is noted before each.
var (
	ticks       atomic.Int64
	runningSpec atomic.Value
)

var _ = ReportBeforeEach(func(r SpecReport) { runningSpec.Store(r.FullText()) })

// clockStall is how long the simulated clock may stand still in wall time.
const clockStall = time.Minute

func tick(stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
			ticks.Add(1)
		}
	}
}

// watchClock ends the process when the simulated clock has not moved for stall of wall
// time. In a bubble the clock moves only when every goroutine waits on a channel, a timer
// or the in-memory network; one waiting on a mutex that another holds while it waits for
// the network or a timer (a lock held across I/O) stops it for good, and the suite would
// hang. The stacks of the goroutines waiting on a mutex say where.
func watchClock(stop chan struct{}, stall time.Duration) {
	last, since := ticks.Load(), time.Now()
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Second):
		}
		if n := ticks.Load(); n != last {
			last, since = n, time.Now()
			continue
		}
		if time.Since(since) < stall {
			continue
		}
		buf := make([]byte, 64<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var locked []string
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("[sync.Mutex.Lock")) || bytes.Contains(g, []byte("[sync.RWMutex.")) {
				locked = append(locked, string(g))
			}
		}
		spec, _ := runningSpec.Load().(string)
		fmt.Fprintf(os.Stderr, "\nherd specs (sim): the simulated clock has not moved for %v of wall time, in %q.\n"+
			"In simulated time a goroutine waiting on a mutex held by one that waits on the network or a timer\n"+
			"stops the clock: a lock held across I/O. The %d goroutines waiting on a mutex:\n\n%s\n",
			stall, spec, len(locked), strings.Join(locked, "\n\n"))
		os.WriteFile(filepath.Join(artifactsRoot(), "sim-clock-stopped.txt"), buf, 0o644)
		os.Exit(1)
	}
}
