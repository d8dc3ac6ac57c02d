package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/moby/moby/client"
)

// Swept counts what a sweep removed.
type Swept struct{ Containers, Networks int }

// Sweep removes the containers and networks of run runID, or of every run when runID is
// "" (what killed runs left behind). Images are kept: they are the build cache.
func Sweep(ctx context.Context, cli *client.Client, runID string) (Swept, error) {
	f := client.Filters{}.Add("label", labelManaged+"=true")
	if runID != "" {
		f = f.Add("label", labelRun+"="+runID)
	}
	return sweepFiltered(ctx, cli, f)
}

// sweepFiltered removes the containers, then the networks, that filter f selects.
func sweepFiltered(ctx context.Context, cli *client.Client, f client.Filters) (Swept, error) {
	var s Swept
	var errs []error
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return s, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range list.Items {
		if _, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
			continue
		}
		s.Containers++
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return s, errors.Join(append(errs, fmt.Errorf("listing networks: %w", err))...)
	}
	for _, n := range nets.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
			errs = append(errs, err)
			continue
		}
		s.Networks++
	}
	return s, errors.Join(errs...)
}

// SweepAll connects to Docker and sweeps every run.
func SweepAll(ctx context.Context) (Swept, error) {
	cli, err := NewDockerClient(ctx)
	if err != nil {
		return Swept{}, err
	}
	defer cli.Close()
	return Sweep(ctx, cli, "")
}

// SweepStale removes the runs whose owning process on this machine is gone: what an
// interrupted or killed run left behind. Live runs, other machines' runs and detached
// herds (herdctl up) are left alone.
func SweepStale(ctx context.Context, cli *client.Client) (Swept, error) {
	all, err := Managed(ctx, cli)
	if err != nil {
		return Swept{}, err
	}
	host, _ := os.Hostname()
	stale := map[string]bool{}
	for _, r := range all {
		pid, err := strconv.Atoi(r.PID)
		if err != nil || pid <= 0 || r.Host != host {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			stale[r.Run] = true
		}
	}
	var total Swept
	var errs []error
	for run := range stale {
		s, err := Sweep(ctx, cli, run)
		total.Containers += s.Containers
		total.Networks += s.Networks
		errs = append(errs, err)
	}
	return total, errors.Join(errs...)
}

// Resource is a container or network the framework made.
type Resource struct {
	Kind, ID, Name string // Kind: "container" or "network"
	Run, PID, Host string // its labels: the run, and the process that owns it and its machine
}

// Managed lists every container and network the framework made that exists now.
func Managed(ctx context.Context, cli *client.Client) ([]Resource, error) {
	f := client.Filters{}.Add("label", labelManaged+"=true")
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var out []Resource
	for _, c := range list.Items {
		name := c.ID
		if len(c.Names) > 0 {
			name = c.Names[0]
		}
		out = append(out, Resource{Kind: "container", ID: c.ID, Name: name, Run: c.Labels[labelRun], PID: c.Labels[labelPID], Host: c.Labels[labelHost]})
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets.Items {
		out = append(out, Resource{Kind: "network", ID: n.ID, Name: n.Name, Run: n.Labels[labelRun], PID: n.Labels[labelPID], Host: n.Labels[labelHost]})
	}
	return out, nil
}
