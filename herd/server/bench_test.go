package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herdchaos/herd/herd/client"
	"github.com/herdchaos/herd/herd/proto"
)

// BenchmarkIAMATOneShot is how graders talk: a connection per IAMAT, half-closed, on one
// server of the five-server herd (so each stored IAMAT is also flooded), from 32
// concurrent clients. ns/op is the inverse of throughput.
func BenchmarkIAMATOneShot(b *testing.B) { benchOneShot(b, Options{}) }

// BenchmarkIAMATOneShotSecret is BenchmarkIAMATOneShot with a peer secret: every peer
// line is authenticated (a running HMAC per link, see peer.go).
func BenchmarkIAMATOneShotSecret(b *testing.B) {
	benchOneShot(b, Options{Secret: []byte("bench-secret")})
}

func benchOneShot(b *testing.B, opts Options) {
	h := fiveHerd(b, opts)
	addr := h.addr("Goloman")
	b.SetParallelism(16) // 32 concurrent clients on two cores
	b.ReportAllocs()
	b.ResetTimer()
	var i int64
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i++
			n := i
			mu.Unlock()
			out, err := client.IAMAT(context.Background(), addr, fmt.Sprint("c", n%1000), "+34.068930-118.445127", fmt.Sprint(n))
			if err != nil || !strings.HasPrefix(out, "AT Goloman") {
				b.Fatalf("%q %v", out, err)
			}
		}
	})
}

// BenchmarkIAMATPipelined sends IAMATs back to back on persistent connections and reads
// the replies concurrently, end to end over loopback, with the log file on.
func BenchmarkIAMATPipelined(b *testing.B) { benchPipelined(b, Options{}) }

// BenchmarkIAMATPipelinedSecret is BenchmarkIAMATPipelined with a peer secret.
func BenchmarkIAMATPipelinedSecret(b *testing.B) {
	benchPipelined(b, Options{Secret: []byte("bench-secret")})
}

func benchPipelined(b *testing.B, opts Options) {
	h := fiveHerd(b, opts)
	addr := h.addr("Goloman")
	const conns = 8
	per := b.N/conns + 1
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := range conns {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			done := make(chan error, 1)
			go func() {
				r := bufio.NewReaderSize(conn, 64<<10)
				for range per {
					line, err := r.ReadSlice('\n')
					if err != nil || line[0] != 'A' {
						done <- fmt.Errorf("%q %v", line, err)
						return
					}
				}
				done <- nil
			}()
			w := bufio.NewWriterSize(conn, 64<<10)
			for i := range per {
				fmt.Fprintf(w, "IAMAT p%d-%d +34.068930-118.445127 %d\n", c, i%1000, i)
			}
			w.Flush()
			if err := <-done; err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// BenchmarkLogAdd is the cost of logging one peer line (buffered; written every 512).
func BenchmarkLogAdd(b *testing.B) {
	l, err := openWireLog(b.TempDir(), "Hands")
	if err != nil {
		b.Fatal(err)
	}
	defer l.close()
	at := "AT Goloman +0.000012345 pipe-3-42 +34.068930-118.445127 1764166240.123456789"
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.addAt(now, logOut, "peer:Hands", "HERD-", at)
		if i%512 == 0 {
			l.sync()
		}
	}
}

// BenchmarkPeerLineMAC is what the running MAC adds to one peer line with a secret, at
// both ends: the sender feeds it, the receiver feeds it as read.
func BenchmarkPeerLineMAC(b *testing.B) {
	send := newStreamMAC([]byte("bench-secret"), "dialler", "Goloman", "Hands", "n1", "n2")
	recv := newStreamMAC([]byte("bench-secret"), "dialler", "Goloman", "Hands", "n1", "n2")
	at := "AT Goloman +0.000012345 pipe-3-42 +34.068930-118.445127 1764166240.123456789"
	raw := []byte("HERD-" + at + "\n")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		send.addLine("HERD-", at)
		recv.add(raw)
	}
}

// BenchmarkPeerMACLine is the cost of one HERD-MAC line (one per flush) at both ends:
// the sender's Sum and line, the receiver's check.
func BenchmarkPeerMACLine(b *testing.B) {
	send := newStreamMAC([]byte("bench-secret"), "dialler", "Goloman", "Hands", "n1", "n2")
	recv := newStreamMAC([]byte("bench-secret"), "dialler", "Goloman", "Hands", "n1", "n2")
	b.ReportAllocs()
	for b.Loop() {
		line := send.next()
		if !recv.verify([]byte(line+"\n"), line[len(proto.PeerMAC)+1:]) {
			b.Fatal("MAC mismatch")
		}
	}
}
