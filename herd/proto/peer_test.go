package proto

import (
	"errors"
	"strings"
	"testing"
)

// The lines of docs/PROTOCOL.md's examples, and more, each parsed and formatted back.
func TestPeerMessagesRoundTrip(t *testing.T) {
	for _, line := range []string{
		"HERD-PEER Hands Goloman ae7517f9753349cf972323e8bc97eb05",
		"HERD-CHALLENGE 953e47e64fd79f15bbca7e893d442ad8",
		"HERD-AUTH -",
		"HERD-AUTH ce03c5e6e7cf08765358bf02ce8ed7e7a32c3953af54152a52e97edb5007b762",
		"HERD-WELCOME Goloman",
		"HERD-WELCOME Goloman 78c0c7c760a31045 0",
		"HERD-WELCOME Goloman 78c0c7c760a31045 18446744073709551615",
		"HERD-PING 1 0904819349da41f7 0",
		"HERD-PING 12 0904819349da41f7 4711",
		"HERD-PONG 0",
		"HERD-PONG 12",
		"HERD-MAC 6d92aa9da0676939df69f92d4e16582d",
		"HERD-AT Goloman +275895812.444048564 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997",
	} {
		got, err := formatPeer(Fields(nil, line), line)
		if err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if got != line {
			t.Errorf("%q formats back as %q", line, got)
		}
	}
}

func TestPeerMessagesFields(t *testing.T) {
	w, err := ParseWelcome(Fields(nil, "HERD-WELCOME Goloman 78c0c7c760a31045 42"))
	if err != nil || w.Server != "Goloman" || w.Mark != (Mark{"78c0c7c760a31045", 42}) {
		t.Errorf("welcome: %+v, %v", w, err)
	}
	w, err = ParseWelcome(Fields(nil, "HERD-WELCOME Goloman"))
	if err != nil || w.Server != "Goloman" || w.Mark != (Mark{}) {
		t.Errorf("welcome without a mark: %+v, %v", w, err)
	}
	p, err := ParsePing(Fields(nil, "HERD-PING 7 abc 9"))
	if err != nil || p.N != 7 || p.Mark != (Mark{"abc", 9}) {
		t.Errorf("ping: %+v, %v", p, err)
	}
	h, err := ParseHello(Fields(nil, "HERD-PEER A B n"))
	if err != nil || h != (Hello{"A", "B", "n"}) {
		t.Errorf("hello: %+v, %v", h, err)
	}
}

func TestPeerMessagesRejected(t *testing.T) {
	for _, c := range []struct {
		line  string
		parse func([]string) error
		want  error
	}{
		{"HERD-PEER A B", hello, ErrFieldCount},
		{"HERD-PEER A B n x", hello, ErrFieldCount},
		{"HERD-PEEK A B n", hello, ErrFieldCount},
		{"HERD-CHALLENGE", challenge, ErrFieldCount},
		{"HERD-AUTH a b", auth, ErrFieldCount},
		{"HERD-WELCOME A x", welcome, ErrFieldCount},
		{"HERD-WELCOME A x -1", welcome, ErrNumber},
		{"HERD-WELCOME A x 01", welcome, ErrNumber},
		{"HERD-WELCOME A x 18446744073709551616", welcome, ErrNumber},
		{"HERD-PING 1 x", ping, ErrFieldCount},
		{"HERD-PING +1 x 2", ping, ErrNumber},
		{"HERD-PING 1 x 2.0", ping, ErrNumber},
		{"HERD-PING -1 x 2", ping, ErrNumber},
		{"HERD-PONG", pong, ErrFieldCount},
		{"HERD-PONG x", pong, ErrNumber},
		{"HERD-MAC", mac, ErrFieldCount},
		{"HERD-MAC a b", mac, ErrFieldCount},
	} {
		if err := c.parse(Fields(nil, c.line)); !errors.Is(err, c.want) {
			t.Errorf("%q: got %v, want %v", c.line, err, c.want)
		}
	}
}

func hello(f []string) error     { _, err := ParseHello(f); return err }
func challenge(f []string) error { _, err := ParseChallenge(f); return err }
func auth(f []string) error      { _, err := ParseAuth(f); return err }
func welcome(f []string) error   { _, err := ParseWelcome(f); return err }
func ping(f []string) error      { _, err := ParsePing(f); return err }
func pong(f []string) error      { _, err := ParsePong(f); return err }
func mac(f []string) error       { _, err := ParseMAC(f); return err }

// formatPeer parses a peer line (fields of line) by its verb and formats it back.
func formatPeer(fields []string, line string) (string, error) {
	if len(fields) == 0 {
		return "", ErrFieldCount
	}
	switch fields[0] {
	case PeerHello:
		m, err := ParseHello(fields)
		return m.Format(), err
	case PeerChallenge:
		m, err := ParseChallenge(fields)
		return m.Format(), err
	case PeerAuth:
		m, err := ParseAuth(fields)
		return m.Format(), err
	case PeerWelcome:
		m, err := ParseWelcome(fields)
		return m.Format(), err
	case PeerPing:
		m, err := ParsePing(fields)
		return m.Format(), err
	case PeerPong:
		m, err := ParsePong(fields)
		return m.Format(), err
	case PeerMAC:
		m, err := ParseMAC(fields)
		return m.Format(), err
	case PeerAT:
		u, err := ParsePeerLine(line, fields)
		if err != nil {
			return "", err
		}
		return string(AppendPeerAT(nil, u.ATLine()))[:len(u.ATLine())+5], nil
	}
	return "", ErrVerb
}

func TestPeerParsersAllocateNothing(t *testing.T) {
	fields := Fields(nil, "HERD-PING 12 0904819349da41f7 4711")
	wf := Fields(nil, "HERD-WELCOME Goloman 78c0c7c760a31045 42")
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		ParsePing(fields)
		ParseWelcome(wf)
		buf = AppendPeerAT(buf[:0], "AT Goloman +0.1 kiwi +34-118 1.5")
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// FuzzParsePeer checks the peer parsers never panic, and that every line one accepts
// formats back as its fields joined by single spaces (the line itself, for a line the
// herd sends), and parses again to the same message.
//
//	go test ./herd/proto -run '^$' -fuzz FuzzParsePeer -fuzztime 60s
func FuzzParsePeer(f *testing.F) {
	for _, s := range []string{
		"HERD-PEER Hands Goloman ae7517f9753349cf972323e8bc97eb05",
		"HERD-CHALLENGE 953e47e64fd79f15bbca7e893d442ad8", "HERD-AUTH -",
		"HERD-WELCOME Goloman", "HERD-WELCOME Goloman 78c0c7c760a31045 0",
		"HERD-PING 1 0904819349da41f7 0", "HERD-PONG 3", "HERD-MAC 6d92aa9da0676939df69f92d4e16582d",
		"HERD-AT Goloman +275895812.444048564 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997",
		"HERD-PING 01 x 1", "HERD-WELCOME  A\tx 99999999999999999999", "HERD-AT a +0.000000000 c +1+1 -0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fields := Fields(nil, line)
		got, err := formatPeer(fields, line)
		if err != nil {
			return
		}
		if want := strings.Join(fields, " "); got != want {
			t.Fatalf("%q formats back as %q, want %q", line, got, want)
		}
		again, err := formatPeer(Fields(nil, got), got)
		if err != nil || again != got {
			t.Fatalf("%q: formatted %q parses to %q, %v", line, got, again, err)
		}
	})
}
