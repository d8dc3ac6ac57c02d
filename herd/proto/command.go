package proto

// Kind says what a client line is.
type Kind int

const (
	// Invalid lines get "? line".
	Invalid Kind = iota
	// Blank lines (only white space) are ignored.
	Blank
	IAmAt
	WhatsAt
)

// Command is one parsed client line.
type Command struct {
	Kind    Kind
	IAMAT   IAMAT
	WHATSAT WHATSAT
	Err     error // why the line is Invalid
}

// ParseCommand classifies and parses one client line (without its terminator). scratch is
// reused for the fields to avoid an allocation per line; pass nil if you have none.
func ParseCommand(line string, scratch []string) (Command, []string) {
	fields := Fields(scratch[:0], line)
	if len(fields) == 0 {
		return Command{Kind: Blank}, fields
	}
	switch fields[0] {
	case "IAMAT":
		c, err := ParseIAMAT(fields)
		if err != nil {
			return Command{Kind: Invalid, Err: err}, fields
		}
		return Command{Kind: IAmAt, IAMAT: c}, fields
	case "WHATSAT":
		c, err := ParseWHATSAT(fields)
		if err != nil {
			return Command{Kind: Invalid, Err: err}, fields
		}
		return Command{Kind: WhatsAt, WHATSAT: c}, fields
	}
	return Command{Kind: Invalid, Err: ErrVerb}, fields
}

// Peer verbs. They start with "HERD-" so no client command can be mistaken for one, and a
// server accepts them only on a connection whose first line was a valid handshake.
const (
	PeerHello     = "HERD-PEER"      // dialler: HERD-PEER <from> <to> <nonce>
	PeerChallenge = "HERD-CHALLENGE" // listener: HERD-CHALLENGE <nonce>
	PeerAuth      = "HERD-AUTH"      // dialler: HERD-AUTH <hex hmac>
	PeerWelcome   = "HERD-WELCOME"   // listener: HERD-WELCOME <to> [<instance> <mark>]
	PeerAT        = "HERD-AT"        // dialler: HERD-AT <origin> <diff> <client> <location> <time>
	PeerPing      = "HERD-PING"      // dialler: HERD-PING <seq> <instance> <mark>
	PeerPong      = "HERD-PONG"      // listener: HERD-PONG <seq>
	PeerMAC       = "HERD-MAC"       // either side, with a secret: HERD-MAC <hex hmac of all it sent on the link before>
)

// Update is one client location as it travels between servers: the fields of the AT line
// of the server that first received the newest IAMAT.
type Update struct {
	Origin   string
	Diff     string
	Client   string
	Location Location
	Time     Time
	// AT is the AT line when it is already at hand (ParsePeerLine sets it to the line as
	// received, so that storing it copies nothing); "" means ATLine formats it.
	AT string
}

// ParsePeerLine parses a whole "HERD-AT ..." line (no terminator) whose fields are
// fields. When the line is canonical (fields joined by single spaces, as the herd sends
// them) the update's AT line is a slice of it, and every field aliases that one string.
func ParsePeerLine(line string, fields []string) (Update, error) {
	u, err := ParsePeerAT(fields)
	if err != nil {
		return u, err
	}
	if joinedBySpaces(line, fields) { // the line is canonical: keep it as it came
		u.AT = line[len("HERD-"):]
	}
	return u, nil
}

// joinedBySpaces reports whether line is its fields (which alias it) joined by single
// spaces: no other white space (a TAB, a CR) and no run of it.
func joinedBySpaces(line string, fields []string) bool {
	n := len(fields) - 1 // the spaces between the fields
	for _, f := range fields {
		n += len(f)
	}
	if n != len(line) {
		return false
	}
	at := 0
	for i, f := range fields {
		at += len(f)
		if i < len(fields)-1 {
			if line[at] != ' ' {
				return false
			}
			at++
		}
	}
	return true
}

// ParsePeerAT parses the fields of "HERD-AT origin diff client location time".
func ParsePeerAT(fields []string) (Update, error) {
	if len(fields) != 6 || fields[0] != PeerAT {
		return Update{}, ErrFieldCount
	}
	if err := CheckName(fields[1]); err != nil {
		return Update{}, err
	}
	if err := CheckDiff(fields[2]); err != nil {
		return Update{}, err
	}
	loc, err := ParseLocation(fields[4])
	if err != nil {
		return Update{}, err
	}
	t, err := ParseTime(fields[5])
	if err != nil {
		return Update{}, err
	}
	return Update{Origin: fields[1], Diff: fields[2], Client: fields[3], Location: loc, Time: t}, nil
}

// ATLine is the client-facing "AT ..." line of the update, without newline.
func (u Update) ATLine() string {
	if u.AT != "" {
		return u.AT
	}
	return FormatAT(u.Origin, u.Diff, u.Client, u.Location.Raw, u.Time.Raw)
}
