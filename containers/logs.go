package containers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"github.com/herdchaos/herd/chaos"
)

// Logs implements chaos.Backend: the server's output and its log files.
func (h *Herd) Logs(ctx context.Context, name string) (map[string][]byte, error) {
	n, err := h.node(name)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	var errs []error
	if rc, err := h.cli.ContainerLogs(ctx, n.Server, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
		var t chaos.Tail
		_, err := stdcopy.StdCopy(&t, &t, rc)
		rc.Close()
		out["stderr"] = t.Bytes()
		errs = append(errs, err)
	} else {
		errs = append(errs, err)
	}
	for _, f := range n.LogFiles {
		b, err := h.copyFile(ctx, n.Server, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		out[f] = b
	}
	return out, errors.Join(errs...)
}

// copyFile reads the end of one file out of a container (running or not): chaos.LogLimit.
func (h *Herd) copyFile(ctx context.Context, id, path string) ([]byte, error) {
	res, err := h.cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return nil, err
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return nil, err
	}
	var t chaos.Tail
	_, err = io.Copy(&t, tr)
	return t.Bytes(), err
}
