package specs

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
)

var _ = Describe("Logs", Label("crash", "ours"), func() {
	It("holds every reply a client received, even when the server is killed right after", func(ctx SpecContext) {
		oursOnly("acknowledged means logged (docs/PROTOCOL.md asks only that logs be flushed promptly)")
		node := cluster.Nodes()[0]
		conn, err := chaos.DialNode(ctx, cluster.Backend(), node)
		check(err)
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))

		// Pipelined IAMATs, so replies leave in batches while the server is busy. All but
		// the first are older than it: answered, logged, and neither stored nor flooded,
		// so nothing but the reply itself makes the server write its log.
		const n = 5000
		client := id("logged")
		u, err := cluster.Update(ctx, node, client, "+34.068930-118.445127", now())
		check(err)
		past := longAgo()
		go func() {
			w := bufio.NewWriterSize(conn, 64<<10)
			for i := range n {
				fmt.Fprintf(w, "IAMAT %s +34.068930-118.445127 %s.%09d\n", client, past, i)
			}
			w.Flush()
		}()
		// Read in bulk, and kill the moment the last reply is in: the server may have
		// a few milliseconds' worth of log lines not yet written.
		var got []byte
		buf := make([]byte, 256<<10)
		for lines := 0; lines < n; {
			k, err := conn.Read(buf)
			got = append(got, buf[:k]...)
			lines += bytes.Count(buf[:k], []byte("\n"))
			check(err, "reading ", n, " replies from ", node, " (", lines, " so far)")
		}
		inject(ctx, chaos.Crash{Node: node})
		replies := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")

		logs, err := cluster.Backend().Logs(ctx, node)
		check(err, "reading the logs of ", node)
		var all []byte
		for name, b := range logs {
			if name != "stderr" {
				all = append(all, b...)
			}
		}
		if len(all) == 0 {
			Skip("the herd under test declares no log file")
		}
		// A server logs its replies in order: look for each after the one before it
		// (linear), and in the whole log only when it is not there.
		var missing []string
		from := 0
		for _, rep := range append(replies, u.AT) {
			if i := bytes.Index(all[from:], []byte(rep)); i >= 0 {
				from += i + len(rep)
			} else if !bytes.Contains(all, []byte(rep)) {
				missing = append(missing, rep)
			}
		}
		Expect(missing).To(BeEmpty(), fmt.Sprintf(
			"acknowledged means logged: %d of %d replies %s sent before it was killed are not in its log (the first: %q); seed %d; artifacts in %s",
			len(missing), n+1, node, first(missing), seed, specDir()))
	})
})

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
