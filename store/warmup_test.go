package store

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestWarmUpAfterCrash checks the restart after a crash: Open returns
// before the aggregator's replay, every acknowledged trace is found at
// once, writes are acknowledged during the replay, rollup queries say
// they are warming up (ErrWarmingUp) instead of answering without the
// replayed calls, and once the replay is done the flow graph counts every
// call exactly once, those written during the replay included.
func TestWarmUpAfterCrash(t *testing.T) {
	now := t0.Add(time.Minute)
	dir := t.TempDir()
	db := openAgg(t, dir, &now)
	ds := otlptest.Generate(otlptest.Options{Traces: 200, Services: 6, SpansPerTrace: 3, Start: t0, Step: 20 * time.Millisecond})
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[:100]}, 10)
	if err := db.flushRollups(false); err != nil {
		t.Fatal(err)
	}
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[100:]}, 10)
	crash(db)

	gate := make(chan struct{})
	replayHook = func() { <-gate }
	t.Cleanup(func() { replayHook = nil })
	opts := Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour, RollupFlushInterval: time.Hour,
		AggregationWait: 50 * time.Millisecond, Now: func() time.Time { return now }}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			close(gate)
		}
		db.Close()
	})
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	from, to := t0.Add(-time.Minute), t0.Add(time.Minute)
	if _, err := db.FlowGraph(context.Background(), from, to, q); !errors.Is(err, ErrWarmingUp) {
		t.Fatalf("flow graph during the replay: %v, want ErrWarmingUp", err)
	}
	if _, err := db.Latency(context.Background(), from, to, aggregate.LatencyQuery{Level: aggregate.LevelService, Service: "svc-00"}); !errors.Is(err, ErrWarmingUp) {
		t.Fatalf("latency during the replay: %v, want ErrWarmingUp", err)
	}
	for i := 0; i < len(ds.Spans); i += 37 {
		var id TraceID
		copy(id[:], ds.Spans[i].Span.TraceId)
		if _, err := db.Trace(context.Background(), id); err != nil {
			t.Fatalf("trace %x during the replay: %v", id, err)
		}
	}
	// Writes are acknowledged while the replay waits.
	ds2 := otlptest.Generate(otlptest.Options{Traces: 50, Services: 6, SpansPerTrace: 3, Start: t0.Add(5 * time.Second), Step: 20 * time.Millisecond, Seed: 11})
	writeDataset(t, db, ds2, 5)
	want := edgeOracle(ds)
	for k, v := range edgeOracle(ds2) {
		want[k] += v
	}
	close(gate)
	released = true
	g, err := db.FlowGraph(context.Background(), from, to, q)
	if err != nil {
		t.Fatalf("flow graph after the replay: %v", err)
	}
	sameEdges(t, "after the replay", graphEdges(g), want)
	if n := nodeSpans(g); n != int64(len(ds.Spans)+len(ds2.Spans)) {
		t.Fatalf("nodes count %d spans, want %d", n, len(ds.Spans)+len(ds2.Spans))
	}
}

// TestReadReplayChunks checks the replay's reader: every stored chunk of
// the range, once, in sequence order, decoded, across read batches.
func TestReadReplayChunks(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 700, Services: 4, SpansPerTrace: 2, Start: t0, Step: time.Millisecond})
	writeDataset(t, db, ds, 1)
	var stored []uint64
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChunks).ForEach(func(k, _ []byte) error {
			stored = append(stored, binary.BigEndian.Uint64(k))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(stored) <= 2*replayBatch {
		t.Fatalf("%d chunks stored, want more than %d to cross read batches", len(stored), 2*replayBatch)
	}
	n := len(stored)
	for _, tc := range []struct{ from, last uint64 }{
		{stored[0], stored[n-1]},
		{stored[1], stored[n-2]},
		{stored[3], stored[3+replayBatch]},
		{stored[n-1], stored[n-1]},
		{stored[n-1] + 1, stored[n-1] + 10},
		{0, stored[0] - 1},
	} {
		out := make(chan *decodedChunk, replayAhead)
		errc := make(chan error, 1)
		go func() { errc <- db.readReplayChunks("test", tc.from, tc.last, out) }()
		var got []uint64
		spans := 0
		for d := range out {
			got = append(got, d.seq)
			spans += len(d.traces.Spans)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		var want []uint64
		for _, s := range stored {
			if s >= tc.from && s <= tc.last {
				want = append(want, s)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("range %d..%d: read %d chunks %v…, want %d %v…", tc.from, tc.last, len(got), got[:min(len(got), 5)], len(want), want[:min(len(want), 5)])
		}
		if len(want) > 0 && spans == 0 {
			t.Fatalf("range %d..%d: chunks decoded without spans", tc.from, tc.last)
		}
	}
}
