package specs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/herdchaos/herd/chaos"
	"github.com/herdchaos/herd/herd/client"
)

// crashSets are every one- and two-server subset of the herd (on a herd of more than
// six, every one and a seeded sample of 15 pairs), never the whole herd.
func crashSets() []TableEntry {
	var out []TableEntry
	for _, a := range names {
		out = append(out, Entry(a, []string{a}))
	}
	var pairs [][]string
	for i, a := range names {
		for _, b := range names[i+1:] {
			pairs = append(pairs, []string{a, b})
		}
	}
	if len(names) > 2 { // never the whole herd
		for _, p := range sample(pairs, 15) {
			out = append(out, Entry(p[0]+" and "+p[1], p))
		}
	}
	return out
}

var _ = Describe("Crashes", Label("crash", "survival"), func() {
	DescribeTable("the survivors keep serving, updates reach exactly the reachable, and restarted servers converge",
		func(ctx SpecContext, down []string) {
			var faults []string
			for _, n := range down {
				faults = append(faults, inject(ctx, chaos.Crash{Node: n}))
			}
			newest := map[string]string{}
			for _, n := range names {
				if slices.Contains(down, n) {
					continue
				}
				u := update(ctx, n) // answered, delivered to the oracle's set, not across
				newest[u.Client] = u.AT
			}
			for _, f := range faults {
				check(cluster.Heal(ctx, f))
			}
			check(cluster.AwaitConvergence(ctx, newest, 15*time.Second))
		},
		crashSets(),
	)

	It("keeps serving around a gracefully stopped server, which converges when it starts again", func(ctx SpecContext) {
		hub := graph.hub()
		stop := inject(ctx, chaos.Stop{Node: hub})
		Expect(cluster.State(hub)).To(Equal(chaos.Stopped))
		a := update(ctx, graph.adj[hub][0]) // a neighbour of the stopped server
		b := update(ctx, graph.far(hub))
		check(cluster.Heal(ctx, stop))
		check(cluster.AwaitConvergence(ctx, map[string]string{a.Client: a.AT, b.Client: b.AT}, 15*time.Second))
	})

	It("converges a server restarted in the middle of a flood", Label("quick"), func(ctx SpecContext) {
		newest := map[string]string{}
		for i := range 30 {
			if i == 10 {
				inject(ctx, chaos.Restart{Node: graph.hub()})
			}
			u, err := cluster.Update(ctx, graph.leaf(), id("flood"), here, now())
			check(err)
			newest[u.Client] = u.AT
		}
		check(cluster.AwaitConvergence(ctx, newest, 15*time.Second))
	})
})

// pauses are the servers the pause specs freeze: the hub, a leaf, and a leaf's only
// neighbour (which cuts the leaf off while it is frozen) when there is one.
func pauses() []TableEntry {
	leaf, hub := graph.leaf(), graph.hub()
	var out []TableEntry
	add := func(n, why string) {
		if len(out) == 0 {
			out = append(out, Entry(n+", "+why, Label("quick"), n))
		} else {
			out = append(out, Entry(n+", "+why, n))
		}
	}
	if graph.degree(leaf) == 1 && graph.adj[leaf][0] != hub {
		add(graph.adj[leaf][0], leaf+"'s only neighbour")
	}
	add(hub, "the hub")
	if leaf != hub {
		add(leaf, "a leaf")
	}
	return out
}

var _ = Describe("Pauses", Label("pause", "survival"), func() {
	DescribeTable("a paused server stalls no one, and converges after it resumes",
		func(ctx SpecContext, node string) {
			inject(ctx, chaos.Pause{Node: node})
			newest := map[string]string{}
			for _, n := range names {
				if n == node {
					continue
				}
				// A burst at each server: all answered promptly though a neighbour is frozen.
				for range 20 {
					start := time.Now()
					u, err := cluster.Update(ctx, n, id("paused"), here, now())
					check(err)
					Expect(time.Since(start)).To(BeNumerically("<", time.Second), "%s answered an IAMAT slowly while %s was paused", n, node)
					newest[u.Client] = u.AT
				}
				u := update(ctx, n) // and delivered to the oracle's set, not across
				newest[u.Client] = u.AT
			}
			check(cluster.HealAll(ctx))
			check(cluster.AwaitConvergence(ctx, newest, 15*time.Second))
		},
		pauses(),
	)
})

var _ = Describe("Bad client input during faults", Label("quick", "replies"), func() {
	It("answers invalid lines with '? ' and changes nothing", func(ctx SpecContext) {
		u := update(ctx, graph.hub())
		inject(ctx, chaos.Partition{Groups: graph.halves(graph.hub())})
		inject(ctx, chaos.Latency{Links: allLinks(), Latency: 50 * time.Millisecond})
		bad := []string{
			"IAMAT " + u.Client + " 34.06-118.44 " + now(), // no sign
			"IAMAT " + u.Client + " +34.06-118.44 1e9",     // exponent
			"IAMAT " + u.Client + " +34.06-118.44",         // missing field
			"WHATSAT " + u.Client + " 51 5",                // radius over 50
			"WHATSAT " + u.Client + " 10 21",               // bound over 20
			"iamat lower case",
			"\x00\xff binary",
		}
		if claims("range-checks") {
			bad = append(bad, "IAMAT "+u.Client+" +91.0-118.4 "+now()) // latitude out of range
		}
		if claims("unknown-client") {
			bad = append(bad, "WHATSAT nobody-"+u.Client+" 10 5") // unknown client
		}
		if claims("peer-protocol") {
			bad = append(bad, "HERD-AT "+graph.hub()+" +0.000000000 "+u.Client+" +1+1 99999999999") // a client posing as a peer
		}
		for _, n := range names {
			for _, line := range bad {
				out, err := cluster.Raw(ctx, n, line+"\n")
				check(err)
				Expect(out).To(Equal("? "+line+"\n"), "%s must answer an invalid line with '? ' and the line", n)
			}
		}
		check(cluster.HealAll(ctx))
		check(cluster.AwaitConvergence(ctx, map[string]string{u.Client: u.AT}, 15*time.Second))
		for _, n := range names {
			rep, err := cluster.WHATSAT(ctx, n, u.Client, "1", 1)
			check(err)
			Expect(rep.AT).To(Equal(u.AT), "an invalid line changed what %s holds", n)
		}
	})
})

// Every herd must answer WHATSAT promptly whatever Places does (docs/PROTOCOL.md: never hang,
// never drop the connection silently); the AT line with a JSON error in the API's own
// shape, and the upstream's status passed on, are ours (places-errors).
var _ = Describe("Places faults", Label("places", "places-faults"), func() {
	whatsatQuickly := func(ctx context.Context, node string, u chaos.Accepted, within time.Duration) client.WhatsatReply {
		GinkgoHelper()
		start := time.Now()
		rep, err := cluster.WHATSAT(ctx, node, u.Client, "10", 5)
		took := time.Since(start)
		check(err, "WHATSAT at ", node, " while Places fails")
		Expect(took).To(BeNumerically("<", within), "WHATSAT at %s must be answered promptly while Places fails: it took %v; seed %d; artifacts in %s", node, took, seed, specDir())
		Expect(rep.Raw).NotTo(BeEmpty(), "WHATSAT at %s: no answer while Places fails; seed %d; artifacts in %s", node, seed, specDir())
		if claims("places-errors") {
			Expect(rep.AT).To(Equal(u.AT), "WHATSAT at %s answers with the AT line it holds while Places fails; seed %d; artifacts in %s", node, seed, specDir())
			check(placesFailure(rep.JSON), "WHATSAT at ", node, " while Places fails")
		}
		return rep
	}

	It("answers promptly when the upstream is down, while flooding goes on", Label("quick"), func(ctx SpecContext) {
		inject(ctx, chaos.PlacesDown{})
		u := update(ctx, graph.leaf())
		for _, n := range names {
			whatsatQuickly(ctx, n, u, 3*time.Second)
		}
	})

	It("answers within its timeout when the upstream is slow", func(ctx SpecContext) {
		inject(ctx, chaos.PlacesSlow{Latency: 10 * time.Second})
		n := graph.at(1)
		u := update(ctx, n)
		whatsatQuickly(ctx, n, u, 5*time.Second)
	})

	It("passes on the upstream's error status (ours: places-errors)", func(ctx SpecContext) {
		needs("places-errors", "the upstream's error status in the answer")
		inject(ctx, chaos.PlacesError{Status: "OVER_QUERY_LIMIT"})
		u := update(ctx, graph.hub())
		rep := whatsatQuickly(ctx, graph.far(graph.hub()), u, 3*time.Second)
		body := decodeJSON(rep.JSON)
		status := body["status"] // Nearby Search
		if e, ok := body["error"].(map[string]any); ok {
			status = e["status"] // Places API (New): the emulator's OVER_QUERY_LIMIT is a 429
		}
		Expect(status).To(BeElementOf("OVER_QUERY_LIMIT", "RESOURCE_EXHAUSTED"), "the upstream's status is passed on: %s; seed %d; artifacts in %s", rep.JSON, seed, specDir())
	})
})

// placesFailure checks a WHATSAT's JSON is a failed Places answer in either API's shape:
// Nearby Search's with a status that is not OK, or Places API (New)'s error object, and
// no places either way.
func placesFailure(js string) error {
	var body map[string]any
	if err := json.Unmarshal([]byte(js), &body); err != nil {
		return fmt.Errorf("the JSON of a failed Places answer does not parse: %v: %q", err, js)
	}
	results, _ := body["results"].([]any)
	places, _ := body["places"].([]any)
	if len(results)+len(places) > 0 {
		return fmt.Errorf("a failed Places answer lists places: %q", js)
	}
	if e, ok := body["error"].(map[string]any); ok && (e["status"] != nil || e["code"] != nil) {
		return nil
	}
	if st, ok := body["status"].(string); ok && st != "OK" {
		return nil
	}
	return fmt.Errorf("a failed Places answer says nothing went wrong (no status other than OK, no error object): %q", js)
}

func decodeJSON(s string) map[string]any {
	GinkgoHelper()
	var m map[string]any
	check(json.Unmarshal([]byte(s), &m), "WHATSAT JSON")
	return m
}
