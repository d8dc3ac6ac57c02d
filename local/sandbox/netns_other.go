//go:build !linux

package sandbox

import (
	"context"
	"net"
	"os/exec"
)

// Prefix starts the name of every namespace this package makes.
const Prefix = "herdchaos"

// NS is a network namespace (Linux only).
type NS struct{ Name string }

// Spec says what a sandbox's /etc holds.
type Spec struct {
	Hostname string
	CAPEM    []byte
}

// Create fails: network namespaces are Linux only.
func Create(Spec) (*NS, error) { return nil, errNotLinux }

func (*NS) Listen(string) (net.Listener, error) { return nil, errNotLinux }
func (*NS) Dialer(string) func(context.Context) (net.Conn, error) {
	return func(context.Context) (net.Conn, error) { return nil, errNotLinux }
}
func (*NS) Command(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
func (*NS) Remove() error                                 { return nil }

// Sweep has nothing to do.
func Sweep() (int, error) { return 0, nil }
