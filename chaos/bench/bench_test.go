package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSummariseUsesNearestRankPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := Summarise(d)
	if s.Count != 100 || s.P50 != 50*time.Millisecond || s.P90 != 90*time.Millisecond ||
		s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Fatalf("%+v", s)
	}
	if one := Summarise([]time.Duration{7}); one.P50 != 7 || one.P99 != 7 || one.Max != 7 {
		t.Fatalf("%+v", one)
	}
	if (Summarise(nil) != Stats{}) {
		t.Fatal("empty input")
	}
}

func TestClientTimesIncrease(t *testing.T) {
	c := newClientTimes()
	a, b := c.next(), c.next()
	if a >= b || len(a) != len(b) {
		t.Fatalf("%s then %s", a, b)
	}
}

func TestAppendNextFormatsLikeNext(t *testing.T) {
	c := &clientTimes{}
	for _, v := range []int64{0, 1, 999999999, 1e9, 1764166240123456789} {
		c.n.Store(v)
		a := c.next()
		c.n.Store(v)
		if b := string(c.appendNext([]byte("x"))); b != "x"+a {
			t.Errorf("%d: next %q, appendNext %q", v, a, b)
		}
	}
}

// fakeHerd answers every IAMAT line with an AT line; in graders' style it reads to EOF
// first, so a client that does not half-close gets nothing.
func fakeHerd(t *testing.T, oneShot bool) (addr string, sources func() int) {
	var mu sync.Mutex
	seen := map[string]bool{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			mu.Lock()
			seen[host] = true
			mu.Unlock()
			go func() {
				defer c.Close()
				if oneShot {
					b, _ := io.ReadAll(c)
					for _, l := range strings.SplitAfter(string(b), "\n") {
						if strings.HasPrefix(l, "IAMAT ") {
							io.WriteString(c, "AT Fake +0.000000001 "+l[len("IAMAT "):])
						}
					}
					return
				}
				r, w := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						w.Flush()
						return
					}
					w.WriteString("AT Fake +0.000000001 " + l[len("IAMAT "):])
					if r.Buffered() == 0 {
						w.Flush()
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
}

func TestOneShotHalfClosesAndCountsReplies(t *testing.T) {
	addr, sources := fakeHerd(t, true)
	res := OneShot(context.Background(), addr, 4, 300*time.Millisecond)
	if res.Ops == 0 || res.Errors != 0 || res.Latency.Count != res.Ops {
		t.Fatalf("%+v", res)
	}
	if runtime.GOOS == "linux" && sources() < 2 {
		t.Errorf("%d connections came from %d source address(es); a loopback load spreads them", res.Ops, sources())
	}
}

func TestPipelinedCountsEveryReply(t *testing.T) {
	addr, _ := fakeHerd(t, false)
	res := Pipelined(context.Background(), addr, 3, 256, 300*time.Millisecond)
	if res.Ops < 64 || res.Errors != 0 || res.Latency.Count != res.Ops || res.Ops%64 != 0 {
		t.Fatalf("%+v (whole batches of 64 expected)", res)
	}
}

// A server that hangs up without answering costs errors, not a hang or a count.
func TestOneShotCountsUnansweredConnectionsAsErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	start := time.Now()
	res := OneShot(context.Background(), ln.Addr().String(), 4, 200*time.Millisecond)
	if res.Ops != 0 || res.Errors == 0 {
		t.Fatalf("%+v", res)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
}
