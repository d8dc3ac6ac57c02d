package server

import (
	"testing"
	"time"
)

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
