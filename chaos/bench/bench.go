// Package bench measures any herd that speaks the protocol, from the outside: IAMAT
// throughput and latency with concurrent clients (one command per connection with a
// half-close, as graders talk, or persistent pipelined connections), and propagation
// time between every pair of servers.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herdchaos/herd/herd/client"
)

// Stats summarise latencies.
type Stats struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summarise computes percentiles (nearest rank).
func Summarise(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Stats{Count: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: s[len(s)-1]}
}

// Throughput is one load run's result.
type Throughput struct {
	Mode      string        `json:"mode"` // oneshot or pipelined
	Clients   int           `json:"clients"`
	Duration  time.Duration `json:"duration_ns"`
	Ops       int           `json:"ops"`
	PerSecond float64       `json:"per_second"`
	Latency   Stats         `json:"latency"`
	Errors    int           `json:"errors"`
	// Context a caller may add: the herd's processor time per IAMAT (when its processes
	// can be seen), and the share of the machine's processor time the hypervisor stole
	// during the run (Linux; -1 when unknown).
	HerdCPUPerOp time.Duration `json:"herd_cpu_per_op_ns,omitempty"`
	Steal        float64       `json:"cpu_steal_fraction"`
}

// clientTimes hands out distinct, increasing client times (nanoseconds since the epoch).
type clientTimes struct{ n atomic.Int64 }

func (c *clientTimes) next() string {
	v := c.n.Add(1)
	return fmt.Sprintf("%d.%09d", v/1e9, v%1e9)
}

// appendNext appends the next time to b.
func (c *clientTimes) appendNext(b []byte) []byte {
	v := c.n.Add(1)
	b = strconv.AppendInt(b, v/1e9, 10)
	frac := strconv.AppendInt(make([]byte, 0, 10), 1e9+v%1e9, 10) // "1" and nine digits
	b = append(b, '.')
	return append(b, frac[1:]...)
}

func newClientTimes() *clientTimes {
	c := &clientTimes{}
	c.n.Store(time.Now().UnixNano())
	return c
}

// OneShot runs clients concurrent graders for d against addr: each IAMAT on its own
// connection, half-closed, the reply read to EOF.
func OneShot(ctx context.Context, addr string, clients int, d time.Duration) Throughput {
	start := time.Now()
	var t tally
	oneShot(ctx, addr, clients, d, newClientTimes(), &t)
	return t.throughput("oneshot", clients, start)
}

// tally gathers the latencies and errors of concurrent clients.
type tally struct {
	mu   sync.Mutex
	lat  []time.Duration
	errs int
}

func (t *tally) add(lat []time.Duration, errs int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lat = append(t.lat, lat...)
	t.errs += errs
}

// throughput is the result of a run of mode that began at start and ends now.
func (t *tally) throughput(mode string, clients int, start time.Time) Throughput {
	el := time.Since(start)
	t.mu.Lock()
	defer t.mu.Unlock()
	return Throughput{Mode: mode, Clients: clients, Duration: el, Ops: len(t.lat), PerSecond: float64(len(t.lat)) / el.Seconds(),
		Latency: Summarise(t.lat), Errors: t.errs}
}

// Pipelined runs clients persistent connections for d against addr, each writing IAMATs
// back to back (at most window unanswered) while reading the replies in order. Lines go
// out in batches of up to 64 (one write each); a reply's latency counts from the write
// of its batch.
func Pipelined(ctx context.Context, addr string, clients, window int, d time.Duration) Throughput {
	times := newClientTimes()
	var t tally
	start := time.Now()
	deadline := start.Add(d)
	batch := max(1, min(64, window/2))
	type sent struct {
		at    time.Time
		lines int
	}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			var dialer net.Dialer
			conn, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				t.add(nil, 1)
				return
			}
			defer conn.Close()
			batches := make(chan sent, max(1, window/batch-1)) // with the batch being written, the window
			var mine []time.Duration
			readDone := make(chan int)
			go func() {
				r := bufio.NewReaderSize(conn, 64<<10)
				bad := 0
				for b := range batches {
					for range b.lines {
						line, err := r.ReadSlice('\n')
						if err != nil {
							bad++
							break
						}
						if len(line) < 3 || string(line[:3]) != "AT " {
							bad++
							continue
						}
						mine = append(mine, time.Since(b.at))
					}
				}
				readDone <- bad
			}()
			prefix := fmt.Appendf(nil, "IAMAT pipe-%d-", c)
			var buf []byte
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; {
				buf = buf[:0]
				for range batch {
					buf = append(buf, prefix...)
					buf = strconv.AppendInt(buf, int64(i%100), 10)
					buf = append(buf, " +34.068930-118.445127 "...)
					buf = times.appendNext(buf)
					buf = append(buf, '\n')
					i++
				}
				at := time.Now()
				if _, err := conn.Write(buf); err != nil {
					break
				}
				batches <- sent{at: at, lines: batch}
			}
			close(batches)
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			bad := <-readDone // the reader is done with mine
			t.add(mine, bad)
		})
	}
	wg.Wait()
	return t.throughput("pipelined", clients, start)
}

// Propagation is the time from an IAMAT accepted at From until To answers WHATSAT with
// it, over Samples updates.
type Propagation struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Hops    int    `json:"hops"`
	Latency Stats  `json:"latency"`
}

// Propagations measures every ordered pair of servers: an IAMAT at From, then WHATSAT at
// To on a persistent connection, asked again at once, until it names the update. The
// figure includes one WHATSAT round trip (the poll that sees it).
func Propagations(ctx context.Context, addrs map[string]string, samples int) ([]Propagation, error) {
	names := make([]string, 0, len(addrs))
	for n := range addrs {
		names = append(names, n)
	}
	slices.Sort(names)
	times := newClientTimes()
	var out []Propagation
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			conn, err := client.Dial(ctx, addrs[to])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", to, err)
			}
			var lat []time.Duration
			for i := range samples {
				id := fmt.Sprintf("prop-%s-%s-%d", from, to, i)
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				t0 := time.Now()
				at, err := client.IAMAT(pctx, addrs[from], id, "+34.068930-118.445127", times.next())
				if err != nil {
					cancel()
					conn.Close()
					return nil, fmt.Errorf("IAMAT at %s: %w", from, err)
				}
				for {
					// A radius of 0.001 km keeps the Places answer tiny.
					rep, err := conn.WHATSAT(pctx, id, "0.001", 1)
					if err != nil {
						cancel()
						conn.Close()
						return nil, fmt.Errorf("WHATSAT at %s: %w (the update from %s never arrived?)", to, err, from)
					}
					if rep.AT == at {
						lat = append(lat, time.Since(t0))
						break
					}
				}
				cancel()
			}
			conn.Close()
			out = append(out, Propagation{From: from, To: to, Latency: Summarise(lat)})
		}
	}
	return out, nil
}

// Fanout is one update's spread: from an IAMAT accepted at Origin until every other
// server answers WHATSAT with it.
type Fanout struct {
	Origin string                   `json:"origin"`
	Delay  map[string]time.Duration `json:"delay_ns"` // per server
}

// Fanouts sends one IAMAT at each origin in turn and polls every other server at once (a
// persistent connection each) until each names it.
func Fanouts(ctx context.Context, addrs map[string]string, origins []string) ([]Fanout, error) {
	times := newClientTimes()
	conns := map[string]*client.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for n, a := range addrs {
		c, err := client.Dial(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		conns[n] = c
	}
	var out []Fanout
	for i, origin := range origins {
		id := fmt.Sprintf("fanout-%d", i)
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		t0 := time.Now()
		at, err := conns[origin].IAMAT(fctx, id, "+34.068930-118.445127", times.next())
		if err != nil {
			cancel()
			return nil, fmt.Errorf("IAMAT at %s: %w", origin, err)
		}
		f := Fanout{Origin: origin, Delay: map[string]time.Duration{}}
		var mu sync.Mutex
		var wg sync.WaitGroup
		var firstErr error
		for n, c := range conns {
			if n == origin {
				continue
			}
			wg.Go(func() {
				for {
					rep, err := c.WHATSAT(fctx, id, "0.001", 1)
					if err != nil {
						mu.Lock()
						firstErr = cmpErr(firstErr, fmt.Errorf("WHATSAT at %s: %w", n, err))
						mu.Unlock()
						return
					}
					if rep.AT == at {
						mu.Lock()
						f.Delay[n] = time.Since(t0)
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		cancel()
		if firstErr != nil {
			return nil, firstErr
		}
		out = append(out, f)
	}
	return out, nil
}

func cmpErr(old, new error) error {
	if old != nil {
		return old
	}
	return new
}

// Load stores n distinct clients at addr over pipes pipelined connections and returns
// once every IAMAT is answered.
func Load(ctx context.Context, addr string, n, pipes int) error {
	times := newClientTimes()
	var wg sync.WaitGroup
	errs := make([]error, pipes)
	per := (n + pipes - 1) / pipes
	for p := range pipes {
		wg.Go(func() {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				errs[p] = err
				return
			}
			defer conn.Close()
			first, last := p*per, min((p+1)*per, n)
			done := make(chan error, 1)
			go func() {
				r := bufio.NewReaderSize(conn, 64<<10)
				for i := first; i < last; i++ {
					line, err := r.ReadSlice('\n')
					if err != nil || len(line) < 3 || string(line[:3]) != "AT " {
						done <- fmt.Errorf("reply %d: %q %v", i, line, err)
						return
					}
				}
				done <- nil
			}()
			w := bufio.NewWriterSize(conn, 64<<10)
			for i := first; i < last; i++ {
				fmt.Fprintf(w, "IAMAT client-%09d +34.068930-118.445127 %s\n", i, times.next())
			}
			w.Flush()
			errs[p] = <-done
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
