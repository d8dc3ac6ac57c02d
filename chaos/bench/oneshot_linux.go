package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// oneShot runs clients one-shot clients, each sending one command per connection the way
// a grader does (connect, write, half-close, read to EOF, close), on a few event loops (one
// per processor, each an OS thread with its own epoll), the way wrk does. The load
// generator shares the machine with the herd it measures: with a goroutine and Go's
// net.Dial per client it cost twice the system calls (poller registration, address
// look-ups, keep-alive options), and with a blocking thread per client a third of the
// machine went on switching threads.
//
// Against a loopback address it spreads its connections over many source addresses of
// 127.0.0.0/8, as graders on many hosts would: from one source address, connect(2)
// spends most of its time looking for a free port among the tens of thousands in
// TIME_WAIT (the client half-closes first, so the waits are on its side), and that, not
// the herd, capped the rate at about 15,000 connections a second on this machine.
func oneShot(ctx context.Context, addr string, clients int, d time.Duration, times *clientTimes, t *tally) {
	o, err := newOneShotter(addr)
	if err != nil {
		t.add(nil, 1)
		return
	}
	oneShotLoops(ctx, o, clients, d, times, t)
}

// oneShotter is the server's address and the source addresses to connect from.
type oneShotter struct {
	family   int
	sa       syscall.Sockaddr // a template: connect(2) writes into it, so each call copies it
	loopback bool
	next     atomic.Uint32
}

// ipBindAddressNoPort (IP_BIND_ADDRESS_NO_PORT): bind the source address now, choose the
// port at connect(2) from the whole 4-tuple.
const ipBindAddressNoPort = 24

// sources is how many loopback source addresses a loopback load rotates through.
const sources = 4096

func newOneShotter(addr string) (*oneShotter, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa := &syscall.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		return &oneShotter{family: syscall.AF_INET, sa: sa, loopback: ip4[0] == 127}, nil
	}
	sa := &syscall.SockaddrInet6{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To16())
	return &oneShotter{family: syscall.AF_INET6, sa: sa}, nil
}

// target is a copy of the server's address for connect(2), which writes into it.
func (o *oneShotter) target() syscall.Sockaddr {
	switch t := o.sa.(type) {
	case *syscall.SockaddrInet4:
		c := *t
		return &c
	case *syscall.SockaddrInet6:
		c := *t
		return &c
	}
	return nil
}

// bindSource binds a loopback load's socket to the next of its source addresses.
func (o *oneShotter) bindSource(fd int) error {
	if !o.loopback {
		return nil
	}
	n := o.next.Add(1) % sources
	src := &syscall.SockaddrInet4{Addr: [4]byte{127, 2, byte(n/250 + 1), byte(n%250 + 1)}}
	syscall.SetsockoptInt(fd, syscall.SOL_IP, ipBindAddressNoPort, 1)
	if err := syscall.Bind(fd, src); err != nil {
		return fmt.Errorf("bind %d.%d.%d.%d: %w", src.Addr[0], src.Addr[1], src.Addr[2], src.Addr[3], err)
	}
	return nil
}

// slot is one of an event loop's concurrent one-shot clients.
type slot struct {
	fd      int // -1 when idle
	start   time.Time
	sent    bool // written and half-closed; now reading
	reply   []byte
	counter int
}

// oneShotLoops shares clients among one event loop per processor.
func oneShotLoops(ctx context.Context, o *oneShotter, clients int, d time.Duration, times *clientTimes, t *tally) {
	loops := min(clients, runtime.GOMAXPROCS(0))
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for l := range loops {
		n := clients / loops
		if l < clients%loops {
			n++
		}
		wg.Go(func() { t.add(o.loop(ctx, l, n, deadline, times)) })
	}
	wg.Wait()
}

func (o *oneShotter) loop(ctx context.Context, id, n int, deadline time.Time, times *clientTimes) (lat []time.Duration, bad int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, n
	}
	defer syscall.Close(ep)
	slots := make([]slot, n)
	var req []byte
	// begin starts slot i's next connection: it ends in an EPOLLOUT when connected.
	begin := func(i int) {
		s := &slots[i]
		s.fd, s.sent, s.reply = -1, false, s.reply[:0]
		fd, err := syscall.Socket(o.family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			bad++
			return
		}
		if err := o.bindSource(fd); err != nil {
			syscall.Close(fd)
			bad++
			return
		}
		s.start = time.Now()
		if err := syscall.Connect(fd, o.target()); err != nil && err != syscall.EINPROGRESS {
			syscall.Close(fd)
			bad++
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(i)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			syscall.Close(fd)
			bad++
			return
		}
		s.fd = fd
	}
	end := func(i int, ok bool) {
		s := &slots[i]
		syscall.Close(s.fd) // leaves the epoll set with it
		s.fd = -1
		if ok && bytes.HasPrefix(s.reply, []byte("AT ")) && s.reply[len(s.reply)-1] == '\n' {
			lat = append(lat, time.Since(s.start))
		} else {
			bad++
		}
	}
	running := func() bool { return time.Now().Before(deadline) && ctx.Err() == nil }
	for i := range slots {
		begin(i)
	}
	events := make([]syscall.EpollEvent, n)
	buf := make([]byte, 4096)
	for {
		open := 0
		for i := range slots {
			s := &slots[i]
			if s.fd >= 0 && time.Since(s.start) > 5*time.Second {
				end(i, false) // a timeout
			}
			if s.fd < 0 && running() {
				begin(i)
			}
			if s.fd >= 0 {
				open++
			}
		}
		if open == 0 {
			return lat, bad
		}
		k, err := syscall.EpollWait(ep, events, 100)
		if err != nil && err != syscall.EINTR {
			return lat, bad + open
		}
		for _, ev := range events[:max(k, 0)] {
			i := int(ev.Fd)
			s := &slots[i]
			if s.fd < 0 {
				continue
			}
			if !s.sent {
				if ev.Events&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
					end(i, false)
					continue
				}
				s.counter++
				req = append(req[:0], "IAMAT bench-"...)
				req = strconv.AppendInt(req, int64(id), 10)
				req = append(req, '-')
				req = strconv.AppendInt(req, int64(i*100+s.counter%100), 10)
				req = append(req, " +34.068930-118.445127 "...)
				req = times.appendNext(req)
				req = append(req, '\n')
				if w, err := syscall.Write(s.fd, req); err != nil || w != len(req) {
					end(i, false)
					continue
				}
				syscall.Shutdown(s.fd, syscall.SHUT_WR)
				s.sent = true
				in := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(i)}
				if syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, s.fd, &in) != nil {
					end(i, false)
				}
				continue
			}
			for {
				r, err := syscall.Read(s.fd, buf)
				if err == syscall.EAGAIN {
					break
				}
				if err != nil {
					end(i, false)
					break
				}
				if r == 0 {
					end(i, true)
					if running() {
						begin(i)
					}
					break
				}
				s.reply = append(s.reply, buf[:r]...)
			}
		}
	}
}
