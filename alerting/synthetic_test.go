package alerting

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/alerting/rules"
	"github.com/flowscope/flowscope/store"
)

// fakeRuns serves runs newest first, filtered by check and start.
type fakeRuns struct {
	runs []store.SyntheticRun
	q    store.SyntheticRunQuery
}

func (f *fakeRuns) SyntheticRuns(_ context.Context, q store.SyntheticRunQuery) ([]store.SyntheticRun, error) {
	f.q = q
	var out []store.SyntheticRun
	for _, r := range f.runs {
		if r.Check == q.Check && !r.Start.Before(q.Start) && !r.Start.After(q.End) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b store.SyntheticRun) int { return b.Start.Compare(a.Start) })
	return out, nil
}

func syntheticRule(t *testing.T, signal string) *rules.Rule {
	t.Helper()
	above := "0.5"
	if signal == "synthetic_p99" {
		above = "500ms"
	}
	rs, err := rules.Parse("r.yml", []byte(fmt.Sprintf(`rules:
  - alert: journey-%s
    signal: %s
    select: {synthetic: journey}
    above: %s
    window: 1m
`, signal, signal, above)))
	if err != nil {
		t.Fatal(err)
	}
	return &rs[0]
}

func TestSyntheticSignals(t *testing.T) {
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	run := func(i int, ok bool, d time.Duration) store.SyntheticRun {
		return store.SyntheticRun{Check: "journey", RunID: fmt.Sprintf("%016x", i), TraceID: fmt.Sprintf("%032x", i),
			Start: base.Add(time.Duration(i) * time.Second), Duration: d, OK: ok}
	}
	var runs []store.SyntheticRun
	for i := 1; i <= 100; i++ {
		runs = append(runs, run(i, i%4 != 0, time.Duration(i)*time.Millisecond))
	}
	runs = append(runs, store.SyntheticRun{Check: "other", RunID: "x", Start: base.Add(5 * time.Second), Duration: time.Hour})
	tests := []struct {
		name       string
		signal     string
		start, end time.Time
		wantCount  int64
		wantValue  float64
		wantEx     []int
	}{
		// Runs 1..100, every fourth failing: 25 of 100.
		{"failure rate", "synthetic_failure_rate", base, base.Add(100 * time.Second), 100, 0.25, []int{100, 96, 92, 88, 84}},
		// Runs 61..100: 10 of 40 fail.
		{"failure rate in range", "synthetic_failure_rate", base.Add(61 * time.Second), base.Add(100 * time.Second), 40, 0.25, []int{100, 96, 92, 88, 84}},
		// Nearest rank: p99 of 100 values is the 99th, 99 ms.
		{"p99 of 100", "synthetic_p99", base, base.Add(100 * time.Second), 100, float64(99 * time.Millisecond), []int{100, 99, 98, 97, 96}},
		// p99 of 10 values (91..100) is the 10th: 100 ms.
		{"p99 of 10", "synthetic_p99", base.Add(91 * time.Second), base.Add(100 * time.Second), 10, float64(100 * time.Millisecond), []int{100, 99, 98, 97, 96}},
		{"no runs", "synthetic_p99", base.Add(time.Hour), base.Add(2 * time.Hour), 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeRuns{runs: runs}
			obs, err := SyntheticSignals{Runs: src}.Observe(context.Background(), syntheticRule(t, tc.signal), tc.start, tc.end)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantCount == 0 {
				if len(obs) != 0 {
					t.Fatalf("observations without runs: %+v", obs)
				}
				return
			}
			if len(obs) != 1 {
				t.Fatalf("%d observations, want 1", len(obs))
			}
			o := obs[0]
			if o.Count != tc.wantCount || o.Value != tc.wantValue || o.Labels["check"] != "journey" || o.Target != "synthetic:journey" {
				t.Fatalf("observation %+v, want count %d value %v", o, tc.wantCount, tc.wantValue)
			}
			var want []string
			for _, i := range tc.wantEx {
				want = append(want, fmt.Sprintf("%032x", i))
			}
			if !slices.Equal(o.Exemplars, want) {
				t.Fatalf("exemplars %v, want %v", o.Exemplars, want)
			}
			if src.q.Check != "journey" || src.q.Limit != maxSyntheticRuns {
				t.Fatalf("query %+v", src.q)
			}
		})
	}
}

func TestSignalsRouting(t *testing.T) {
	rs, err := rules.Parse("r.yml", []byte(`rules:
  - alert: policy
    signal: policy_violations
    above: 0
    window: 1m
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Signals{Synthetic: SyntheticSignals{Runs: &fakeRuns{}}}.Observe(context.Background(), &rs[0], time.Time{}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "no source for signal policy_violations") {
		t.Fatalf("policy without a source: %v", err)
	}
	_, err = SyntheticSignals{Runs: &fakeRuns{}}.Observe(context.Background(), &rs[0], time.Time{}, time.Now())
	if err == nil {
		t.Fatal("SyntheticSignals evaluated policy_violations")
	}
}
