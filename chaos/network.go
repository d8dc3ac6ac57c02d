package chaos

import (
	"context"
	"net"
	"net/http"

	"github.com/herdchaos/herd/herd/client"
)

// A Network is a backend whose herd runs on a network of its own (the sim backend's,
// in memory): a client reaches a server's ClientAddr only through DialContext, and the
// Places emulator's PlacesURL only through HTTPClient. Backends on this machine's
// network do not implement it.
type Network interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	HTTPClient() *http.Client
}

// dialer is how clients reach b's servers (nil: this machine's network).
func dialer(b Backend) client.DialFunc {
	if n, ok := b.(Network); ok {
		return n.DialContext
	}
	return nil
}

// httpClient is how this process reaches b's Places emulator.
func httpClient(b Backend) *http.Client {
	if n, ok := b.(Network); ok {
		return n.HTTPClient()
	}
	return http.DefaultClient
}

// DialNode opens a client connection to node, on whatever network b's herd runs.
func DialNode(ctx context.Context, b Backend, node string) (net.Conn, error) {
	addr, err := b.ClientAddr(ctx, node)
	if err != nil {
		return nil, err
	}
	return dialer(b).Dial(ctx, addr)
}
