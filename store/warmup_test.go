package store

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestWarmUpAfterCrash checks the restart after a crash: Open returns
// before the aggregator's replay, every acknowledged trace is found during
// it, writes are acknowledged during the replay, rollup queries say
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

	db, release := openHeld(t, dir, &replayHook, Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		RollupFlushInterval: time.Hour, AggregationWait: 50 * time.Millisecond, Now: func() time.Time { return now }})
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	from, to := t0.Add(-time.Minute), t0.Add(time.Minute)
	if _, err := db.FlowGraph(context.Background(), from, to, q); !errors.Is(err, ErrWarmingUp) {
		t.Fatalf("flow graph during the replay: %v, want ErrWarmingUp", err)
	}
	if _, err := db.Latency(context.Background(), from, to, aggregate.LatencyQuery{Level: aggregate.LevelService, Service: "svc-00"}); !errors.Is(err, ErrWarmingUp) {
		t.Fatalf("latency during the replay: %v, want ErrWarmingUp", err)
	}
	<-db.indexed // the re-index does not wait for the replay (TestReindexAfterCrash)
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
	release()
	<-db.warm // the replay is done (a query waits only AggregationWait for it)
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
		go func() { errc <- db.readChunks("test", tc.from, tc.last, out, nil) }()
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

// TestReindexAfterCrash checks the lazy re-index after a crash: Open
// returns before the chunks committed after the last checkpoint are
// indexed again; meanwhile trace reads, searches and the service list say
// they are warming up (ErrWarmingUp) instead of answering without those
// spans, writes are acknowledged, and a checkpoint waits; once the
// re-index is done every trace is found, the span counts are exact, and
// the checkpoint persists the re-indexed chunks before the later ones, so
// that a clean restart finds everything without re-indexing.
func TestReindexAfterCrash(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 120, Services: 4, SpansPerTrace: 3, Start: t0, Step: 20 * time.Millisecond})
	writeDataset(t, db, ds, 10)
	crash(db)

	opts := Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour, AggregationWait: 50 * time.Millisecond}
	db, release := openHeld(t, dir, &reindexHook, opts)
	ctx := context.Background()
	firstID := traceID(ds, 0)
	if _, err := db.Trace(ctx, firstID); !errors.Is(err, ErrWarmingUp) {
		t.Fatalf("trace during the re-index: %v, want ErrWarmingUp", err)
	}
	if _, err := db.FindTraces(ctx, TraceQuery{Limit: 1000}); !errors.Is(err, ErrWarmingUp) {
		t.Fatalf("search during the re-index: %v, want ErrWarmingUp", err)
	}
	if _, err := db.Services(ctx, time.Time{}, time.Time{}); !errors.Is(err, ErrWarmingUp) {
		t.Fatalf("services during the re-index: %v, want ErrWarmingUp", err)
	}
	// Writes are acknowledged during the re-index; a checkpoint waits.
	ds2 := otlptest.Generate(otlptest.Options{Traces: 40, Services: 4, SpansPerTrace: 3, Start: t0.Add(5 * time.Second), Step: 20 * time.Millisecond, Seed: 7})
	writeDataset(t, db, ds2, 5)
	ckpt := make(chan error, 1)
	go func() { ckpt <- db.checkpoint() }()
	select {
	case err := <-ckpt:
		t.Fatalf("a checkpoint ran before the re-index (%v): it would persist later chunks first", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()

	checkAll := func(what string, db *DB) {
		t.Helper()
		for _, d := range []*otlptest.Dataset{ds, ds2} {
			for i := 0; i < len(d.Spans); i += 3 {
				id := traceID(d, i)
				td, err := db.Trace(ctx, id)
				if err != nil {
					t.Fatalf("%s: trace %x: %v", what, id, err)
				}
				if n := otlptest.CountSpans(td); n != 3 {
					t.Fatalf("%s: trace %x has %d spans, want 3", what, id, n)
				}
			}
		}
		got, err := db.FindTraces(ctx, TraceQuery{Limit: 1000})
		if err != nil || len(got) != 160 {
			t.Fatalf("%s: search found %d traces (%v), want 160", what, len(got), err)
		}
		svcs, err := db.Services(ctx, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var spans int64
		for _, s := range svcs {
			spans += int64(s.SpanCount)
		}
		if want := int64(len(ds.Spans) + len(ds2.Spans)); spans != want {
			t.Fatalf("%s: services count %d spans, want %d", what, spans, want)
		}
	}
	checkAll("after the re-index", db)
	if err := <-ckpt; err != nil {
		t.Fatalf("checkpoint after the re-index: %v", err)
	}
	if got, want := db.persistedTo.Load(), db.nextSeq-1; got != want {
		t.Fatalf("checkpoint persisted chunks to %d, want %d", got, want)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if p := db.reindex; p.from <= p.last {
		t.Fatalf("after the checkpoint a restart re-indexes chunks %d to %d", p.from, p.last)
	}
	checkAll("after a clean restart", db)
}

// TestReindexInterrupted checks a stop during the re-index, clean or
// not: nothing is checkpointed, and the next start indexes every chunk.
func TestReindexInterrupted(t *testing.T) {
	for _, clean := range []bool{true, false} {
		t.Run(map[bool]string{true: "close", false: "crash"}[clean], func(t *testing.T) {
			dir := t.TempDir()
			db := openTest(t, dir, nil)
			ds := otlptest.Generate(otlptest.Options{Traces: 60, Services: 3, SpansPerTrace: 2, Start: t0, Step: 20 * time.Millisecond})
			writeDataset(t, db, ds, 6)
			crash(db)

			gate := make(chan struct{})
			reindexHook = func() { <-gate }
			t.Cleanup(func() { reindexHook = nil })
			db, err := Open(dir, Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
			if err != nil {
				close(gate)
				t.Fatal(err)
			}
			before := db.reindex
			stopped := make(chan error, 1)
			go func() {
				if clean {
					stopped <- db.Close()
				} else {
					crash(db)
					stopped <- nil
				}
			}()
			// Let the stop begin before the re-index does.
			for !db.closed.Load() {
				time.Sleep(time.Millisecond)
			}
			close(gate)
			if err := <-stopped; err != nil {
				t.Fatalf("stop during the re-index: %v", err)
			}
			reindexHook = nil // the re-index has ended: the stop waits for it
			if !errors.Is(db.reindexErr, ErrClosed) {
				t.Fatal("the re-index ran to its end after the stop")
			}
			db = openTest(t, dir, nil)
			if db.reindex.from != before.from {
				t.Fatalf("next start re-indexes from chunk %d, want %d: a checkpoint moved past chunks never indexed", db.reindex.from, before.from)
			}
			for i := 0; i < len(ds.Spans); i += 2 {
				if _, err := db.Trace(context.Background(), traceID(ds, i)); err != nil {
					t.Fatalf("trace %d after the restart: %v", i, err)
				}
			}
		})
	}
}

// traceID returns the trace ID of span i of ds.
func traceID(ds *otlptest.Dataset, i int) TraceID {
	var id TraceID
	copy(id[:], ds.Spans[i].Span.TraceId)
	return id
}

// openHeld opens the store in dir with opts while *hook (replayHook or
// reindexHook) holds the work it runs before; release lets it go (the
// test's cleanup does too, before closing the store).
func openHeld(t *testing.T, dir string, hook *func(), opts Options) (*DB, func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	*hook = func() { <-gate }
	t.Cleanup(func() { *hook = nil }) // after the store closed: its goroutines are done
	db, err := Open(dir, opts)
	if err != nil {
		release()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		release()
		db.Close()
	})
	return db, release
}
