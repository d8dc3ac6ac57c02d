package simnet

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// pair listens on a server host and dials it from a client host.
func pair(t *testing.T) (n *Network, srv, cli *Host, a, b net.Conn) {
	t.Helper()
	n = New()
	srv, cli = n.Host("server"), n.Host("client")
	ln, err := srv.Listen("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	a, err = cli.Dial(context.Background(), "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return n, srv, cli, a, b
}

func TestBytesArriveInOrderAndAHalfCloseIsEOFAfterThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, _, a, b := pair(t)
		go func() {
			a.Write([]byte("hello "))
			a.Write([]byte("world"))
			a.(*Conn).CloseWrite()
		}()
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "hello world" {
			t.Fatalf("read %q, %v; want \"hello world\", nil", got, err)
		}
		if _, err := b.Write([]byte("reply")); err != nil {
			t.Fatalf("the half-closed side still reads: write = %v", err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "reply" {
			t.Fatalf("read %q, %v", buf, err)
		}
	})
}

func TestADialToNoListenerIsRefusedAtOnce(t *testing.T) {
	n := New()
	_, err := n.Host("c").Dial(context.Background(), "127.0.0.1:2")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial = %v, want ECONNREFUSED", err)
	}
}

func TestAReadDeadlinePassesInSimulatedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, _, a, _ := pair(t)
		start := time.Now()
		a.SetReadDeadline(start.Add(3 * time.Second))
		_, err := a.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read = %v, want a deadline error", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("the read gave up after %v, want 3s", d)
		}
	})
}

func TestAFullBufferBlocksTheWriterUntilTheReaderReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, _, a, b := pair(t)
		done := make(chan error)
		go func() {
			_, err := a.Write(make([]byte, BufferBytes+1))
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("a write of more than the buffer returned (%v) with nothing read", err)
		default:
		}
		if _, err := b.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("write = %v after the reader made room", err)
		}
	})
}

func TestClosingWithUnreadDataResetsTheOtherEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, _, a, b := pair(t)
		a.Write([]byte("unread"))
		b.Close()
		_, err := a.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read = %v, want ECONNRESET", err)
		}
	})
}

func TestAFrozenHostNeitherReadsNorTimesOutUntilThawed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, srv, _, a, b := pair(t)
		srv.Freeze()
		b.SetReadDeadline(time.Now().Add(time.Second))
		got := make(chan error, 1)
		go func() {
			_, err := b.Read(make([]byte, 1))
			got <- err
		}()
		a.Write([]byte("x"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("a frozen host's read returned %v", err)
		default:
		}
		srv.Thaw()
		// Thawed past its deadline, the read times out, as a stopped process's does.
		if err := <-got; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after thaw = %v, want the deadline passed", err)
		}
	})
}

func TestAHostGoingDownClosesItsListenersAndConnections(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, srv, cli, a, _ := pair(t)
		srv.Down()
		if _, err := a.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read from a dead host's connection = %v, want EOF", err)
		}
		if _, err := cli.Dial(context.Background(), "127.0.0.1:1"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial to a dead host = %v, want ECONNREFUSED", err)
		}
		if _, err := n.Host("server").Listen("127.0.0.1:1"); err != nil {
			t.Fatalf("a new incarnation cannot listen again: %v", err)
		}
	})
}

func TestBytesArriveAfterTheLatencyAndTheirTimeOnTheWire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, _, a, b := pair(t)
		start := time.Now()
		const size = 1 << 20
		go a.Write(make([]byte, size))
		if _, err := io.ReadFull(b, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		// The latency and its time on the wire; and a latency more each time the writer
		// waited for the reader to make room in the buffer (a TCP window's round trip).
		least := DefaultLatency + time.Duration(size*int64(time.Second)/DefaultBandwidth)
		most := least + size/BufferBytes*DefaultLatency
		if got := time.Since(start); got < least || got > most {
			t.Fatalf("1 MiB arrived after %v, want from %v (the latency and its time at %d B/s) to %v", got, least, DefaultBandwidth, most)
		}
	})
}
