package synthetics

import (
	"context"
	"testing"

	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

type nopWriter struct{}

func (nopWriter) WriteTraces(context.Context, []byte) (store.WriteResult, error) {
	return store.WriteResult{}, nil
}

type nopRuns struct{}

func (nopRuns) SaveSyntheticRun(context.Context, store.SyntheticRun) error { return nil }

// BenchmarkRun measures one run of the 3-step journey against a local
// server: three connections, extracts, assertions, the trace encoded and
// the result stored (to no-op stores). The allocations include the test
// server's.
//
//	go test -run '^$' -bench BenchmarkRun -benchtime 2000x ./synthetics/
func BenchmarkRun(b *testing.B) {
	srv, _ := shopServer(b)
	defer srv.Close()
	p, err := New(Options{Writer: nopWriter{}, Runs: nopRuns{}})
	if err != nil {
		b.Fatal(err)
	}
	p.SetChecks([]checks.Check{journey(srv.URL)})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run, err := p.RunNow(ctx, "journey")
		if err != nil || !run.OK {
			b.Fatalf("run %+v, %v", run, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
	if err := p.Stop(ctx); err != nil {
		b.Fatal(err)
	}
}
