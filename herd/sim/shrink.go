package sim

import "slices"

// Shrink makes a failing schedule smaller: it drops the phases after the failing one,
// then whole phases, faults and client operations (halves, then one at a time) while the
// run still fails with the same property, in at most budget runs. It returns the
// smallest schedule found, its failure, and the runs it took.
func Shrink(s *Schedule, f *Failure, budget int) (*Schedule, *Failure, int) {
	best, bestF := clone(s), f
	best.Phases = best.Phases[:min(len(best.Phases), f.Phase+1)]
	runs := 0
	try := func(c *Schedule) bool {
		if runs >= budget {
			return false
		}
		runs++
		r := Run(c)
		if r.Failure != nil && r.Failure.Property == f.Property {
			best, bestF = c, r.Failure
			// Phases after the new failing one are not needed either.
			best.Phases = best.Phases[:min(len(best.Phases), r.Failure.Phase+1)]
			return true
		}
		return false
	}
	for changed := true; changed && runs < budget; {
		changed = false
		// Whole phases.
		for i := 0; i < len(best.Phases) && len(best.Phases) > 1; {
			c := clone(best)
			c.Phases = slices.Delete(c.Phases, i, i+1)
			if try(c) {
				changed = true
				continue
			}
			i++
		}
		// Faults and operations, in chunks halving down to one.
		for p := 0; p < len(best.Phases); p++ {
			if dropChunks(best.Phases[p].Faults, func(lo, hi int) bool {
				c := clone(best)
				if p >= len(c.Phases) || hi > len(c.Phases[p].Faults) {
					return false
				}
				c.Phases[p].Faults = slices.Delete(c.Phases[p].Faults, lo, hi)
				return try(c)
			}) {
				changed = true
			}
			if p >= len(best.Phases) {
				break
			}
			if dropChunks(best.Phases[p].Ops, func(lo, hi int) bool {
				c := clone(best)
				if p >= len(c.Phases) || hi > len(c.Phases[p].Ops) {
					return false
				}
				c.Phases[p].Ops = slices.Delete(c.Phases[p].Ops, lo, hi)
				return try(c)
			}) {
				changed = true
			}
		}
	}
	return best, bestF, runs
}

// dropChunks tries dropping chunks of xs (halves, quarters, ... single items) with drop,
// which reports whether the schedule without them still fails (and was kept).
func dropChunks[T any](xs []T, drop func(lo, hi int) bool) bool {
	n := len(xs)
	dropped := false
	for size := n / 2; size >= 1; size /= 2 {
		for lo := 0; lo+size <= n; {
			if drop(lo, lo+size) {
				dropped = true
				n -= size
				continue
			}
			lo += size
		}
	}
	if len(xs) == 1 && drop(0, 1) {
		dropped = true
	}
	return dropped
}

func clone(s *Schedule) *Schedule {
	c := *s
	c.Phases = make([]Phase, len(s.Phases))
	for i, p := range s.Phases {
		c.Phases[i] = Phase{Window: p.Window, Faults: slices.Clone(p.Faults), Ops: slices.Clone(p.Ops)}
	}
	return &c
}
