package chaos

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/herdchaos/herd/herd/topology"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/random_schedules.golden from the code as it is")

// goldenTopologies are the herds the golden schedules are drawn on: the default five,
// a 3x3 grid, a pair, and two random connected herds from fixed seeds.
func goldenTopologies() map[string]topology.Config {
	addr := func(n string) string { return "h:" + n }
	grid := func(r, c int) topology.Config {
		names, links := topology.Grid(r, c)
		return topology.Build(names, links, addr, addr)
	}
	return map[string]topology.Config{
		"five":     five(),
		"grid3x3":  grid(3, 3),
		"pair":     topology.Build([]string{"A", "B"}, [][2]string{{"A", "B"}}, addr, addr),
		"random7":  randomTopology(7, 7),
		"random12": randomTopology(12, 12),
	}
}

// randomTopology is a connected herd of n servers drawn from seed: a random tree, then
// each other pair linked with probability 1/4.
func randomTopology(seed uint64, n int) topology.Config {
	rng := rand.New(rand.NewPCG(seed, 1))
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("S%02d", i))
	}
	linked := map[[2]string]bool{}
	var links [][2]string
	link := func(a, b string) {
		if a > b {
			a, b = b, a
		}
		if a == b || linked[[2]string{a, b}] {
			return
		}
		linked[[2]string{a, b}] = true
		links = append(links, [2]string{a, b})
	}
	for i := 1; i < n; i++ {
		link(names[i], names[rng.IntN(i)])
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			if rng.IntN(4) == 0 {
				link(names[i], names[j])
			}
		}
	}
	addr := func(s string) string { return "h:" + s }
	return topology.Build(names, links, addr, addr)
}

// scheduleText is a schedule as text: its name and seed, then one JSON line per step
// with the fields RandomSchedule sets.
func scheduleText(sc *Scenario) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (seed %d)\n", sc.Name, sc.Seed)
	for _, st := range sc.Steps {
		line, err := json.Marshal(struct {
			Inject  *FaultSpec `json:"inject,omitempty"`
			As      string     `json:"as,omitempty"`
			Heal    string     `json:"heal,omitempty"`
			Updates int        `json:"updates,omitempty"`
			Check   string     `json:"check,omitempty"`
		}{st.Inject, st.As, st.Heal, st.Updates, st.Check})
		if err != nil {
			panic(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// goldenSchedules is one line per topology and seed: the SHA-256 of its schedule's text.
// Seed s draws 5 + s%40 rounds.
func goldenSchedules() (lines []string, texts map[string]string) {
	texts = map[string]string{}
	tops := goldenTopologies()
	for _, name := range []string{"five", "grid3x3", "pair", "random7", "random12"} {
		for seed := uint64(0); seed < 200; seed++ {
			text := scheduleText(RandomSchedule(seed, tops[name], 5+int(seed%40)))
			key := fmt.Sprintf("%s %d", name, seed)
			texts[key] = text
			lines = append(lines, fmt.Sprintf("%s %x", key, sha256.Sum256([]byte(text))))
		}
	}
	return lines, texts
}

// TestRandomScheduleMatchesGolden: the same seed and topology draw the same schedule as
// the code that wrote the golden file (seeds in notes must reproduce). Regenerate with
// -update-golden only when a change of the draw is meant.
func TestRandomScheduleMatchesGolden(t *testing.T) {
	const path = "testdata/random_schedules.golden"
	lines, texts := goldenSchedules()
	got := strings.Join(lines, "\n") + "\n"
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantLines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(wantLines) != len(lines) {
		t.Fatalf("golden has %d schedules, the code draws %d", len(wantLines), len(lines))
	}
	bad := 0
	for i, w := range wantLines {
		if w != lines[i] {
			if bad == 0 {
				key := strings.Join(strings.Fields(lines[i])[:2], " ")
				t.Errorf("%s: the schedule differs from the golden one; it is now:\n%s", key, texts[key])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d schedules differ from %s", bad, len(lines), path)
	}
}
