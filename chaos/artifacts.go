package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// SaveArtifacts writes what a reader needs to see why a check failed into dir: the
// history (history.json), the seed and the faults in force (faults.txt), and each
// server's logs, shortened (ShortLog). It carries on past errors and returns them all.
func SaveArtifacts(ctx context.Context, c *Cluster, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	if b, err := c.History.JSON(); err == nil {
		errs = append(errs, os.WriteFile(filepath.Join(dir, "history.json"), b, 0o644))
	} else {
		errs = append(errs, err)
	}
	faults := fmt.Sprintf("seed %d\n%s\n", c.Seed, c.DescribeFaults())
	errs = append(errs, os.WriteFile(filepath.Join(dir, "faults.txt"), []byte(faults), 0o644))
	for _, n := range c.Nodes() {
		logs, err := c.Backend().Logs(ctx, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("logs of %s: %w", n, err))
		}
		for name, b := range logs {
			errs = append(errs, os.WriteFile(filepath.Join(dir, n+"-"+FileName(filepath.Base(name))), ShortLog(b), 0o644))
		}
	}
	return errors.Join(errs...)
}

// FileName makes s a file name: each run of characters other than letters, digits, '.',
// '_' and '-' becomes one '_' (a spec's or a test's name, for its artifacts' folder).
func FileName(s string) string { return notFile.ReplaceAllString(s, "_") }

var notFile = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Logs kept as artifacts are cut to what a reader needs: a server's log after a busy
// suite is tens of megabytes, and a broken herd fails many specs.
const (
	logTail    = 256 << 10 // the end of the log, whole
	logNotable = 256 << 10 // before it, only the lines about links, errors and refusals
	logScanned = 16 << 20  // of the part before the tail, how much is searched for them
)

// notable are the words of log lines worth keeping from before the tail.
var notable = regexp.MustCompile(`(?i)\bevent\b|link |dropp|refus|error|panic|fail|closing|start|serving|stopp`)

// ShortLog keeps the last logTail bytes of a log and, from before them, up to logNotable
// bytes of notable lines, with a note of what was cut.
func ShortLog(b []byte) []byte {
	if len(b) <= logTail+logNotable {
		return b
	}
	cut := len(b) - logTail
	if i := bytes.IndexByte(b[cut:], '\n'); i >= 0 {
		cut += i + 1
	}
	from := max(0, cut-logScanned) // a busy herd's log is hundreds of MB: look at its end
	var out bytes.Buffer
	if bytes.HasPrefix(b, []byte("[log: ")) { // what the backend left out (chaos.LogLimit)
		out.Write(b[:bytes.IndexByte(b, '\n')+1])
	}
	fmt.Fprintf(&out, "[artifacts: %d bytes of log; of the %d before the last %d, only lines about links, errors and refusals are kept]\n", len(b), cut-from, len(b)-cut)
	for _, line := range bytes.SplitAfter(b[from:cut], []byte("\n")) {
		if out.Len()+len(line) > logNotable {
			out.WriteString("[artifacts: more notable lines cut]\n")
			break
		}
		if notable.Match(line) {
			out.Write(line)
		}
	}
	out.WriteString("[artifacts: the last part of the log, whole]\n")
	out.Write(b[cut:])
	return out.Bytes()
}
