package server

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLogTimestampsAreRFC3339WithNanoseconds(t *testing.T) {
	l := &wireLog{}
	base := time.Date(2026, 11, 26, 14, 10, 40, 0, time.UTC)
	for _, d := range []time.Duration{42, 0, 42, 999999999, time.Second + 7, time.Second + 7, time.Hour + 123456789} {
		now := base.Add(d).In(time.FixedZone("elsewhere", 3600))
		got := string(l.stampOf(now))
		if want := now.UTC().Format("2006-01-02T15:04:05.000000000Z"); got != want {
			t.Errorf("stamp of %v = %s, want %s", now, got, want)
		}
		if _, err := time.Parse(time.RFC3339Nano, got); err != nil {
			t.Error(err)
		}
	}
}

// A logged line is strconv.Quote of prefix and line, whether it takes the fast path for
// printable lines or not.
func TestLogQuotesPrefixAndLineAsOne(t *testing.T) {
	cases := [][2]string{{"HERD-", "AT Goloman +0.1 kiwi +1+1 1"}, {"HERD-", "AT \"odd\" \xff"}, {"p\t", "x"}, {"", "plain"}}
	for _, s := range []string{"", "IAMAT kiwi +34-118 1", "a\"b", "back\\slash", "tab\there", "\xff\xfe", "é", "\x00", "~ok~", "\x7f"} {
		cases = append(cases, [2]string{"", s})
	}
	for _, c := range cases {
		l := &wireLog{f: os.Stdout} // never synced: only the buffer is read
		l.addAt(time.Now(), logOut, "peer:Hands", c[0], c[1])
		line := string(bytes.Join(l.chunks, nil))
		want := " out peer:Hands " + strconv.Quote(c[0]+c[1]) + "\n"
		if !strings.HasSuffix(line, want) {
			t.Errorf("%q + %q logged as %q, want the suffix %q", c[0], c[1], line, want)
		}
	}
}

// Concurrent connections share write calls (group commit), and still every caller finds
// its own entries in the file when its sync returns.
func TestLogSyncIsAGroupCommit(t *testing.T) {
	dir := t.TempDir()
	l, err := openWireLog(dir, "Welsh")
	if err != nil {
		t.Fatal(err)
	}
	const writers, lines = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				line := fmt.Sprintf("IAMAT w%d-%d +1+1 1", w, i)
				l.add(logIn, "c1", line)
				l.sync()
				b, err := os.ReadFile(filepath.Join(dir, "Welsh.log"))
				if err != nil || !bytes.Contains(b, []byte(strconv.Quote(line)+"\n")) {
					t.Errorf("%q not in the file after its sync (%v)", line, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "Welsh.log"))
	if n := bytes.Count(b, []byte("\n")); n != writers*lines {
		t.Fatalf("%d lines in the file, want %d", n, writers*lines)
	}
}

// plain tests eight bytes at a time; it must agree with the byte-by-byte rule for every
// byte at every position.
func TestPlainAgreesWithTheByteRule(t *testing.T) {
	slow := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	base := "AT Goloman +0.263873386 kiwi.cs.ucla.edu +34.068930-118.445127 1520023934.918963997"
	for n := 0; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(base[:n])
				b[pos] = byte(c)
				if got, want := plain(string(b)), slow(string(b)); got != want {
					t.Fatalf("plain(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	// Several odd bytes at once, from a seeded generator over the boundary bytes.
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	edges := []byte{0x00, 0x1f, 0x20, 0x21, '"', 0x23, '\\', 0x5b, 0x5d, 0x7e, 0x7f, 0x80, 0x81, 0xfe, 0xff, 'a', '0'}
	for range 200000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = edges[rng.IntN(len(edges))]
			} else {
				b[i] = base[i%len(base)]
			}
		}
		if got, want := plain(string(b)), slow(string(b)); got != want {
			t.Fatalf("seed %d: plain(%q) = %v, want %v", seed, b, got, want)
		}
	}
	if !plain(base) || plain(base+"\x7f") || plain("\x1f"+base) {
		t.Fatal("plain misjudges a whole line")
	}
}

// Entries beyond one chunk, and lines longer than a chunk, go to the file whole and in
// order, and written chunks are reused.
func TestLogEntriesSpanningManyChunksAreWrittenInOrder(t *testing.T) {
	dir := t.TempDir()
	l, err := openWireLog(dir, "Hands")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	long := strings.Repeat("x\xff", chunkSize) // quoted, four times a chunk
	now := time.Date(2026, 11, 26, 14, 0, 0, 5, time.UTC)
	for i := range 5000 {
		line := fmt.Sprintf("IAMAT c%d +1+1 %d", i, i)
		if i%1000 == 999 {
			line = long
		}
		l.addAt(now, logIn, "c1", "", line)
		fmt.Fprintf(&want, "2026-11-26T14:00:00.000000005Z in c1 %s\n", strconv.Quote(line))
		if i%2000 == 1999 {
			l.sync()
			if len(l.free) == 0 {
				t.Error("no chunk kept for reuse after a sync")
			}
		}
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "Hands.log"))
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("the file (%d bytes) is not the entries in order (%d bytes)", len(got), want.Len())
	}
}
