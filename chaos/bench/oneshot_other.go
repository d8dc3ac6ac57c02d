//go:build !linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// oneShot runs clients concurrent graders: each command on its own connection,
// half-closed, the reply read to EOF.
func oneShot(ctx context.Context, addr string, clients int, d time.Duration, times *clientTimes, t *tally) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			bad := 0
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				t0 := time.Now()
				req := fmt.Sprintf("IAMAT bench-%d-%d +34.068930-118.445127 %s\n", c, i%100, times.next())
				reply, err := exchange(addr, req, 5*time.Second)
				if err != nil || !bytes.HasPrefix(reply, []byte("AT ")) || reply[len(reply)-1] != '\n' {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			t.add(mine, bad)
		})
	}
	wg.Wait()
}

func exchange(addr, req string, timeout time.Duration) ([]byte, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	conn.(*net.TCPConn).CloseWrite()
	return io.ReadAll(conn)
}
