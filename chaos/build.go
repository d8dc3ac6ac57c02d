package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/herdchaos/herd/herd/client"
)

// SourceRoot finds the herd's source tree (the module that holds cmd/herd) from the
// working directory, so backends build our herd from the code they run with.
func SourceRoot(ctx context.Context) (string, error) {
	hasHerd := func(root string) bool { // this module, not any with a cmd/herd
		b, err := os.ReadFile(filepath.Join(root, "go.mod"))
		m := modulePath.FindSubmatch(b)
		return err == nil && m != nil && string(m[1]) == ModulePath
	}
	// This module (the repository's own suite and tools)...
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the herd source tree (go env GOMOD): %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod != "" && mod != os.DevNull && hasHerd(filepath.Dir(mod)) {
		return filepath.Dir(mod), nil
	}
	// ...or a module that requires it (a user's tests): the herd module's own folder, in
	// the module cache or where a replace directive points.
	out, err = exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", ModulePath).Output()
	if dir := strings.TrimSpace(string(out)); err == nil && dir != "" && hasHerd(dir) {
		return dir, nil
	}
	return "", fmt.Errorf("building our herd needs its source: run from the herd's source tree or from a module that requires %s, or describe another herd", ModulePath)
}

// ModulePath is this module's path, which a user's module requires.
const ModulePath = "github.com/herdchaos/herd"

var modulePath = regexp.MustCompile(`(?m)^module\s+(\S+)\s*$`)

// GoBuild compiles package pkg of the tree at root into out, with extra environment
// (GOOS=linux CGO_ENABLED=0 for an image) and, when overlay is not "", the source files
// that go build's -overlay file replaces (the mutants of specs/mutants).
func GoBuild(ctx context.Context, root, pkg, out string, env []string, overlay string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// WaitServing waits until the server at addr answers the protocol: a WHATSAT for a
// client nobody has, which any herd answers without changing its state. alive, if not
// nil, says why waiting is pointless (the server exited).
func WaitServing(ctx context.Context, name, addr string, within time.Duration, alive func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if alive != nil {
			if err := alive(pctx); err != nil {
				cancel()
				return fmt.Errorf("server %s: %w", name, err)
			}
		}
		out, err := client.Exchange(pctx, addr, "WHATSAT herd-chaos-probe 1 1\n")
		cancel()
		if err == nil && out != "" {
			return nil
		}
		if err == nil {
			err = errors.New("no answer yet")
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("server %s: not serving within %v: %w", name, within, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
