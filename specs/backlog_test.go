package specs

import (
	"bufio"
	"bytes"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

// A herd that cannot send as fast as its clients update must still deliver every
// client's newest location: it may skip superseded updates (ours replaces a backlog too
// long for its queue with a resync), but never drop the newest one of a client.
//
// The scale (200,000 updates in a burst, every newest location across within 30 s) is our
// herd's promise; a herd that floods one connection per message cannot keep it and is
// not wrong for that.
var _ = Describe("A link slower than the updates", Ordered, Label("links", "ours"), func() {
	BeforeAll(func() { oursOnly("200,000 updates in a burst, every newest location across a slow link within 30 s") })
	ownHerdOf := ownHerdIn()

	It("delivers every client's newest location after a burst of 200,000 updates too fast for it", func(ctx SpecContext) {
		herd := ownHerdOf()
		// The link into a server with one neighbour, so nothing detours around it.
		cfg := herd.Config()
		var far, near string
		for _, n := range herd.Nodes() {
			if nb := cfg.Server(n).Neighbours(); len(nb) == 1 {
				far, near = n, nb[0]
				break
			}
		}
		if far == "" {
			Skip("the topology has no server with a single neighbour")
		}
		settle(ctx, herd)
		_, err := herd.Inject(ctx, chaos.Bandwidth{Links: []chaos.Link{{From: near, To: far}}, KBps: 1000})
		check(err)

		conn, err := chaos.DialNode(ctx, herd.Backend(), near)
		check(err)
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(60 * time.Second))

		// One client updated over and over (the backlog), and in the middle of it a
		// hundred others updated once: their only update waits behind the backlog.
		const before, after, others = 100000, 100000, 100
		filler := id("backlog")
		base := time.Now().Unix()
		var text bytes.Buffer
		w := bufio.NewWriter(&text)
		for i := range before + after {
			if i == before {
				for j := range others {
					fmt.Fprintf(w, "IAMAT %s-%03d +34.068930-118.445127 %s\n", filler, j, now())
				}
			}
			// A millisecond apart: any comparison orders them (a float64 one too), so a
			// miss here is the backlog's, not the time comparison's (precision_test's).
			fmt.Fprintf(w, "IAMAT %s +34.068930-118.445127 %d.%03d000000\n", filler, base+int64(i+1)/1000, (i+1)%1000)
		}
		w.Flush()
		total := before + after + others
		go conn.Write(text.Bytes())
		var got []byte
		buf := make([]byte, 1<<20)
		for lines := 0; lines < total; {
			k, err := conn.Read(buf)
			got = append(got, buf[:k]...)
			lines += bytes.Count(buf[:k], []byte("\n"))
			check(err, "reading ", total, " replies from ", near, " (", lines, " so far)")
		}
		newest := map[string]string{}
		for _, line := range bytes.Split(bytes.TrimSuffix(got, []byte("\n")), []byte("\n")) {
			f := bytes.Fields(line)
			if len(f) == 6 {
				newest[string(f[3])] = string(line) // replies come in order: the last is the newest
			}
		}
		Expect(newest).To(HaveLen(others+1), "every IAMAT of the burst is answered with an AT line")
		check(herd.AwaitConvergence(ctx, newest, 30*time.Second),
			"every client's newest location crosses a link slower than the updates (", near, "->", far, " at 1000 KB/s)")
	})
})
