package bench

import (
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// oneShotter sends one command per connection the way a grader does (connect, write,
// half-close, read to EOF, close), with blocking sockets and no more system calls than
// that: the load generator shares the machine with the herd it measures, and Go's
// net.Dial costs twice the calls (non-blocking set-up, poller registration, address
// look-ups, keep-alive options).
//
// Against a loopback address it spreads its connections over many source addresses of
// 127.0.0.0/8, as graders on many hosts would: from one source address, connect(2)
// spends most of its time looking for a free port among the tens of thousands in
// TIME_WAIT (the client half-closes first, so the waits are on its side), and that, not
// the herd, capped the rate at about 15,000 connections a second on this machine.
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

// exchange sends req and reads the whole reply into buf, within timeout.
func (o *oneShotter) exchange(req, buf []byte, timeout time.Duration) ([]byte, error) {
	fd, err := syscall.Socket(o.family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	defer syscall.Close(fd)
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	// SO_SNDTIMEO bounds connect and write, SO_RCVTIMEO each read.
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if o.loopback {
		n := o.next.Add(1) % sources
		src := &syscall.SockaddrInet4{Addr: [4]byte{127, 2, byte(n/250 + 1), byte(n%250 + 1)}}
		syscall.SetsockoptInt(fd, syscall.SOL_IP, ipBindAddressNoPort, 1)
		if err := syscall.Bind(fd, src); err != nil {
			return nil, fmt.Errorf("bind %d.%d.%d.%d: %w", src.Addr[0], src.Addr[1], src.Addr[2], src.Addr[3], err)
		}
	}
	var sa syscall.Sockaddr
	switch t := o.sa.(type) {
	case *syscall.SockaddrInet4:
		c := *t
		sa = &c
	case *syscall.SockaddrInet6:
		c := *t
		sa = &c
	}
	if err := ignoringEINTR(func() error { return syscall.Connect(fd, sa) }); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	for len(req) > 0 {
		n, err := syscall.Write(fd, req)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
		req = req[n:]
	}
	if err := syscall.Shutdown(fd, syscall.SHUT_WR); err != nil {
		return nil, fmt.Errorf("shutdown: %w", err)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != syscall.EINTR {
			return err
		}
	}
}
