// Package client talks to any herd server as a client does: IAMAT and WHATSAT over TCP,
// with deadlines. It knows nothing of our herd's insides, so it works against any
// implementation of the protocol.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// DialFunc opens a connection as net.Dialer.DialContext does. A herd on a network of its
// own (the sim backend's, in memory) gives one; nil is this machine's network.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial opens a TCP connection to addr on d's network.
func (d DialFunc) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if d == nil {
		var nd net.Dialer
		return nd.DialContext(ctx, "tcp", addr)
	}
	return d(ctx, "tcp", addr)
}

// Exchange is how graders talk: dial, write text, half-close, read everything until the
// server closes. It returns what the server sent.
func Exchange(ctx context.Context, addr, text string) (string, error) {
	return ExchangeVia(ctx, nil, addr, text)
}

// ExchangeVia is Exchange over the network d dials.
func ExchangeVia(ctx context.Context, d DialFunc, addr, text string) (string, error) {
	conn, err := d.Dial(ctx, addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if _, err := io.WriteString(conn, text); err != nil {
		return "", err
	}
	if hc, ok := conn.(interface{ CloseWrite() error }); ok { // TCP, or an in-memory network's
		hc.CloseWrite()
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// Conn is a persistent client connection; one request at a time.
type Conn struct {
	conn net.Conn
	r    *bufio.Reader
}

// Dial opens a persistent connection.
func Dial(ctx context.Context, addr string) (*Conn, error) { return DialVia(ctx, nil, addr) }

// DialVia is Dial over the network d dials.
func DialVia(ctx context.Context, d DialFunc, addr string) (*Conn, error) {
	c, err := d.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &Conn{conn: c, r: bufio.NewReader(c)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// Raw sends text as it is and reads one reply line (with its "\n").
func (c *Conn) Raw(ctx context.Context, text string) (string, error) {
	c.deadline(ctx)
	if _, err := io.WriteString(c.conn, text); err != nil {
		return "", err
	}
	return c.r.ReadString('\n')
}

func (c *Conn) deadline(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	} else {
		c.conn.SetDeadline(time.Time{})
	}
}

// IAMAT sends an IAMAT and returns the reply line without its newline.
func (c *Conn) IAMAT(ctx context.Context, client, location, time string) (string, error) {
	line, err := c.Raw(ctx, fmt.Sprintf("IAMAT %s %s %s\n", client, location, time))
	return strings.TrimSuffix(line, "\n"), err
}

// WhatsatReply is a parsed WHATSAT answer.
type WhatsatReply struct {
	Raw     string // everything the server sent for this command
	Invalid bool   // the server answered "? ..."
	AT      string // the AT line
	JSON    string // the JSON between the AT line and the final blank line
}

// ErrIncomplete means the server closed or timed out mid-answer.
var ErrIncomplete = errors.New("incomplete WHATSAT answer")

// WHATSAT sends a WHATSAT and reads the whole answer: the AT line, the JSON, and the blank
// line that ends it; or a "? " line.
func (c *Conn) WHATSAT(ctx context.Context, client, radiusKm string, bound int) (WhatsatReply, error) {
	first, err := c.Raw(ctx, fmt.Sprintf("WHATSAT %s %s %d\n", client, radiusKm, bound))
	if err != nil {
		return WhatsatReply{Raw: first}, err
	}
	return readWhatsat(c.r, first)
}

func readWhatsat(r *bufio.Reader, first string) (WhatsatReply, error) {
	rep := WhatsatReply{Raw: first}
	if strings.HasPrefix(first, "? ") {
		rep.Invalid = true
		return rep, nil
	}
	rep.AT = strings.TrimSuffix(first, "\n")
	var body strings.Builder
	for {
		line, err := r.ReadString('\n')
		rep.Raw += line
		if err != nil {
			return rep, fmt.Errorf("%w: %v", ErrIncomplete, err)
		}
		if line == "\n" {
			rep.JSON = strings.TrimSuffix(body.String(), "\n")
			return rep, nil
		}
		body.WriteString(line)
	}
}

// ParseWhatsat splits a whole WHATSAT answer as Exchange returns it.
func ParseWhatsat(raw string) (WhatsatReply, error) {
	r := bufio.NewReader(strings.NewReader(raw))
	first, err := r.ReadString('\n')
	if err != nil {
		return WhatsatReply{Raw: raw}, fmt.Errorf("%w: %q", ErrIncomplete, raw)
	}
	return readWhatsat(r, first)
}

// IAMAT is a one-shot IAMAT in the graders' style.
func IAMAT(ctx context.Context, addr, client, location, time string) (string, error) {
	out, err := Exchange(ctx, addr, fmt.Sprintf("IAMAT %s %s %s\n", client, location, time))
	return strings.TrimSuffix(out, "\n"), err
}

// WHATSAT is a one-shot WHATSAT in the graders' style.
func WHATSAT(ctx context.Context, addr, client, radiusKm string, bound int) (WhatsatReply, error) {
	out, err := Exchange(ctx, addr, fmt.Sprintf("WHATSAT %s %s %d\n", client, radiusKm, bound))
	if err != nil {
		return WhatsatReply{Raw: out}, err
	}
	return ParseWhatsat(out)
}
