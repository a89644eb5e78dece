package store

import (
	"context"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// edgeOracle computes service-level edges of an otlptest data set: each
// CLIENT span's SERVER child in the next span is one call.
func edgeOracle(ds *otlptest.Dataset) map[string]int64 {
	want := map[string]int64{}
	for i := 0; i+1 < len(ds.Spans); i++ {
		c, s := ds.Spans[i], ds.Spans[i+1]
		if c.Span.Kind == 3 && s.Span.Kind == 2 && string(s.Span.ParentSpanId) == string(c.Span.SpanId) {
			want[c.Service+"->"+s.Service]++
		}
	}
	return want
}

func graphEdges(g *aggregate.Graph) map[string]int64 {
	got := map[string]int64{}
	for _, e := range g.Edges {
		got[e.Source+"->"+e.Target] = e.Calls.Count
	}
	return got
}

func nodeSpans(g *aggregate.Graph) int64 {
	var n int64
	for _, nd := range g.Nodes {
		n += nd.Spans
	}
	return n
}

func sameEdges(t *testing.T, phase string, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d edges, want %d\n got %v\nwant %v", phase, len(got), len(want), got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: edge %s has %d calls, want %d", phase, k, got[k], v)
		}
	}
}

func openAgg(t testing.TB, dir string, now *time.Time) *DB {
	t.Helper()
	opts := Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour, RollupFlushInterval: time.Hour}
	if now != nil {
		opts.Now = func() time.Time { return *now }
	}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// crash releases the file as SIGKILL would: no final flush or checkpoint.
func crash(db *DB) {
	db.writeMu.Lock()
	db.closed.Store(true)
	db.writeMu.Unlock()
	close(db.closing)
	db.wg.Wait()
	db.bolt.Close()
	db.m.unregister()
}

func TestFlowGraphFreshFlushedReopenedCrashed(t *testing.T) {
	now := t0.Add(time.Minute)
	dir := t.TempDir()
	db := openAgg(t, dir, &now)
	ds := otlptest.Generate(otlptest.Options{Traces: 300, Services: 7, SpansPerTrace: 3, Start: t0, Step: 20 * time.Millisecond})
	want := edgeOracle(ds)
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	check := func(db *DB, phase string) {
		t.Helper()
		g, err := db.FlowGraph(context.Background(), t0.Add(-time.Minute), t0.Add(time.Minute), q)
		if err != nil {
			t.Fatal(err)
		}
		sameEdges(t, phase, graphEdges(g), want)
		if n := nodeSpans(g); n != int64(len(ds.Spans)) {
			t.Fatalf("%s: nodes count %d spans, want %d", phase, n, len(ds.Spans))
		}
		if len(g.Nodes) != 7 {
			t.Fatalf("%s: %d nodes", phase, len(g.Nodes))
		}
	}
	// Visible as soon as the write returns, before any flush.
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[:150]}, 10)
	if err := db.flushRollups(false); err != nil {
		t.Fatal(err)
	}
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[150:]}, 10)
	check(db, "fresh (half flushed, half in memory)")
	if err := db.flushRollups(false); err != nil {
		t.Fatal(err)
	}
	check(db, "flushed")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAgg(t, dir, &now)
	check(db, "reopened")

	// More traffic, a flush in the middle, then a crash: the replay from
	// the aggregation checkpoint must count every span exactly once.
	ds2 := otlptest.Generate(otlptest.Options{Traces: 200, Services: 7, SpansPerTrace: 3, Start: t0.Add(10 * time.Second), Step: 20 * time.Millisecond, Seed: 5})
	writeDataset(t, db, &otlptest.Dataset{Requests: ds2.Requests[:80]}, 10)
	if err := db.flushRollups(false); err != nil {
		t.Fatal(err)
	}
	writeDataset(t, db, &otlptest.Dataset{Requests: ds2.Requests[80:]}, 10)
	crash(db)
	for k, v := range edgeOracle(ds2) {
		want[k] += v
	}
	ds.Spans = append(ds.Spans, ds2.Spans...)
	db = openAgg(t, dir, &now)
	check(db, "after crash")
}

func TestRollupTiers(t *testing.T) {
	now := t0
	dir := t.TempDir()
	db := openAgg(t, dir, &now)
	// Three hours of traffic, one trace every 30 s, flushed as it goes.
	ds := otlptest.Generate(otlptest.Options{Traces: 360, Services: 5, SpansPerTrace: 3, Start: t0, Step: 30 * time.Second})
	want := edgeOracle(ds)
	for i := range ds.Requests {
		now = t0.Add(time.Duration(i)*30*time.Second + time.Second)
		writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[i : i+1]}, 1)
		if i%20 == 0 {
			if err := db.flushRollups(true); err != nil {
				t.Fatal(err)
			}
		}
	}
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	from, to := t0.Add(-time.Hour), t0.Add(5*time.Hour)
	check := func(phase string) {
		t.Helper()
		g, err := db.FlowGraph(context.Background(), from, to, q)
		if err != nil {
			t.Fatal(err)
		}
		sameEdges(t, phase, graphEdges(g), want)
		if n := nodeSpans(g); n != int64(len(ds.Spans)) {
			t.Fatalf("%s: %d spans, want %d", phase, n, len(ds.Spans))
		}
		lat, err := db.Latency(context.Background(), from, to, aggregate.LatencyQuery{Service: "svc-01", Kind: aggregate.KindAll, Step: 3600})
		if err != nil {
			t.Fatal(err)
		}
		var wantN int64
		for _, s := range ds.Spans {
			if s.Service == "svc-01" {
				wantN++
			}
		}
		var stepSum int64
		for _, st := range lat.Series {
			stepSum += st.Rollup.Count
		}
		if lat.Total.Count != wantN || stepSum != wantN || len(lat.Series) != 3 {
			t.Fatalf("%s: latency count %d, steps %d (%d), want %d", phase, lat.Total.Count, stepSum, len(lat.Series), wantN)
		}
	}
	check("before compaction")
	now = t0.Add(3*time.Hour + 2*time.Minute)
	if err := db.flushRollups(true); err != nil {
		t.Fatal(err)
	}
	if err := db.compactRollups(); err != nil {
		t.Fatal(err)
	}
	check("compacted")
	counts := rollupCounts(t, db)
	if counts[1] == 0 || counts[2] == 0 {
		t.Fatalf("no compacted records: %v", counts)
	}
	// Late data for an hour that is already compacted is a delta, merged
	// on read and compacted again later.
	late := otlptest.Generate(otlptest.Options{Traces: 10, Services: 5, SpansPerTrace: 3, Start: t0.Add(5 * time.Minute), Step: time.Second, Seed: 8})
	writeDataset(t, db, late, 2)
	for k, v := range edgeOracle(late) {
		want[k] += v
	}
	ds.Spans = append(ds.Spans, late.Spans...)
	check("late data in memory")
	if err := db.flushRollups(true); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if err := db.compactRollups(); err != nil {
		t.Fatal(err)
	}
	check("late data compacted")
	// Tier-0 retention (24h) removes compacted 10 s windows; coarser tiers
	// still answer.
	now = t0.Add(30 * time.Hour)
	if err := db.expireRollups(); err != nil {
		t.Fatal(err)
	}
	if c := rollupCounts(t, db); c[0] != 0 || c[2] == 0 {
		t.Fatalf("after tier-0 retention: %v", c)
	}
	g, err := db.FlowGraph(context.Background(), t0, t0.Add(3*time.Hour), q)
	if err != nil {
		t.Fatal(err)
	}
	sameEdges(t, "after tier-0 retention", graphEdges(g), want)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAgg(t, dir, &now)
	g, err = db.FlowGraph(context.Background(), t0, t0.Add(3*time.Hour), q)
	if err != nil {
		t.Fatal(err)
	}
	sameEdges(t, "reopened", graphEdges(g), want)
}

func rollupCounts(t *testing.T, db *DB) [numTiers]int {
	var n [numTiers]int
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRollups).ForEach(func(k, _ []byte) error {
			n[k[0]]++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRollupRetentionOfImportedData writes spans whose windows are far
// older than every rollup retention (an import of old simulator data) and
// checks that their rollups survive retention passes for the retention
// period after they were written, then go like any other.
func TestRollupRetentionOfImportedData(t *testing.T) {
	now := t0.Add(400 * 24 * time.Hour) // older than the 1h tier's 90 days
	db := openAgg(t, t.TempDir(), &now)
	ds := otlptest.Generate(otlptest.Options{Traces: 200, Services: 5, SpansPerTrace: 3, Start: t0, Step: time.Second})
	want := edgeOracle(ds)
	writeDataset(t, db, ds, 10)
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	check := func(phase string, wantEdges map[string]int64) {
		t.Helper()
		g, err := db.FlowGraph(context.Background(), t0.Add(-time.Hour), t0.Add(time.Hour), q)
		if err != nil {
			t.Fatal(err)
		}
		sameEdges(t, phase, graphEdges(g), wantEdges)
	}
	step := func(d time.Duration) {
		t.Helper()
		now = now.Add(d)
		if err := db.flushRollups(true); err != nil {
			t.Fatal(err)
		}
		if err := db.compactRollups(); err != nil {
			t.Fatal(err)
		}
		if err := db.expireRollups(); err != nil {
			t.Fatal(err)
		}
	}
	step(time.Minute)
	step(time.Minute)
	check("just imported", want)
	if c := rollupCounts(t, db); c[0] == 0 {
		t.Fatalf("10 s records deleted at once: %v", c)
	}
	step(23 * time.Hour)
	check("after 23h", want)
	if c := rollupCounts(t, db); c[0] == 0 {
		t.Fatalf("10 s records deleted within their retention: %v", c)
	}
	step(2 * time.Hour)
	if c := rollupCounts(t, db); c[0] != 0 || c[2] == 0 {
		t.Fatalf("after the 10 s tier's retention: %v", c)
	}
	check("after 25h", want)
	step(91 * 24 * time.Hour) // past the 1h tier's retention too
	check("after 91 days", map[string]int64{})
}

// TestLongGraphFlushMidQuery checks that a long-range flow graph (closed
// hours merged apart from the live part) counts late data of the closed
// hours exactly once when the rollup flush moves it from memory to disk
// while the query runs: seen neither in the closed part nor the live one,
// it vanished from imported (old) flow graphs for a moment.
func TestLongGraphFlushMidQuery(t *testing.T) {
	now := t0.Add(10 * time.Hour)
	db := openAgg(t, t.TempDir(), &now)
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	ds := otlptest.Generate(otlptest.Options{Traces: 100, Services: 5, SpansPerTrace: 3, Start: t0, Step: 20 * time.Millisecond})
	want := edgeOracle(&otlptest.Dataset{Spans: ds.Spans[:150]}) // the first 50 traces
	start := t0.Add(-time.Hour)
	graph := func(phase string) {
		t.Helper()
		g, err := db.FlowGraph(context.Background(), start, now, q)
		if err != nil {
			t.Fatal(err)
		}
		sameEdges(t, phase, graphEdges(g), want)
	}
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[:50]}, 10)
	graph("in memory")
	flushes := 0
	db.testHookLongGraph = func() {
		flushes++
		if err := db.flushRollups(false); err != nil {
			t.Error(err)
		}
	}
	graph("flushed during the query")
	graph("flushed before, closed part cached")
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[50:]}, 10)
	want = edgeOracle(ds)
	graph("more late data flushed during the query")
	graph("all flushed")
	if flushes != 4 {
		t.Fatalf("the hook ran %d times, want 4: not the long-range path", flushes)
	}
}
