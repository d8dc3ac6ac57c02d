package core

import (
	"errors"
	"testing"

	"github.com/herdchaos/herd/herd/proto"
)

// updateLine is an update from B as it travels.
const updateLine = "HERD-AT B +1.000000000 kiwi +1+1 1"

func TestEachEndOfALinkAcceptsOnlyTheLinesOfItsDirection(t *testing.T) {
	n := linkNode(t, 0)
	for _, c := range []struct {
		dir  Dir
		line string
		kind LineKind
		err  error // nil: accepted as kind
	}{
		// The dialler sends updates and pings; the listener reads them.
		{FromDialler, updateLine, AnUpdate, nil},
		{FromDialler, "HERD-PING 3 inst 7", APing, nil},
		{FromDialler, "HERD-PING 3 inst -7", Ignored, nil}, // numbers that do not parse: ignored
		{FromDialler, "HERD-PING 03 inst 7", Ignored, nil},
		{FromDialler, "HERD-PING 3 inst", 0, ErrUnexpectedLine}, // not a ping's fields
		{FromDialler, "HERD-PONG 3", 0, ErrUnexpectedLine},
		{FromDialler, "HERD-WELCOME A", 0, ErrUnexpectedLine},
		{FromDialler, "HERD-PEER B A 00", 0, ErrUnexpectedLine},
		{FromDialler, "HERD-MAC 00", 0, ErrUnexpectedLine}, // the runtime's, with a secret
		{FromDialler, "IAMAT kiwi +1+1 1", 0, ErrUnexpectedLine},
		{FromDialler, "", 0, ErrUnexpectedLine},
		{FromDialler, "HERD-AT B +1.0 kiwi +1+1 1", 0, ErrBadLine},
		{FromDialler, "HERD-AT Mallory +1.000000000 kiwi +1+1 1", 0, ErrOrigin},
		// The listener sends pongs only; the dialler reads them.
		{FromListener, "HERD-PONG 3", APong, nil},
		{FromListener, "HERD-PONG 0", APong, nil},
		{FromListener, "HERD-PONG -3", 0, ErrBadLine},
		{FromListener, "HERD-PONG", 0, ErrBadLine},
		{FromListener, updateLine, 0, ErrUnexpectedLine},
		{FromListener, "HERD-PING 3 inst 7", 0, ErrUnexpectedLine},
		{FromListener, "HERD-WELCOME B", 0, ErrUnexpectedLine},
		{FromListener, "HERD-MAC 00", 0, ErrUnexpectedLine},
		{FromListener, "", 0, ErrUnexpectedLine},
	} {
		got, err := n.ReadLine(c.dir, c.line, proto.Fields(nil, c.line))
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%v %q: got %+v, %v; want %v", c.dir, c.line, got, err, c.err)
			}
			continue
		}
		if err != nil || got.Kind != c.kind {
			t.Errorf("%v %q: got kind %v, %v; want %v", c.dir, c.line, got.Kind, err, c.kind)
		}
	}
	got, _ := n.ReadLine(FromDialler, updateLine, proto.Fields(nil, updateLine))
	if got.Update.Client != "kiwi" || got.Update.ATLine() != updateLine[len("HERD-"):] {
		t.Errorf("updateLine read as %+v", got.Update)
	}
	if got, _ := n.ReadLine(FromDialler, "HERD-PING 3 inst 7", proto.Fields(nil, "HERD-PING 3 inst 7")); got.Ping != (proto.Ping{N: 3, Mark: proto.Mark{Instance: "inst", Seq: 7}}) {
		t.Errorf("ping read as %+v", got.Ping)
	}
	if got, _ := n.ReadLine(FromListener, "HERD-PONG 3", proto.Fields(nil, "HERD-PONG 3")); got.Pong != (proto.Pong{N: 3}) {
		t.Errorf("pong read as %+v", got.Pong)
	}
}

func TestReadingAnAcceptedLineAllocatesNothing(t *testing.T) {
	n := linkNode(t, 0)
	fields := make([]string, 0, 8)
	for _, c := range []struct {
		dir  Dir
		line string
	}{{FromDialler, updateLine}, {FromDialler, "HERD-PING 3 inst 7"}, {FromListener, "HERD-PONG 3"}} {
		if a := testing.AllocsPerRun(100, func() {
			fields = proto.Fields(fields[:0], c.line)
			if _, err := n.ReadLine(c.dir, c.line, fields); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%q: %v allocations", c.line, a)
		}
	}
}

func TestALinkComesUpOnlyWithTheWelcomeOfTheServerDialled(t *testing.T) {
	if err := CheckWelcome("B", proto.Welcome{Server: "B"}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []proto.Welcome{{Server: "C"}, {Server: ""}, {Server: "b"}} {
		if err := CheckWelcome("B", w); !errors.Is(err, ErrWelcome) {
			t.Errorf("welcome %+v for B: %v", w, err)
		}
	}
	n := NewNode(Config{Self: "A", Neighbours: []string{"B", "C"}, Instance: "inst"})
	if err := n.LinkUp("B", proto.Welcome{Server: "C"}, now); !errors.Is(err, ErrWelcome) {
		t.Fatalf("link to B up with C's welcome: %v", err)
	}
	if s := n.LinkState("B"); s != Down {
		t.Fatalf("link to B is %v after C's welcome", s)
	}
}
