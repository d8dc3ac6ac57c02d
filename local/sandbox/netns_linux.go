//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace this package makes: Prefix-PID-N, PID being
// the process that made it (Sweep removes those of processes that are gone).
const Prefix = "herdchaos"

// NS is a network namespace made for one server, with its own /etc files for
// `ip netns exec`.
type NS struct {
	Name string
	fd   *os.File // /run/netns/NAME, for entering it from this process
}

// Spec says what a sandbox's /etc holds.
type Spec struct {
	// Hostname resolves to its loopback (the server's own name, say); GoogleHosts always do.
	Hostname string
	// CAPEM, if set, replaces the trusted certificate bundle (/etc/ssl) inside.
	CAPEM []byte
}

// made numbers the namespaces of this process.
var made atomic.Int64

// Create makes a namespace (named Prefix-PID-N) with its loopback up and its /etc files.
func Create(spec Spec) (_ *NS, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a server that dials its neighbours at localhost on fixed ports runs in a network namespace of its own, which needs root here (ip netns add, and ip netns exec's bind mounts of /etc/hosts, /etc/resolv.conf, /etc/ssl); run as root, or describe the herd with ports it is told (no dial: loopback)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("sandbox: the ip command (Debian package iproute2) is needed for network namespaces")
	}
	name := fmt.Sprintf("%s-%d-%d", Prefix, os.Getpid(), made.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	ns := &NS{Name: name}
	defer func() {
		if err != nil {
			ns.Remove()
		}
	}()
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip -n %s link set lo up: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	if ns.fd, err = os.Open(filepath.Join("/run/netns", name)); err != nil {
		return nil, err
	}
	etc := filepath.Join("/etc/netns", name)
	hosts := "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.0.1 " + strings.Join(GoogleHosts, " ")
	if spec.Hostname != "" {
		hosts += " " + spec.Hostname
	}
	files := map[string][]byte{
		"hosts": []byte(hosts + "\n"),
		// No name server answers inside: every other name fails at once.
		"resolv.conf": []byte("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"),
	}
	if spec.CAPEM != nil {
		files["ssl/certs/ca-certificates.crt"] = spec.CAPEM
		files["ssl/cert.pem"] = spec.CAPEM
	}
	for f, b := range files {
		p := filepath.Join(etc, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// in runs fn on a thread that has entered the namespace; sockets fn makes stay in it.
func (ns *NS) in(fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(int(ns.fd.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering %s: %w", ns.Name, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so it dies with this goroutine instead of serving
		// others in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("leaving %s: %w", ns.Name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Listen listens on addr inside the namespace.
func (ns *NS) Listen(addr string) (ln net.Listener, err error) {
	err = ns.in(func() error {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// Dialer is a dial function for NewRelay to addr inside the namespace.
func (ns *NS) Dialer(addr string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (c net.Conn, err error) {
		err = ns.in(func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, "tcp", addr)
			return err
		})
		return c, err
	}
}

// Command is name args run inside the namespace (ip netns exec), with its /etc files.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Remove deletes the namespace and its /etc files.
func (ns *NS) Remove() error {
	if ns.fd != nil {
		ns.fd.Close()
	}
	var errs []error
	if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
		errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns.Name, err, strings.TrimSpace(string(out))))
	}
	errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", ns.Name)))
	return errors.Join(errs...)
}

// Sweep removes the namespaces (and /etc files) of runs whose process is gone, and says
// how many.
func Sweep() (int, error) {
	if os.Geteuid() != 0 {
		return 0, nil
	}
	seen := map[string]bool{}
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			seen[e.Name()] = true
		}
	}
	n := 0
	var errs []error
	for name := range seen {
		f := strings.Split(name, "-")
		if len(f) != 3 || f[0] != Prefix {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil || pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		ns := &NS{Name: name}
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
			errs = append(errs, os.RemoveAll(filepath.Join("/etc/netns", name)))
		} else if err := ns.Remove(); err != nil {
			errs = append(errs, err)
		}
		n++
	}
	return n, errors.Join(errs...)
}
