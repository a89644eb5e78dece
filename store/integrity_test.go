package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/membudget"
)

// traceIDOf returns the trace ID of request i of a dataset generated with
// spansPerTrace spans per trace.
func traceIDOf(ds *otlptest.Dataset, i, spansPerTrace int) TraceID {
	var id TraceID
	copy(id[:], ds.Spans[i*spansPerTrace].Span.TraceId)
	return id
}

// allFound fails t unless every trace of ds is readable and searchable.
func allFound(t *testing.T, phase string, db *DB, ds *otlptest.Dataset, spansPerTrace int) {
	t.Helper()
	for i := range ds.Requests {
		if _, err := db.Trace(context.Background(), traceIDOf(ds, i, spansPerTrace)); err != nil {
			t.Fatalf("%s: trace %d: %v", phase, i, err)
		}
	}
	got, err := db.FindTraces(context.Background(), TraceQuery{Limit: 1000})
	if err != nil || len(got) != len(ds.Requests) {
		t.Fatalf("%s: search found %d traces (err %v), want %d", phase, len(got), err, len(ds.Requests))
	}
}

// A checkpoint that fails must not let a later one move the checkpoint
// past its chunks: after a crash they are re-indexed, and a later
// checkpoint persists the segments in order. (Before, the failed segment
// was skipped and its acknowledged spans answered 404 after a restart.)
func TestFailedCheckpointLosesNothing(t *testing.T) {
	for _, restart := range []string{"crash", "close"} {
		t.Run(restart, func(t *testing.T) {
			dir := t.TempDir()
			db, err := Open(dir, Options{CheckpointInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			ds := otlptest.Generate(otlptest.Options{Traces: 60, Services: 3, SpansPerTrace: 2, Start: t0})
			part := func(a, b int) *otlptest.Dataset { return &otlptest.Dataset{Requests: ds.Requests[a:b]} }

			writeDataset(t, db, part(0, 20), 5)
			db.failCkpt = func(*memSeg) error { return errors.New("injected: put term: key too large") }
			if err := db.checkpoint(); err == nil {
				t.Fatal("checkpoint with an injected failure succeeded")
			}
			db.failCkpt = nil
			writeDataset(t, db, part(20, 40), 5)
			// The next checkpoint persists the failed segment first, then
			// the new one.
			if err := db.checkpoint(); err != nil {
				t.Fatal(err)
			}
			if n := db.tail.frozenCount(); n != 0 {
				t.Fatalf("%d segments still frozen after a successful checkpoint", n)
			}
			// A failure of the oldest segment stops the later ones.
			writeDataset(t, db, part(40, 50), 5)
			failed := 0
			db.failCkpt = func(*memSeg) error { failed++; return errors.New("injected: no space left on device") }
			if err := db.checkpoint(); err == nil || failed != 1 {
				t.Fatalf("checkpoint err %v after %d attempts, want one failed attempt", err, failed)
			}
			writeDataset(t, db, part(50, 60), 5)
			if err := db.checkpoint(); err == nil || failed != 2 {
				t.Fatalf("second checkpoint: err %v, attempts %d (a later segment must wait for the failed one)", err, failed)
			}
			allFound(t, "before restart", db, ds, 2)
			if restart == "crash" {
				crash(db)
			} else {
				db.failCkpt = nil
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
			db2 := openTest(t, dir, nil)
			allFound(t, "after "+restart, db2, ds, 2)
		})
	}
}

// One request that cannot be committed (here an injected bbolt "key too
// large") is refused alone; the innocent requests of its group commit
// are stored.
func TestPoisonRequestFailsAlone(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 200, Services: 4, SpansPerTrace: 2, Start: t0})
	poison := traceIDOf(ds, 7, 2)
	db.failCommit = func(batch []*pending) error {
		for _, p := range batch {
			for _, id := range p.idx.traces {
				if id == poison {
					return fmt.Errorf("put operation: %w", bolt.ErrKeyTooLarge)
				}
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ds.Requests))
	start := make(chan struct{})
	for i := range ds.Requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = db.WriteTraces(context.Background(), encode(t, ds.Requests[i]))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		switch {
		case i == 7 && !errors.Is(err, ErrTooLarge):
			t.Fatalf("poison request: err %v, want ErrTooLarge", err)
		case i != 7 && err != nil:
			t.Fatalf("innocent request %d failed: %v", i, err)
		}
	}
	db.failCommit = nil
	for i := range ds.Requests {
		_, err := db.Trace(context.Background(), traceIDOf(ds, i, 2))
		if i == 7 && !errors.Is(err, ErrNotFound) {
			t.Fatalf("poison trace: %v, want not found", err)
		}
		if i != 7 && err != nil {
			t.Fatalf("innocent trace %d: %v", i, err)
		}
	}
}

// A full disk answers ErrDiskFull (retryable), makes the store not ready
// and never acknowledges what was not committed; once space returns,
// writes resume, and after a crash every acknowledged span is found.
// Runs on a size-limited tmpfs when the test may mount one (root), and
// with an injected ENOSPC otherwise.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	var filler string
	if mounted := mountTmpfs(t, dir, "48m"); mounted {
		filler = filepath.Join(dir, "filler")
	} else {
		t.Log("cannot mount a tmpfs here; injecting ENOSPC instead")
	}
	db, err := Open(filepath.Join(dir, "data"), Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ds := otlptest.Generate(otlptest.Options{Traces: 3000, Services: 5, SpansPerTrace: 4, Start: t0})
	var acked []int
	write := func(i int) error {
		_, err := db.WriteTraces(context.Background(), encode(t, ds.Requests[i]))
		if err == nil {
			acked = append(acked, i)
		}
		return err
	}
	next := 0
	for ; next < 500; next++ {
		if err := write(next); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if filler != "" {
		fillDisk(t, filler)
	} else {
		db.failCommit = func([]*pending) error { return &os.PathError{Op: "write", Path: db.path, Err: syscall.ENOSPC} }
	}
	var full error
	for ; next < len(ds.Requests) && full == nil; next++ {
		full = write(next)
	}
	if !errors.Is(full, ErrDiskFull) {
		t.Fatalf("writes on a full disk: %v, want ErrDiskFull", full)
	}
	if err := db.Ready(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Ready on a full disk: %v", err)
	}
	// A checkpoint on the full disk fails without losing its segment.
	_ = db.checkpoint()
	// Space returns.
	if filler != "" {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	} else {
		db.failCommit = nil
	}
	db.probeSpace()
	if err := db.Ready(); err != nil {
		t.Fatalf("Ready after space returned: %v", err)
	}
	for ; next < len(ds.Requests) && next < len(acked)+700; next++ {
		if err := write(next); err != nil {
			t.Fatalf("write after space returned: %v", err)
		}
	}
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	crash(db)
	db2, err := Open(filepath.Join(dir, "data"), Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	for _, i := range acked {
		if _, err := db2.Trace(context.Background(), traceIDOf(ds, i, 4)); err != nil {
			t.Fatalf("acknowledged trace %d after restart: %v", i, err)
		}
	}
	got, err := db2.FindTraces(context.Background(), TraceQuery{Limit: 1000, Start: t0.Add(-time.Hour), End: t0.Add(24 * time.Hour)})
	if err != nil || len(got) == 0 {
		t.Fatalf("search after restart: %d traces, %v", len(got), err)
	}
	t.Logf("%d requests acknowledged, all found after the restart", len(acked))
}

// mountTmpfs mounts a tmpfs of size on dir, unmounting it at cleanup, and
// reports whether it could.
func mountTmpfs(t *testing.T, dir, size string) bool {
	if os.Geteuid() != 0 {
		return false
	}
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).Run(); err != nil {
		return false
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return true
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// Spans ending far in the future are refused one by one, and segments
// holding such spans from older versions no longer keep retention from
// deleting anything: under a 1-minute retention the store stops growing.
func TestFarFutureSpanDoesNotStopRetention(t *testing.T) {
	// The clock is read by the store's background loops too (the rollup
	// flush): atomic.
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	db, err := Open(t.TempDir(), Options{Retention: time.Minute, CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	far := otlptest.Generate(otlptest.Options{Traces: 1, Services: 1, SpansPerTrace: 1, Start: t0, Seed: 5})
	far.Requests[0].ResourceSpans[0].ScopeSpans[0].Spans[0].EndTimeUnixNano = 1<<63 - 1
	res, err := db.WriteTraces(context.Background(), encode(t, far.Requests[0]))
	if err != nil || res.Rejected != 1 || res.Message == "" {
		t.Fatalf("far-future span: %+v %v, want it refused with a message", res, err)
	}
	t.Logf("refused: %s", res.Message)

	// As an older version would have stored it:
	db.futureSkew = 1<<63 - 1
	if res, err := db.WriteTraces(context.Background(), encode(t, far.Requests[0])); err != nil || res.Rejected != 0 {
		t.Fatalf("legacy write: %+v %v", res, err)
	}
	db.futureSkew = MaxFutureSkew
	segments := func() int { db.catMu.RLock(); defer db.catMu.RUnlock(); return len(db.segs) }
	maxSegs := 0
	for minute := range 30 {
		now := time.Unix(0, clock.Load())
		ds := otlptest.Generate(otlptest.Options{Traces: 20, Services: 3, SpansPerTrace: 2, Start: now, Seed: uint64(minute + 10)})
		writeDataset(t, db, ds, 5)
		if err := db.checkpoint(); err != nil {
			t.Fatal(err)
		}
		clock.Add(int64(time.Minute))
		if err := db.ApplyRetention(); err != nil {
			t.Fatal(err)
		}
		if minute > 5 {
			maxSegs = max(maxSegs, segments())
		}
	}
	// With a 1-minute retention and a segment per minute, at most a few
	// segments live at once (plus the legacy outlier for MaxFutureSkew).
	if maxSegs > 4 {
		t.Fatalf("%d segments live under a 1-minute retention: retention is stuck", maxSegs)
	}
	var n int
	db.bolt.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketChunks).Stats().KeyN; return nil })
	if n > 20 {
		t.Fatalf("%d span chunks kept under a 1-minute retention", n)
	}
}

// The memory budget bounds the aggregation backlog: a write that does not
// fit is refused with ErrOverloaded, and every byte comes back once the
// writes are committed and aggregated.
func TestMemoryBudget(t *testing.T) {
	b := membudget.New(1 << 20)
	db, err := Open(t.TempDir(), Options{CheckpointInterval: time.Hour, Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds := otlptest.Generate(otlptest.Options{Traces: 40, Services: 3, SpansPerTrace: 3, Start: t0})
	big := encode(t, ds.Requests...)
	if !b.TryAcquire(1<<20 - int64(len(big))) {
		t.Fatal("setup: budget too small")
	}
	if _, err := db.WriteTraces(context.Background(), big); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("write past the budget: %v, want ErrOverloaded", err)
	}
	b.Release(1<<20 - int64(len(big)))
	for i := range 50 {
		if _, err := db.WriteTraces(context.Background(), big); err != nil {
			t.Fatalf("write %d within the budget: %v", i, err)
		}
	}
	if err := db.awaitAggregation(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u := b.Used(); u != 0 {
		t.Fatalf("%d bytes of the budget still held after everything was aggregated", u)
	}
	if p := b.Peak(); p > 1<<20 {
		t.Fatalf("peak %d over the budget", p)
	}
}

// Metric points more than MaxFutureSkew ahead are refused one by one, like
// spans: one point in 2262 would keep its chunk from expiring.
func TestFarFutureMetricPointRefused(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	now := uint64(time.Now().UnixNano())
	gauge := func(ts ...uint64) *metricspb.Metric {
		m := &metricspb.Metric{Name: "g", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{}}}
		for _, t := range ts {
			m.GetGauge().DataPoints = append(m.GetGauge().DataPoints, &metricspb.NumberDataPoint{
				TimeUnixNano: t, Value: &metricspb.NumberDataPoint_AsInt{AsInt: 1}})
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		ts       []uint64
		rejected int64
	}{
		{"now", []uint64{now}, 0},
		{"59 minutes ahead", []uint64{now + uint64(59*time.Minute)}, 0},
		{"2^63-1", []uint64{1<<63 - 1, now}, 1},
		{"2^64-1", []uint64{1<<64 - 1}, 1},
		{"a day ahead", []uint64{now, now + uint64(24*time.Hour), now}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := proto.Marshal(&colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
				ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{gauge(tc.ts...)}}}}}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := db.WriteMetrics(context.Background(), req)
			if err != nil || res.Rejected != tc.rejected || res.Accepted != int64(len(tc.ts))-tc.rejected {
				t.Fatalf("%+v %v, want %d rejected", res, err, tc.rejected)
			}
			if tc.rejected > 0 && !strings.Contains(res.Message, "ahead of the collector's clock") {
				t.Fatalf("message %q does not name the limit", res.Message)
			}
		})
	}
}
