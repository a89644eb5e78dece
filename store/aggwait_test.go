package store

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/aggregate"
)

// TestAggregationWaitTimeout checks that a rollup query waiting for a
// batch the aggregator never applies gives up after
// Options.AggregationWait, answers, counts the timeout in
// flowscope_store_aggregation_wait_timeouts_total and logs it; and that a
// query with nothing to wait for neither waits nor counts.
func TestAggregationWaitTimeout(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	db, err := Open(t.TempDir(), Options{
		CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		AggregationWait: 50 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(&logs, nil)),
		Registerer:      reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	end := time.Now()

	if _, err := db.FlowGraph(ctx, end.Add(-time.Minute), end, aggregate.GraphQuery{}); err != nil {
		t.Fatal(err)
	}
	if n := timeouts(t, reg); n != 0 {
		t.Fatalf("timeouts = %v with nothing to wait for", n)
	}

	// A committed batch the aggregator has not applied (as when it is
	// stuck or far behind).
	st := db.stampCommit()
	for i, query := range []func() error{
		func() error {
			_, err := db.FlowGraph(ctx, end.Add(-time.Minute), end, aggregate.GraphQuery{})
			return err
		},
		func() error {
			_, err := db.Latency(ctx, end.Add(-time.Minute), end, aggregate.LatencyQuery{})
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- query() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("query %d still waiting a minute after its 50ms bound", i)
		}
		if n := timeouts(t, reg); n != float64(i+1) {
			t.Errorf("after query %d: timeouts = %v, want %d", i, n, i+1)
		}
	}
	if !strings.Contains(logs.String(), "query served before aggregation caught up") || !strings.Contains(logs.String(), "batches_not_aggregated=1") {
		t.Errorf("no log line for the timeout:\n%s", logs.String())
	}
	db.unstamp(st)
	if _, err := db.FlowGraph(ctx, end.Add(-time.Minute), end, aggregate.GraphQuery{}); err != nil {
		t.Fatal(err)
	}
	if n := timeouts(t, reg); n != 2 {
		t.Errorf("timeouts = %v after the batch was applied, want still 2", n)
	}
}

// timeouts reads flowscope_store_aggregation_wait_timeouts_total from reg.
func timeouts(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "flowscope_store_aggregation_wait_timeouts_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("flowscope_store_aggregation_wait_timeouts_total not registered")
	return 0
}
