package containers

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// The reaper removes what a process's herds left when the process ends: a clean exit,
// Ctrl-C (the terminal signals the whole process group, and a second Ctrl-C makes Ginkgo
// skip its cleanup), SIGKILL, a panic. (Not when the whole session or cgroup is killed at
// once, as a CI job's timeout may do: then the next run's sweep of stale runs does it.)
// It is this same executable run again in a session of its own, so the terminal's
// signals do not reach it; it holds the read end of a pipe whose write end only its owner
// holds, and the pipe's end of file is its owner's exit. It then removes every container and network labelled with the owner's pid
// and host, and watches a while longer for what Docker was still creating when the owner
// died. Ryuk does the same for testcontainers, but its image cannot be pulled here.
//
// In the reaper, the executable's main (or its tests) never runs: init below takes over
// once the packages containers imports are initialised, and only when reaperEnv is set,
// which no one but startReaper sets.

const reaperEnv = "HERD_CHAOS_REAPER_FOR" // the owner's pid

var (
	reaperOnce sync.Once
	reaperErr  error
)

func init() {
	if owner := os.Getenv(reaperEnv); owner != "" {
		os.Exit(reap(owner))
	}
}

// startReaper starts this process's reaper, once. Without one (it could not start), a
// run still removes its own at its end, and the next run sweeps what a killed one left.
func startReaper() error {
	reaperOnce.Do(func() {
		exe := "/proc/self/exe" // this very binary, even if its file was removed (go run)
		if _, err := os.Stat(exe); err != nil {
			if exe, err = os.Executable(); err != nil {
				reaperErr = fmt.Errorf("the reaper: %w", err)
				return
			}
		}
		r, w, err := os.Pipe()
		if err != nil {
			reaperErr = fmt.Errorf("the reaper: %w", err)
			return
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), reaperEnv+"="+strconv.Itoa(os.Getpid()))
		cmd.Stdin = r
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			cmd.Stderr = os.Stderr // a terminal: it says what it removed; a pipe it would hold open
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			r.Close()
			w.Close()
			reaperErr = fmt.Errorf("the reaper: %w", err)
			return
		}
		r.Close()
		reaperPipe = w // held open, never written: closed by the kernel when this process ends
		go cmd.Wait()  // it outlives us when we end first; reap it if it ends first
	})
	return reaperErr
}

var reaperPipe *os.File

// Reaping after the owner's end: until nothing was found for reapQuiet, at most reapFor.
const (
	reapEvery = 500 * time.Millisecond
	reapQuiet = 5 * time.Second
	reapFor   = 2 * time.Minute
)

// reap is the reaper's whole life; it returns its exit code.
func reap(owner string) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
	io.Copy(io.Discard, os.Stdin) // until the owner is gone
	host, _ := os.Hostname()
	ctx, cancel := context.WithTimeout(context.Background(), reapFor)
	defer cancel()
	cli, err := NewDockerClient(ctx)
	if err != nil {
		return 0 // no Docker, nothing of ours in it
	}
	defer cli.Close()
	f := client.Filters{}.Add("label", labelManaged+"=true").Add("label", labelPID+"="+owner).Add("label", labelHost+"="+host)
	var total Swept
	lastFound := time.Now()
	for time.Since(lastFound) < reapQuiet && ctx.Err() == nil {
		s, err := sweepFiltered(ctx, cli, f)
		if s.Containers+s.Networks > 0 || err != nil {
			lastFound = time.Now()
		}
		total.Containers += s.Containers
		total.Networks += s.Networks
		select {
		case <-ctx.Done():
		case <-time.After(reapEvery):
		}
	}
	if total.Containers+total.Networks > 0 {
		fmt.Fprintf(os.Stderr, "herd-chaos: removed %d containers and %d networks that process %s left running\n",
			total.Containers, total.Networks, owner)
	}
	return 0
}
