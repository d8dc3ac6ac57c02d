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
// that was logged; lines after which nothing is sent wait at most logFlushEvery. sync is
// a group commit: while one caller writes, others append, and the next write carries all
// of theirs, so concurrent connections share write calls.
type wireLog struct {
	f *os.File

	mu     sync.Mutex // guards chunks, free, added and the stamp
	chunks [][]byte   // entries not yet written, in order; new ones go in the last
	free   [][]byte   // written chunks kept for reuse
	added  int64      // bytes ever appended
	// The last timestamp formatted, and its second (see stampOf): formatting a time on
	// every line was a tenth of the herd's CPU under load.
	sec, stampNs int64
	stamp        []byte

	wmu     sync.Mutex // one writer at a time; guards written and err
	written int64      // bytes ever handed to the kernel
	err     error
}

// Entries are buffered in chunks, not one growing buffer: when a write stalls (the
// kernel throttles a fast writer of dirty pages) the entries made meanwhile fill fresh
// chunks instead of copying a buffer of megabytes again and again.
const (
	chunkSize = 64 << 10
	keepFree  = 64 // chunks kept for reuse (4 MiB)
)

// room returns the chunk that new entries go in, with at least n bytes free. Call with
// l.mu held.
func (l *wireLog) room(n int) []byte {
	if k := len(l.chunks); k > 0 && cap(l.chunks[k-1])-len(l.chunks[k-1]) >= n {
		return l.chunks[k-1]
	}
	var c []byte
	if k := len(l.free); k > 0 && n <= chunkSize {
		c, l.free = l.free[k-1], l.free[:k-1]
	} else {
		c = make([]byte, 0, max(chunkSize, n))
	}
	l.chunks = append(l.chunks, c)
	return c
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
	isPlain := plain(prefix) && plain(line)
	size := len(prefix) + len(line)
	if !isPlain {
		size *= 4 // the most quoting can take: "\xff" for a byte
	}
	l.mu.Lock()
	stamp := l.stampOf(now)
	b := l.room(len(stamp) + len(kind) + len(who) + size + 6)
	n := len(b)
	b = append(b, stamp...)
	b = append(b, ' ')
	b = append(b, kind...)
	b = append(b, ' ')
	b = append(b, who...)
	b = append(b, ' ')
	if isPlain {
		b = append(b, '"')
		b = append(b, prefix...)
		b = append(b, line...)
		b = append(b, '"')
	} else {
		b = strconv.AppendQuote(b, prefix+line)
	}
	b = append(b, '\n')
	l.chunks[len(l.chunks)-1] = b
	l.added += int64(len(b) - n)
	l.mu.Unlock()
}

// stampOf is now as "2006-01-02T15:04:05.999999999Z" (nine digits always). The last one
// is kept, and the part up to the second, for a batch of lines shares one time and a
// busy second shares its prefix. Call with l.mu held.
func (l *wireLog) stampOf(now time.Time) []byte {
	now = now.UTC()
	ns := now.UnixNano()
	if ns == l.stampNs && l.stamp != nil {
		return l.stamp
	}
	if sec := now.Unix(); sec != l.sec || l.stamp == nil {
		l.sec = sec
		l.stamp = now.AppendFormat(l.stamp[:0], "2006-01-02T15:04:05.")
	}
	l.stampNs = ns
	l.stamp = append(appendNanos(l.stamp[:len("2006-01-02T15:04:05.")], now.Nanosecond()), 'Z')
	return l.stamp
}

// appendNanos appends n (under 10^9) as nine digits.
func appendNanos(b []byte, n int) []byte {
	const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
		"404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
	var d [9]byte
	for i := 7; i > 0; i -= 2 {
		p := n % 100 * 2
		d[i], d[i+1] = pairs[p], pairs[p+1]
		n /= 100
	}
	d[0] = byte('0' + n)
	return append(b, d[:]...)
}

// plain reports whether s is printable ASCII with no quote or backslash, which quoting
// leaves as it is (escaping rune by rune was a third of the herd's CPU under load). It
// tests eight bytes at a time: every logged line goes through it.
func plain(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		v := binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
		q, bs := v^('"'*ones), v^('\\'*ones)
		// Each term has a byte's high bit set where that byte is bad; with no byte over
		// 0x7f (the first term) each of the others is exact.
		bad := v | // a byte over 0x7f
			(v-0x20*ones)&^v | // a byte under 0x20
			(v + ones) | // 0x7f
			(q-ones)&^q | // '"'
			(bs-ones)&^bs // '\\'
		if bad&highs != 0 {
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
	chunks, end := l.chunks, l.added
	l.chunks = nil
	l.mu.Unlock()
	for _, c := range chunks {
		if _, err := l.f.Write(c); err != nil && l.err == nil {
			l.err = err // reported once, at close: the herd keeps serving without its log
		}
	}
	l.written = end
	l.mu.Lock()
	for _, c := range chunks {
		if len(l.free) < keepFree && cap(c) == chunkSize {
			l.free = append(l.free, c[:0])
		}
	}
	l.mu.Unlock()
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
