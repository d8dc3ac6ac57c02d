package server

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// wireLog is a server's log file: every input and output line and every new or dropped
// peer connection. Lines are buffered and written with one write(2) per batch; the
// runtime calls sync before it writes anything to a socket, so whatever a client or peer
// has seen was already handed to the kernel, and a crash (even SIGKILL) loses nothing
// that was logged. sync is a group commit: while one caller writes, others append, and
// the next write carries all of theirs, so concurrent connections share write calls.
type wireLog struct {
	f *os.File

	mu    sync.Mutex // guards buf, added, sec and prefix
	buf   []byte
	added int64 // bytes ever appended
	// The timestamp up to the seconds, cached per second: formatting a time on every
	// line was a tenth of the herd's CPU under load.
	sec    int64
	prefix []byte

	wmu     sync.Mutex // one writer at a time; guards written, spare and err
	written int64      // bytes ever handed to the kernel
	spare   []byte
	err     error
}

func openWireLog(dir, name string) (*wireLog, error) {
	if dir == "" {
		return &wireLog{}, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	return &wireLog{f: f}, nil
}

// Line kinds in the log.
const (
	logIn    = "in"
	logOut   = "out"
	logEvent = "event"
)

// add buffers one entry stamped now.
func (l *wireLog) add(kind, who, line string) {
	if l.f == nil {
		return
	}
	l.addAt(time.Now(), kind, who, "", line)
}

// addAt buffers one entry: time, kind, who (a connection or peer), and prefix+line quoted
// so that any byte of a client id stays on one log line. Callers that handle a batch of
// lines read at once stamp them all with the time of the read.
func (l *wireLog) addAt(now time.Time, kind, who, prefix, line string) {
	if l.f == nil {
		return
	}
	now = now.UTC()
	l.mu.Lock()
	if s := now.Unix(); s != l.sec || l.prefix == nil {
		l.sec = s
		l.prefix = now.AppendFormat(l.prefix[:0], "2006-01-02T15:04:05.")
	}
	n := len(l.buf)
	l.buf = append(l.buf, l.prefix...)
	l.buf = appendNanos(l.buf, now.Nanosecond())
	l.buf = append(l.buf, "Z "...)
	l.buf = append(l.buf, kind...)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, who...)
	l.buf = append(l.buf, ' ')
	switch {
	case prefix == "":
		l.buf = appendQuoted(l.buf, line)
	case plain(prefix) && plain(line):
		l.buf = append(l.buf, '"')
		l.buf = append(l.buf, prefix...)
		l.buf = append(l.buf, line...)
		l.buf = append(l.buf, '"')
	default:
		l.buf = strconv.AppendQuote(l.buf, prefix+line)
	}
	l.buf = append(l.buf, '\n')
	l.added += int64(len(l.buf) - n)
	l.mu.Unlock()
}

// appendNanos appends n as nine digits.
func appendNanos(b []byte, n int) []byte {
	var d [9]byte
	for i := 8; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:]...)
}

// appendQuoted is strconv.AppendQuote, with a fast path for the common line: printable
// ASCII with no quote or backslash is quoted as it is (escaping rune by rune was a third
// of the herd's CPU under load).
func appendQuoted(b []byte, s string) []byte {
	if !plain(s) {
		return strconv.AppendQuote(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether s is printable ASCII with no quote or backslash. It tests eight
// bytes at a time: every logged line goes through it.
func plain(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(x uint64) bool { return (x-ones)&^x&highs != 0 }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		v := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
		if v&highs != 0 || // a byte over 0x7f
			(v-0x20*ones)&^v&highs != 0 || // a byte under 0x20 (all are under 0x80 here)
			(v+ones)&highs != 0 || // 0x7f
			hasZero(v^('"'*ones)) || hasZero(v^('\\'*ones)) {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// sync hands every entry buffered so far to the kernel. If another caller is writing, it
// waits for that write and then finds its entries written, or writes everything buffered
// since, its own and other callers' alike.
func (l *wireLog) sync() {
	if l.f == nil {
		return
	}
	l.mu.Lock()
	want := l.added
	l.mu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.written >= want {
		return
	}
	l.mu.Lock()
	buf, end := l.buf, l.added
	l.buf = l.spare[:0]
	l.mu.Unlock()
	if _, err := l.f.Write(buf); err != nil && l.err == nil {
		l.err = err // reported once, at close: the herd keeps serving without its log
	}
	l.written = end
	l.spare = buf[:0]
}

func (l *wireLog) close() error {
	if l.f == nil {
		return nil
	}
	l.sync()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.f.Close(); err != nil {
		return err
	}
	return l.err
}
