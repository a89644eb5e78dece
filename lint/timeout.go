package lint

import (
	"fmt"
	"math"
)

// timeoutBudget reports synchronous edges A → B with an inferred timeout
// tAB that is not longer than Threshold × B's downstream budget: the
// largest tBC × attempts(B → C) over B's synchronous out-edges with an
// inferred timeout tBC (attempts: Edge.Attempts, 1 when unknown). Such a
// caller gives up while its callee may still be waiting on, or retrying,
// its own calls: the callee's work is wasted.
func (x *index) timeoutBudget(s Setting) []Finding {
	var out []Finding
	for _, ab := range x.edges {
		if ab.Async || ab.TimeoutNs <= 0 {
			continue
		}
		var (
			budget float64
			worst  *edge
		)
		for _, bc := range x.out[ab.dst] {
			if bc.Async || bc.TimeoutNs <= 0 {
				continue
			}
			if b := float64(bc.TimeoutNs) * bc.attempts(); b > budget {
				budget, worst = b, bc
			}
		}
		if worst == nil {
			continue
		}
		limit := s.Threshold * budget
		t := float64(ab.TimeoutNs)
		if !(t <= limit) || math.IsInf(limit, 0) {
			continue
		}
		a, b, c := x.ids[ab.src], x.ids[ab.dst], x.ids[worst.dst]
		factor := ""
		if s.Threshold != 1 {
			factor = fmt.Sprintf("%s × ", fmtNum(s.Threshold))
		}
		out = append(out, Finding{
			Nodes:     []string{a, b, c},
			Edges:     [][2]string{x.pair(ab), x.pair(worst)},
			Value:     t,
			Threshold: limit,
			Exemplar:  ab.Exemplar,
			Message: fmt.Sprintf("%s → %s times out after %s, not longer than %s%s's own downstream budget of %s (%s → %s: timeout %s × %s attempts), so %s gives up while %s still works for it.",
				a, b, fmtDur(t), factor, b, fmtDur(budget), b, c, fmtDur(float64(worst.TimeoutNs)), fmtNum(worst.attempts()), a, b),
		})
	}
	return out
}

// retryStorm reports edges whose share of retried calls, Retried/Calls,
// is above the threshold, with the edge's amplification (Edge.Attempts).
func (x *index) retryStorm(s Setting) []Finding {
	var out []Finding
	for _, e := range x.edges {
		if e.Calls <= 0 || e.Retried <= 0 {
			continue
		}
		share := min(float64(e.Retried)/float64(e.Calls), 1)
		if !(share > s.Threshold) {
			continue
		}
		a, b := x.ids[e.src], x.ids[e.dst]
		amp := "unknown calls"
		if e.Attempts > 0 {
			amp = fmt.Sprintf("%s calls", fmtNum(e.Attempts))
		}
		out = append(out, Finding{
			Nodes:         []string{a, b},
			Edges:         [][2]string{x.pair(e)},
			Value:         share,
			Threshold:     s.Threshold,
			Amplification: e.Attempts,
			Exemplar:      e.Exemplar,
			Message: fmt.Sprintf("%s of the %s %s → %s are retries, above %s; each request into %s makes %s to %s.",
				fmtPct(share, 1), plural(int(min(e.Calls, 1<<31-1)), "call"), a, b, fmtPct(s.Threshold, 1), a, amp, b),
		})
	}
	return out
}
