package alerting

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/flowscope/flowscope/alerting/rules"
	"github.com/flowscope/flowscope/store"
)

// SyntheticRunStore reads stored synthetic run results. *store.DB
// implements it.
type SyntheticRunStore interface {
	SyntheticRuns(ctx context.Context, q store.SyntheticRunQuery) ([]store.SyntheticRun, error)
}

// maxSyntheticRuns bounds the runs one observation reads: a check running
// every second has 3,600 in an hour.
const maxSyntheticRuns = 10_000

// SyntheticSignals evaluates synthetic_failure_rate and synthetic_p99 on
// the stored runs of the check a rule selects (select: {synthetic: CHECK}),
// as an ExtraSignals. Other signals are errors; Signals combines it with
// the sources of the other ones.
type SyntheticSignals struct {
	Runs SyntheticRunStore
}

// Observe implements ExtraSignals: one observation over the runs started
// in [start, end]: Count is the number of runs (so min_count counts
// runs), Value the fraction that failed or the nearest-rank p99 of their
// durations in nanoseconds. Exemplars are the trace IDs of the newest
// failed runs, or of the slowest runs. Without runs there is no
// observation (the instance retires).
func (s SyntheticSignals) Observe(ctx context.Context, r *rules.Rule, start, end time.Time) ([]Observation, error) {
	kind := r.Signal.Kind
	if kind != rules.SignalSyntheticFailureRate && kind != rules.SignalSyntheticP99 {
		return nil, fmt.Errorf("no source for signal %s", r.Signal.Name)
	}
	check := r.Select.Synthetic
	runs, err := s.Runs.SyntheticRuns(ctx, store.SyntheticRunQuery{Check: check, Start: start, End: end, Limit: maxSyntheticRuns})
	if err != nil {
		return nil, fmt.Errorf("synthetic runs of %s: %w", check, err)
	}
	if len(runs) == 0 {
		return nil, nil
	}
	sel := selection{check: check}
	o := Observation{Key: sel.key(), Labels: map[string]string{"check": check}, Target: "synthetic:" + check, Count: int64(len(runs))}
	switch kind {
	case rules.SignalSyntheticFailureRate:
		var failed int
		for _, run := range runs { // newest first
			if run.OK {
				continue
			}
			failed++
			if len(o.Exemplars) < MaxExemplars && run.TraceID != "" {
				o.Exemplars = append(o.Exemplars, run.TraceID)
			}
		}
		o.Value = float64(failed) / float64(len(runs))
	case rules.SignalSyntheticP99:
		slices.SortStableFunc(runs, func(a, b store.SyntheticRun) int { return cmp.Compare(b.Duration, a.Duration) })
		n := len(runs)
		rank := max(int(math.Ceil(0.99*float64(n)-1e-9)), 1) // ascending rank
		o.Value = float64(runs[n-rank].Duration)
		for _, run := range runs {
			if len(o.Exemplars) == MaxExemplars {
				break
			}
			if run.TraceID != "" {
				o.Exemplars = append(o.Exemplars, run.TraceID)
			}
		}
	}
	return []Observation{o}, nil
}

// Signals routes each rule to the ExtraSignals that evaluates its signal:
// the synthetic signals to Synthetic, policy_violations to Policy. A nil
// source reports that nothing produces the signal.
type Signals struct {
	Synthetic ExtraSignals
	Policy    ExtraSignals
}

// Observe implements ExtraSignals.
func (s Signals) Observe(ctx context.Context, r *rules.Rule, start, end time.Time) ([]Observation, error) {
	src := s.Synthetic
	if r.Signal.Kind == rules.SignalPolicyViolations {
		src = s.Policy
	}
	if src == nil {
		return nil, fmt.Errorf("no source for signal %s: nothing produces it in this collector", r.Signal.Name)
	}
	return src.Observe(ctx, r, start, end)
}
