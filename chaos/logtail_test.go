package chaos

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A log of any size comes back as its last LogLimit bytes, whether read from a file or
// from a stream, with a note of how much was left out.
func TestLogsKeepOnlyTheirEnd(t *testing.T) {
	for _, size := range []int{0, 10, LogLimit, LogLimit + 1, 3*LogLimit + 12345} {
		log := make([]byte, size)
		for i := range log {
			log[i] = byte('a' + i%26)
		}
		want := log
		note := ""
		if size > LogLimit {
			want = log[size-LogLimit:]
			note = fmt.Sprintf("[log: the first %d bytes are left out; the last %d follow]\n", size-LogLimit, LogLimit)
		}
		path := filepath.Join(t.TempDir(), "log")
		if err := os.WriteFile(path, log, 0o644); err != nil {
			t.Fatal(err)
		}
		fromFile, err := TailFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var stream Tail
		for rest := log; len(rest) > 0; {
			n := min(len(rest), 32<<10+7)
			stream.Write(rest[:n])
			rest = rest[n:]
		}
		for what, got := range map[string][]byte{"file": fromFile, "stream": stream.Bytes()} {
			if !bytes.HasPrefix(got, []byte(note)) || !bytes.Equal(got[len(note):], want) {
				t.Errorf("a %d-byte log from a %s: got %d bytes starting %q, want the note %q and the last %d bytes",
					size, what, len(got), got[:min(len(got), 80)], note, len(want))
			}
		}
	}
}
