package core

import (
	"errors"
	"fmt"

	"github.com/herdchaos/herd/herd/proto"
)

// What each end of a link may receive. The dialler sends updates and pings (and the
// listener reads them); the listener sends back pongs only (this direction carries
// liveness alone). Any other line, or a malformed update or pong, drops the link; a ping
// whose numbers do not parse is ignored (docs/PROTOCOL.md, section 3.3). HERD-MAC lines
// are the runtime's (they authenticate the bytes, with a secret): it reads them before
// ReadLine, which refuses them like any line it does not expect, as the protocol does
// without a secret.

// Dir is a direction of a link's lines.
type Dir int

const (
	// FromDialler: the lines the dialler of a link sends, read by its listener.
	FromDialler Dir = iota
	// FromListener: the lines the listener of a link sends back, read by its dialler.
	FromListener
)

func (d Dir) String() string {
	if d == FromDialler {
		return "from dialler"
	}
	return "from listener"
}

// LineKind is what a peer line received on a link is.
type LineKind int

const (
	// Ignored: a line the receiver drops without acting on it (a ping whose numbers do
	// not parse), the link kept.
	Ignored LineKind = iota
	// AnUpdate: a HERD-AT line from the dialler (Line.Update).
	AnUpdate
	// APing: a HERD-PING from the dialler (Line.Ping).
	APing
	// APong: a HERD-PONG from the listener (Line.Pong).
	APong
)

// Line is a peer line received on a link, as the protocol reads it.
type Line struct {
	Kind   LineKind
	Update proto.Update // Kind AnUpdate
	Ping   proto.Ping   // Kind APing
	Pong   proto.Pong   // Kind APong
}

// Errors of ReadLine; the error it returns wraps one of them.
var (
	// ErrUnexpectedLine is a line the receiving end of its direction does not expect.
	ErrUnexpectedLine = errors.New("unexpected line")
	// ErrBadLine is a malformed update or pong.
	ErrBadLine = errors.New("malformed line")
)

// lineError is a line that drops its link: its message as the runtime logs it, and
// what it is (ErrUnexpectedLine, ErrBadLine, ErrOrigin).
type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

// ReadLine reads a line received on a link in direction dir (fields: the line's Fields).
// An error means the link must be dropped: the line is one the receiving end does not
// expect, malformed, or an update whose origin is not a server of the herd (CheckOrigin).
// What it returns aliases line. It reads only what NewNode set, so it may be called
// without the runtime's lock, and it allocates nothing for a line it accepts.
func (n *Node) ReadLine(dir Dir, line string, fields []string) (Line, error) {
	verb := ""
	if len(fields) > 0 {
		verb = fields[0]
	}
	if dir == FromListener {
		if verb != proto.PeerPong {
			return Line{}, &lineError{fmt.Sprintf("unexpected line from listener: %q", line), ErrUnexpectedLine}
		}
		p, err := proto.ParsePong(fields)
		if err != nil {
			return Line{}, &lineError{fmt.Sprintf("bad %s from listener: %q", proto.PeerPong, line), ErrBadLine}
		}
		return Line{Kind: APong, Pong: p}, nil
	}
	switch {
	case len(fields) == 4 && verb == proto.PeerPing:
		p, err := proto.ParsePing(fields)
		if err != nil {
			return Line{Kind: Ignored}, nil // a ping whose numbers do not parse is ignored
		}
		return Line{Kind: APing, Ping: p}, nil
	case verb == proto.PeerAT:
		u, err := proto.ParsePeerLine(line, fields)
		if err != nil {
			return Line{}, &lineError{fmt.Sprintf("bad update %q: %v", line, err), ErrBadLine}
		}
		if err := n.CheckOrigin(u); err != nil {
			return Line{}, &lineError{fmt.Sprintf("bad update %q: origin %q is not a server of the herd", line, u.Origin), err}
		}
		return Line{Kind: AnUpdate, Update: u}, nil
	}
	return Line{}, &lineError{fmt.Sprintf("unexpected line %q", line), ErrUnexpectedLine}
}

// ErrWelcome is a welcome from another server than the one dialled.
var ErrWelcome = errors.New("the welcome is not from the server dialled")

// CheckWelcome reports whether w, the welcome that ends a handshake, comes from the
// server dialled: an address that now serves another server (a stale config, a port
// reused) must not bring a link up under the wrong name.
func CheckWelcome(dialled string, w proto.Welcome) error {
	if w.Server != dialled {
		return ErrWelcome
	}
	return nil
}
