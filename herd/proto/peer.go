package proto

import (
	"errors"
	"strconv"
)

// Typed peer messages (docs/PROTOCOL.md, section 3). Each has a Parse function that takes
// the line's fields (as Fields splits them; they alias the line, so parsing allocates
// nothing) and a Format method that gives the line as the herd sends it, without its
// terminator. For every line a Parse function accepts, Format gives back the fields
// joined by single spaces. What a field must be beyond its shape (that a hello names this
// server, that a mark's instance is ours, that a MAC tag verifies) is the caller's
// decision, not the parser's.

// ErrNumber is a peer line's counter or mark that is not a canonical decimal number.
var ErrNumber = errors.New("bad number")

// Hello is the dialler's first line: "HERD-PEER from to nonce".
type Hello struct {
	From, To, Nonce string
}

// ParseHello parses the fields of a HERD-PEER line.
func ParseHello(fields []string) (Hello, error) {
	if len(fields) != 4 || fields[0] != PeerHello {
		return Hello{}, ErrFieldCount
	}
	return Hello{From: fields[1], To: fields[2], Nonce: fields[3]}, nil
}

// Format is the HERD-PEER line.
func (h Hello) Format() string { return PeerHello + " " + h.From + " " + h.To + " " + h.Nonce }

// Challenge is the listener's answer to a hello: "HERD-CHALLENGE nonce".
type Challenge struct {
	Nonce string
}

// ParseChallenge parses the fields of a HERD-CHALLENGE line.
func ParseChallenge(fields []string) (Challenge, error) {
	if len(fields) != 2 || fields[0] != PeerChallenge {
		return Challenge{}, ErrFieldCount
	}
	return Challenge{Nonce: fields[1]}, nil
}

// Format is the HERD-CHALLENGE line.
func (c Challenge) Format() string { return PeerChallenge + " " + c.Nonce }

// Auth is the dialler's proof: "HERD-AUTH proof" ("-" without a secret).
type Auth struct {
	Proof string
}

// ParseAuth parses the fields of a HERD-AUTH line.
func ParseAuth(fields []string) (Auth, error) {
	if len(fields) != 2 || fields[0] != PeerAuth {
		return Auth{}, ErrFieldCount
	}
	return Auth{Proof: fields[1]}, nil
}

// Format is the HERD-AUTH line.
func (a Auth) Format() string { return PeerAuth + " " + a.Proof }

// Mark is what a dialler's ping says it has written on its connection: every update due
// to the listener that its run Instance stored with a sequence number up to Seq. The zero
// Mark (no instance) is "no mark".
type Mark struct {
	Instance string
	Seq      uint64
}

// Welcome is the listener's last handshake line: "HERD-WELCOME server [instance mark]",
// with the last mark the listener holds from the dialler, if any.
type Welcome struct {
	Server string
	Mark   Mark // zero when the welcome carries none
}

// ParseWelcome parses the fields of a HERD-WELCOME line. A welcome with a mark needs a
// non-empty instance and a mark that is a canonical decimal number.
func ParseWelcome(fields []string) (Welcome, error) {
	if (len(fields) != 2 && len(fields) != 4) || fields[0] != PeerWelcome {
		return Welcome{}, ErrFieldCount
	}
	w := Welcome{Server: fields[1]}
	if len(fields) == 4 {
		seq, err := parseCounter(fields[3])
		if err != nil {
			return Welcome{}, err
		}
		w.Mark = Mark{Instance: fields[2], Seq: seq}
	}
	return w, nil
}

// Format is the HERD-WELCOME line.
func (w Welcome) Format() string {
	if w.Mark.Instance == "" {
		return PeerWelcome + " " + w.Server
	}
	return PeerWelcome + " " + w.Server + " " + w.Mark.Instance + " " + strconv.FormatUint(w.Mark.Seq, 10)
}

// Ping is the dialler's heartbeat: "HERD-PING n instance mark", n counting 1, 2, 3... on
// each connection.
type Ping struct {
	N    uint64
	Mark Mark
}

// ParsePing parses the fields of a HERD-PING line; both numbers must be canonical decimal
// numbers (a ping whose numbers do not parse is ignored, docs/PROTOCOL.md).
func ParsePing(fields []string) (Ping, error) {
	if len(fields) != 4 || fields[0] != PeerPing {
		return Ping{}, ErrFieldCount
	}
	n, err := parseCounter(fields[1])
	if err != nil {
		return Ping{}, err
	}
	seq, err := parseCounter(fields[3])
	if err != nil {
		return Ping{}, err
	}
	return Ping{N: n, Mark: Mark{Instance: fields[2], Seq: seq}}, nil
}

// Format is the HERD-PING line.
func (p Ping) Format() string {
	return PeerPing + " " + strconv.FormatUint(p.N, 10) + " " + p.Mark.Instance + " " + strconv.FormatUint(p.Mark.Seq, 10)
}

// Pong is the listener's heartbeat: "HERD-PONG n", n the last ping it applied (0 before
// any).
type Pong struct {
	N uint64
}

// ParsePong parses the fields of a HERD-PONG line.
func ParsePong(fields []string) (Pong, error) {
	if len(fields) != 2 || fields[0] != PeerPong {
		return Pong{}, ErrFieldCount
	}
	n, err := parseCounter(fields[1])
	if err != nil {
		return Pong{}, err
	}
	return Pong{N: n}, nil
}

// Format is the HERD-PONG line.
func (p Pong) Format() string { return PeerPong + " " + strconv.FormatUint(p.N, 10) }

// MAC ends a batch of a link's lines, with a secret: "HERD-MAC tag" (32 hex digits of the
// batch's Poly1305 tag; whether it verifies is the receiver's check).
type MAC struct {
	Tag string
}

// ParseMAC parses the fields of a HERD-MAC line.
func ParseMAC(fields []string) (MAC, error) {
	if len(fields) != 2 || fields[0] != PeerMAC {
		return MAC{}, ErrFieldCount
	}
	return MAC{Tag: fields[1]}, nil
}

// Format is the HERD-MAC line.
func (m MAC) Format() string { return PeerMAC + " " + m.Tag }

// AppendPeerAT appends the HERD-AT line of a stored AT line, "HERD-" + at, and a newline:
// the form in which updates travel between servers. It allocates nothing when dst has
// room.
func AppendPeerAT(dst []byte, at string) []byte {
	return append(append(append(dst, "HERD-"...), at...), '\n')
}

// FormatPeerAT is the HERD-AT line of an update (no newline).
func FormatPeerAT(u Update) string { return "HERD-" + u.ATLine() }

// parseCounter parses a canonical decimal number: digits, no sign, no leading zero but
// in "0", at most a uint64.
func parseCounter(s string) (uint64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, ErrNumber
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, ErrNumber
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, ErrNumber
	}
	return n, nil
}
