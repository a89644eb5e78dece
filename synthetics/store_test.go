package synthetics

import (
	"context"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// TestRealStore: the store accepts the prober's runs and spans; the run is
// read back, its trace by ID and by correlation ID.
func TestRealStore(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, _ := shopServer(t)
	broken := check("broken", time.Minute, mkStep("cart", "GET", srv.URL+"/cart", status(200)), mkStep("after", "GET", srv.URL+"/"))
	h := newHarness(t, []checks.Check{journey(srv.URL), broken}, func(o *Options) { o.Writer, o.Runs = db, db })
	ctx := context.Background()
	for _, name := range []string{"journey", "broken"} {
		run, err := h.p.RunNow(ctx, name)
		if err != nil {
			t.Fatalf("RunNow(%s): %v", name, err)
		}
		if run.OK != (name == "journey") {
			t.Errorf("run of %s: %+v", name, run)
		}
		got, err := db.SyntheticRun(ctx, name, run.RunID)
		if err != nil {
			t.Fatalf("SyntheticRun(%s): %v", run.RunID, err)
		}
		if got.CorrelationID != run.CorrelationID || got.TraceID != run.TraceID || !got.Start.Equal(run.Start) ||
			got.OK != run.OK || got.Error != run.Error || len(got.Steps) != len(run.Steps) {
			t.Errorf("stored run %+v, want %+v", got, run)
		}
		for i := range got.Steps {
			if g, w := got.Steps[i], run.Steps[i]; g.Error != w.Error || g.Body != w.Body || g.SpanID != w.SpanID ||
				g.Skipped != w.Skipped || !slices.Equal(g.Assertions, w.Assertions) {
				t.Errorf("stored step %d %+v, want %+v", i, g, w)
			}
		}
		var id store.TraceID
		if _, err := hex.Decode(id[:], []byte(run.TraceID)); err != nil {
			t.Fatal(err)
		}
		td, err := db.Trace(ctx, id)
		if err != nil {
			t.Fatalf("Trace(%s): %v", run.TraceID, err)
		}
		var names []string
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					names = append(names, sp.Name)
				}
			}
		}
		slices.Sort(names)
		want := []string{name}
		for _, s := range run.Steps {
			if !s.Skipped {
				want = append(want, s.Name)
			}
		}
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("trace %s spans %v, want %v", run.TraceID, names, want)
		}
		sums, err := db.Correlation(ctx, run.CorrelationID, 10)
		if err != nil || len(sums) != 1 || sums[0].TraceID != id || sums[0].SpanCount != len(want) {
			t.Errorf("Correlation(%s): %+v, %v", run.CorrelationID, sums, err)
		}
		byCorr, err := db.SyntheticRunsByCorrelation(ctx, run.CorrelationID, 10)
		if err != nil || len(byCorr) != 1 || byCorr[0].RunID != run.RunID {
			t.Errorf("SyntheticRunsByCorrelation(%s): %d runs, %v", run.CorrelationID, len(byCorr), err)
		}
	}
	if v, _ := h.metric(t, "flowscope_synthetic_write_failures_total", nil); v != 0 {
		t.Errorf("%v write failures", v)
	}
}
