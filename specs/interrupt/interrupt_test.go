// Package interrupt interrupts the suite on the containers backend at seeded moments, as
// a user does (Ctrl-C in a terminal signals the whole process group; some press it twice;
// some processes are killed), and checks that every container and network the run made
// is gone afterwards: the README promises that a run removes its own, Ctrl-C included.
//
// It runs the suite many times, so it runs only when asked:
//
//	HERD_INTERRUPTS=1 go test ./specs/interrupt     (make interrupts, part of make test)
//
// HERD_INTERRUPTS_SEED replays a failing run; HERD_INTERRUPTS (a number > 1) sets how
// many interruptions (default 20).
package interrupt

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/herdchaos/herd/containers"
)

// A moment is when and how one run is interrupted.
type moment struct {
	after  time.Duration // from the start of the run
	how    string        // "ctrl-c", "ctrl-c twice" (Ginkgo then skips its cleanup), "kill"
	second time.Duration // for "ctrl-c twice": the second, after the first
}

func (m moment) String() string {
	if m.how == "ctrl-c twice" {
		return fmt.Sprintf("%s at %v and %v later", m.how, m.after.Round(time.Millisecond), m.second.Round(time.Millisecond))
	}
	return fmt.Sprintf("%s at %v", m.how, m.after.Round(time.Millisecond))
}

// moments draws n interruptions from seed, spread over the phases of a run: the images'
// build and the herd's start (the first seconds), the first specs, later specs (a fresh
// herd may be starting), and cleanup (a second Ctrl-C while the first one's cleanup runs).
func moments(seed uint64, n int) []moment {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	uniform := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo))) }
	hows := []string{"ctrl-c", "ctrl-c", "ctrl-c twice", "kill"}
	var out []moment
	for i := range n {
		var m moment
		switch i % 4 {
		case 0:
			m.after = uniform(0, 4*time.Second)
		case 1:
			m.after = uniform(4*time.Second, 15*time.Second)
		default:
			m.after = uniform(15*time.Second, 60*time.Second)
		}
		m.how = hows[r.IntN(len(hows))]
		m.second = uniform(50*time.Millisecond, 3*time.Second)
		out = append(out, m)
	}
	return out
}

func TestInterruptedRunsLeaveNoContainerAndNoNetwork(t *testing.T) {
	runs := 20
	switch v := os.Getenv("HERD_INTERRUPTS"); v {
	case "":
		t.Skip("runs the suite 20 times on the containers backend: HERD_INTERRUPTS=1 (make interrupts)")
	case "1":
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HERD_INTERRUPTS=%q: want 1 or a number of runs", v)
		}
		runs = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HERD_INTERRUPTS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("HERD_INTERRUPTS_SEED=%q: %v", s, err)
		}
	}
	t.Logf("seed %d (replay: HERD_INTERRUPTS=%d HERD_INTERRUPTS_SEED=%d go test ./specs/interrupt)", seed, runs, seed)

	ctx := context.Background()
	cli, err := containers.NewDockerClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// Ginkgo's own command line runs the suite, as a user's terminal does: the CLI and
	// the suite's process are one process group, and both get the signal.
	// The suite's binary goes beside its sources: Ginkgo runs a compiled suite in the
	// folder it lies in, and the suite reads testdata/ from there.
	dir := t.TempDir()
	ginkgo, suite := filepath.Join(dir, "ginkgo"), filepath.Join("..", fmt.Sprintf("interrupt-%d.test", os.Getpid()))
	t.Cleanup(func() { os.Remove(suite) })
	for _, build := range [][]string{
		{"go", "build", "-o", ginkgo, "github.com/onsi/ginkgo/v2/ginkgo"},
		{"go", "test", "-c", "-o", suite, "../"},
	} {
		if out, err := exec.Command(build[0], build[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(build, " "), err, out)
		}
	}

	for i, m := range moments(seed, runs) {
		before, err := containers.Managed(ctx, cli)
		if err != nil {
			t.Fatal(err)
		}
		existed := map[string]bool{}
		for _, r := range before {
			existed[r.ID] = true
		}
		phase, pids, err := interrupt(ginkgo, suite, filepath.Join(dir, strconv.Itoa(i)), seed+uint64(i), m)
		if err != nil {
			t.Fatalf("run %d (%v): %v", i+1, m, err)
		}
		// What the run made must be gone once it has ended: by its own cleanup, or by its
		// reaper, which watches a few seconds more for what Docker was still creating.
		var left []containers.Resource
		deadline := time.Now().Add(90 * time.Second)
		for {
			now, err := containers.Managed(ctx, cli)
			if err != nil {
				t.Fatal(err)
			}
			left = left[:0]
			for _, r := range now {
				// This run's: made by one of its processes (another run on this Docker, a
				// herd that is up, is none of this test's business).
				if !existed[r.ID] && pids[r.PID] {
					left = append(left, r)
				}
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("run %d: %v, during %q: %d containers and networks left", i+1, m, phase, len(left))
		if len(left) > 0 {
			var names []string
			for _, r := range left {
				names = append(names, r.Kind+" "+r.Name+" (run "+r.Run+", process "+r.PID+")")
			}
			sweep(ctx, cli, left)
			t.Errorf("run %d (%v, during %q, HERD_SEED=%d) left, 90 s after it ended: %s", i+1, m, phase, seed+uint64(i), strings.Join(names, "; "))
		}
	}
}

// interrupt runs the suite and interrupts it at moment m; it returns the last line the
// run printed before the interruption (the phase it was in) and the pids of the run's
// processes (its process group, as seen every half second and at the interruption).
func interrupt(ginkgo, suite, arts string, seed uint64, m moment) (string, map[string]bool, error) {
	cmd := exec.Command(ginkgo, "run", "--no-color", suite)
	cmd.Env = append(os.Environ(), "HERD_BACKEND=containers", "HERD_ARTIFACTS="+arts, fmt.Sprintf("HERD_SEED=%d", seed))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	pids := map[string]bool{}
	watch := func() {
		for _, p := range groupPIDs(cmd.Process.Pid) {
			pids[strconv.Itoa(p)] = true
		}
	}
	var mu sync.Mutex
	last := "(nothing printed yet)"
	specs := 0 // Ginkgo prints a • per passed spec, on one line: count them as they come
	go func() {
		r := bufio.NewReader(out)
		var line strings.Builder
		for {
			c, _, err := r.ReadRune()
			if err != nil {
				break
			}
			mu.Lock()
			switch {
			case c == '\n':
				if l := strings.TrimSpace(line.String()); l != "" {
					last = l
				}
				line.Reset()
			case c == '•':
				specs++
			default:
				line.WriteRune(c)
			}
			mu.Unlock()
		}
		io.Copy(io.Discard, out)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	group := -cmd.Process.Pid
	deadline := time.After(m.after)
	for waiting := true; waiting; {
		watch()
		select {
		case <-exited:
			return "", nil, fmt.Errorf("the suite ended by itself before %v: make the moments earlier", m.after)
		case <-deadline:
			waiting = false
		case <-time.After(500 * time.Millisecond):
		}
	}
	watch()
	mu.Lock()
	phase := fmt.Sprintf("%d specs passed; the last line: %s", specs, last)
	mu.Unlock()
	switch m.how {
	case "kill":
		syscall.Kill(group, syscall.SIGKILL)
	case "ctrl-c twice":
		syscall.Kill(group, syscall.SIGINT)
		time.Sleep(m.second)
		syscall.Kill(group, syscall.SIGINT)
	default:
		syscall.Kill(group, syscall.SIGINT)
	}
	select {
	case <-exited:
		return phase, pids, nil
	case <-time.After(3 * time.Minute):
		syscall.Kill(group, syscall.SIGKILL)
		<-exited
		return phase, pids, fmt.Errorf("still running 3 minutes after %s", m.how)
	}
}

// groupPIDs are the processes of process group pgid now (field 5 of /proc/PID/stat).
func groupPIDs(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces, so count after its ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) {
			out = append(out, pid)
		}
	}
	return out
}

// sweep removes what a failed run left, so the next run starts clean.
func sweep(ctx context.Context, cli *client.Client, left []containers.Resource) {
	for _, r := range left {
		if r.Kind == "container" {
			cli.ContainerRemove(ctx, r.ID, client.ContainerRemoveOptions{Force: true})
		}
	}
	for _, r := range left {
		if r.Kind == "network" {
			cli.NetworkRemove(ctx, r.ID, client.NetworkRemoveOptions{})
		}
	}
}
