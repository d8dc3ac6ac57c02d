// Package sandbox gives one server of a herd under test a network of its own, so that a
// herd written with fixed ports that dials its neighbours at localhost runs unmodified:
//
//   - a network namespace with only a loopback (nothing it sends can leave the machine);
//   - inside it, a relay on each neighbour's fixed port to that neighbour's link (its
//     Toxiproxy proxy), and a relay from outside to the server's own port;
//   - Google's Places host names resolving to its loopback, where a relay speaks TLS with a
//     certificate from a CA made for the run (trusted there through the system bundle,
//     SSL_CERT_FILE and REQUESTS_CA_BUNDLE) and forwards to the Places emulator; every
//     other name fails to resolve.
//
// Namespaces are made with iproute2 (`ip netns add`), so that `ip netns exec` also gives
// the server its own /etc/hosts, /etc/resolv.conf and /etc/ssl: it needs root (or
// CAP_SYS_ADMIN and CAP_NET_ADMIN). Without them Create says so.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// GoogleHosts are the names a herd may have hard-coded for the Places API (legacy Nearby
// Search and Places API (New)); inside a sandbox they are the emulator.
var GoogleHosts = []string{"maps.googleapis.com", "places.googleapis.com"}

// Relay accepts connections on ln and joins each to a connection from dial, copying both
// ways with half-closes passed on (a grader that half-closes still gets its answer). A
// connection whose upstream cannot be reached is closed at once. Close ln to stop it;
// connections in flight are closed too.
type Relay struct {
	ln   net.Listener
	dial func(context.Context) (net.Conn, error)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewRelay starts relaying ln to dial.
func NewRelay(ln net.Listener, dial func(context.Context) (net.Conn, error)) *Relay {
	r := &Relay{ln: ln, dial: dial, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.serve()
	return r
}

// Addr is where the relay listens.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

func (r *Relay) track(c net.Conn, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if add {
		if r.closed {
			return false
		}
		r.conns[c] = struct{}{}
	} else {
		delete(r.conns, c)
	}
	return true
}

func (r *Relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: the listener stays, so try again shortly rather
			// than leave connections waiting in its backlog forever.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.join(c)
		}()
	}
}

func (r *Relay) join(c net.Conn) {
	defer c.Close()
	if !r.track(c, true) {
		return
	}
	defer r.track(c, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up, err := r.dial(ctx)
	if err != nil {
		return
	}
	defer up.Close()
	if !r.track(up, true) {
		return
	}
	defer r.track(up, false)
	done := make(chan struct{})
	go func() {
		pipe(up, c)
		close(done)
	}()
	pipe(c, up)
	<-done
}

// pipe copies from src to dst until src ends, then half-closes dst (or closes it).
func pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
}

// Close stops accepting and closes every connection it relays.
func (r *Relay) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

// DialTCP is a dial function for NewRelay to a fixed address on this machine's network.
func DialTCP(addr string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// Loopback are the addresses of a port on loopback to try in turn: IPv4, then IPv6 (a
// server that listens on "localhost" may have bound either).
func Loopback(port int) []string {
	p := strconv.Itoa(port)
	return []string{"127.0.0.1:" + p, "[::1]:" + p}
}

// FirstOf dials each of dials in turn and returns the first connection made.
func FirstOf(dials ...func(context.Context) (net.Conn, error)) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var errs []error
		for _, d := range dials {
			c, err := d(ctx)
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
}

// errNotLinux is returned where network namespaces do not exist.
var errNotLinux = fmt.Errorf("sandbox: network namespaces are Linux only")
