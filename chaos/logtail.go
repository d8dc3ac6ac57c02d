package chaos

import (
	"fmt"
	"io"
	"os"
)

// LogLimit is the most of one log that a backend's Logs returns: its end. A herd with a
// flooding bug writes gigabytes of log in minutes, and a failed spec must not read them
// all into memory to keep a few hundred kilobytes as artifacts.
const LogLimit = 16 << 20

// TailFile reads the last LogLimit bytes of a file, with a first line saying how many
// bytes before them were left out when any were.
func TailFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var skipped int64
	if st.Mode().IsRegular() && st.Size() > LogLimit {
		skipped = st.Size() - LogLimit
		if _, err := f.Seek(skipped, io.SeekStart); err != nil {
			return nil, err
		}
	}
	t := &Tail{Skipped: skipped}
	_, err = io.Copy(t, f)
	return t.Bytes(), err
}

// Tail is a writer that keeps only the last LogLimit bytes written to it: for logs that
// come as a stream (a container's output, a file copied out of a container). It holds up
// to twice that and drops the older half at once, so each byte is copied at most twice.
type Tail struct {
	Skipped int64 // bytes left out before the kept ones
	buf     []byte
}

// Write implements io.Writer; it never fails.
func (t *Tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*LogLimit {
		t.drop()
	}
	return len(p), nil
}

// drop keeps the last LogLimit bytes.
func (t *Tail) drop() {
	if over := len(t.buf) - LogLimit; over > 0 {
		t.Skipped += int64(over)
		t.buf = t.buf[:copy(t.buf, t.buf[over:])]
	}
}

// Bytes is what was kept, after a first line saying what was left out, if anything was.
func (t *Tail) Bytes() []byte {
	t.drop()
	if t.Skipped == 0 {
		return t.buf
	}
	note := fmt.Sprintf("[log: the first %d bytes are left out; the last %d follow]\n", t.Skipped, len(t.buf))
	return append([]byte(note), t.buf...)
}
