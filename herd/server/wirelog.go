package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// wireLog is a server's log file: every input and output line and every new or dropped
// peer connection. Lines are buffered and written with one write(2) per batch; the
// runtime calls sync before it writes anything to a socket, so whatever a client or peer
// has seen was already handed to the kernel, and a crash (even SIGKILL) loses nothing
// that was logged.
type wireLog struct {
	mu  sync.Mutex
	f   *os.File
	buf []byte
	err error
	// The timestamp up to the seconds, cached per second: formatting a time on every
	// line was a tenth of the herd's CPU under load.
	sec    int64
	prefix []byte
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

// add buffers one entry: time, kind, who (a connection or peer), and the line quoted so
// that any byte of a client id stays on one log line.
func (l *wireLog) add(kind, who, line string) {
	if l.f == nil {
		return
	}
	l.mu.Lock()
	now := time.Now().UTC()
	if s := now.Unix(); s != l.sec || l.prefix == nil {
		l.sec = s
		l.prefix = now.AppendFormat(l.prefix[:0], "2006-01-02T15:04:05.")
	}
	l.buf = append(l.buf, l.prefix...)
	l.buf = appendNanos(l.buf, now.Nanosecond())
	l.buf = append(l.buf, "Z "...)
	l.buf = append(l.buf, kind...)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, who...)
	l.buf = append(l.buf, ' ')
	l.buf = appendQuoted(l.buf, line)
	l.buf = append(l.buf, '\n')
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
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// sync hands the buffered entries to the kernel.
func (l *wireLog) sync() {
	if l.f == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) == 0 {
		return
	}
	if _, err := l.f.Write(l.buf); err != nil && l.err == nil {
		l.err = err // reported once, at close: the herd keeps serving without its log
	}
	l.buf = l.buf[:0]
}

func (l *wireLog) close() error {
	if l.f == nil {
		return nil
	}
	l.sync()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.f.Close(); err != nil {
		return err
	}
	return l.err
}
