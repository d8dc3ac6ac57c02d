//go:build !linux

package bench

import (
	"io"
	"net"
	"time"
)

// oneShotter sends one command per connection the way a grader does (connect, write,
// half-close, read to EOF, close).
type oneShotter struct{ addr string }

func newOneShotter(addr string) (*oneShotter, error) { return &oneShotter{addr: addr}, nil }

// exchange sends req and reads the whole reply into buf, within timeout.
func (o *oneShotter) exchange(req, buf []byte, timeout time.Duration) ([]byte, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	conn, err := d.Dial("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	conn.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(conn)
	return append(buf[:0], b...), err
}
