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
	l.buf = time.Now().UTC().AppendFormat(l.buf, time.RFC3339Nano)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, kind...)
	l.buf = append(l.buf, ' ')
	l.buf = append(l.buf, who...)
	l.buf = append(l.buf, ' ')
	l.buf = strconv.AppendQuote(l.buf, line)
	l.buf = append(l.buf, '\n')
	l.mu.Unlock()
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
