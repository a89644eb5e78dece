package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/otlpwire"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func openTest(t testing.TB, dir string, now *time.Time) *DB {
	t.Helper()
	opts := Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour}
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

func encode(t testing.TB, tds ...*tracepb.TracesData) []byte {
	t.Helper()
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, td := range tds {
		req.ResourceSpans = append(req.ResourceSpans, td.ResourceSpans...)
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeDataset(t testing.TB, db *DB, ds *otlptest.Dataset, perReq int) {
	t.Helper()
	for i := 0; i < len(ds.Requests); i += perReq {
		res, err := db.WriteTraces(context.Background(), encode(t, ds.Requests[i:min(i+perReq, len(ds.Requests))]...))
		if err != nil || res.Rejected != 0 {
			t.Fatalf("write: %v %+v", err, res)
		}
	}
}

func TestTraceRoundTrip(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 20, Services: 4, SpansPerTrace: 3, Start: t0})
	writeDataset(t, db, ds, 7)
	check := func(phase string) {
		for i, td := range ds.Requests {
			var id TraceID
			copy(id[:], ds.Spans[i*3].Span.TraceId)
			got, err := db.Trace(context.Background(), id)
			if err != nil {
				t.Fatalf("%s: trace %d: %v", phase, i, err)
			}
			var want, have []*tracepb.Span
			for _, rs := range td.ResourceSpans {
				want = append(want, rs.ScopeSpans[0].Spans...)
			}
			for _, rs := range got.ResourceSpans {
				if rs.Resource.Attributes[0].Key != "service.name" {
					t.Fatalf("%s: resource lost: %v", phase, rs.Resource)
				}
				for _, ss := range rs.ScopeSpans {
					if ss.Scope.GetName() != "otlptest" {
						t.Fatalf("%s: scope lost: %v", phase, ss.Scope)
					}
					have = append(have, ss.Spans...)
				}
			}
			if len(have) != len(want) {
				t.Fatalf("%s: trace %d: %d spans, want %d", phase, i, len(have), len(want))
			}
			for _, w := range want {
				if !slices.ContainsFunc(have, func(h *tracepb.Span) bool { return proto.Equal(h, w) }) {
					t.Fatalf("%s: span %x missing or changed", phase, w.SpanId)
				}
			}
		}
		if _, err := db.Trace(context.Background(), TraceID{1, 2, 3}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: unknown trace: %v", phase, err)
		}
	}
	check("tail")
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	check("checkpointed")
}

func TestPartialAndMalformed(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 4, Services: 2, SpansPerTrace: 1, Start: t0})
	bad := []func(s *tracepb.Span){
		func(s *tracepb.Span) { s.TraceId = s.TraceId[:15] },
		func(s *tracepb.Span) { s.SpanId = make([]byte, 8) },
		func(s *tracepb.Span) { s.EndTimeUnixNano = s.StartTimeUnixNano - 1 },
	}
	for i, f := range bad {
		f(ds.Requests[i].ResourceSpans[0].ScopeSpans[0].Spans[0])
	}
	res, err := db.WriteTraces(context.Background(), encode(t, ds.Requests...))
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 1 || res.Rejected != 3 || res.Message == "" {
		t.Fatalf("result %+v", res)
	}
	var good TraceID
	copy(good[:], ds.Spans[3].Span.TraceId)
	if _, err := db.Trace(context.Background(), good); err != nil {
		t.Fatalf("valid span not stored: %v", err)
	}
	var badID TraceID
	copy(badID[:], ds.Spans[1].Span.TraceId)
	if _, err := db.Trace(context.Background(), badID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("invalid span stored: %v", err)
	}
	for _, body := range [][]byte{{0xff, 0xff, 0xff}, {0x0a, 0x05, 0x01}} {
		if _, err := db.WriteTraces(context.Background(), body); !errors.Is(err, otlpwire.ErrMalformed) {
			t.Fatalf("malformed body: %v", err)
		}
	}
	if got, _ := db.Services(context.Background(), time.Time{}, time.Time{}); len(got) != 1 {
		t.Fatalf("services after malformed writes: %v", got)
	}
}

// oracle returns the trace IDs (hex) whose spans satisfy q, computed by brute force.
func oracle(ds *otlptest.Dataset, q TraceQuery) []string {
	set := map[string]bool{}
	for _, s := range ds.Spans {
		sp := s.Span
		if q.Service != "" && s.Service != q.Service || q.Operation != "" && sp.Name != q.Operation {
			continue
		}
		if !q.Start.IsZero() && sp.StartTimeUnixNano < uint64(q.Start.UnixNano()) ||
			!q.End.IsZero() && sp.StartTimeUnixNano > uint64(q.End.UnixNano()) {
			continue
		}
		d := time.Duration(sp.EndTimeUnixNano - sp.StartTimeUnixNano)
		if q.MinDuration > 0 && d < q.MinDuration || q.MaxDuration > 0 && d > q.MaxDuration {
			continue
		}
		ok := true
		for k, v := range q.Attributes {
			if s.Attrs[k] != v {
				ok = false
			}
		}
		if ok {
			set[fmt.Sprintf("%x", sp.TraceId)] = true
		}
	}
	var out []string
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func ids(sums []TraceSummary) []string {
	var out []string
	for _, s := range sums {
		out = append(out, s.TraceID.String())
	}
	sort.Strings(out)
	return out
}

func TestSearch(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 400, Services: 6, SpansPerTrace: 3, Start: t0, Step: 100 * time.Millisecond, Seed: 1})
	// Write the first half, checkpoint it, write the rest: searches cover
	// persisted segments and the in-memory tail at once.
	half := len(ds.Requests) / 2
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[:half]}, 9)
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[half:]}, 11)

	cases := []struct {
		name string
		q    TraceQuery
	}{
		{"service", TraceQuery{Service: "svc-02"}},
		{"service and operation", TraceQuery{Service: "svc-03", Operation: "op-1"}},
		{"unknown service", TraceQuery{Service: "nope"}},
		{"span attribute", TraceQuery{Attributes: map[string]string{"customer": "c4"}}},
		{"resource attribute", TraceQuery{Attributes: map[string]string{"tier": "gold"}}},
		{"int attribute rendered", TraceQuery{Service: "svc-01", Attributes: map[string]string{"http.status_code": "200"}}},
		{"attribute combination on one span", TraceQuery{Service: "svc-04", Attributes: map[string]string{"customer": "c1", "tier": "silver"}}},
		{"min duration", TraceQuery{MinDuration: 450 * time.Millisecond}},
		{"duration range with service", TraceQuery{Service: "svc-05", MinDuration: 100 * time.Millisecond, MaxDuration: 200 * time.Millisecond}},
		{"time range", TraceQuery{Start: t0.Add(10 * time.Second), End: t0.Add(12 * time.Second)}},
		{"time range across checkpoint", TraceQuery{Service: "svc-00", Start: t0.Add(19 * time.Second), End: t0.Add(21 * time.Second)}},
		{"everything", TraceQuery{Service: "svc-01", Operation: "op-2", Attributes: map[string]string{"tier": "bronze"}, MinDuration: time.Millisecond, Start: t0, End: t0.Add(time.Hour)}},
	}
	run := func(phase string) {
		for _, tc := range cases {
			t.Run(phase+"/"+tc.name, func(t *testing.T) {
				q := tc.q
				q.Limit = MaxSearchLimit
				got, err := db.FindTraces(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				want := oracle(ds, tc.q)
				if !slices.Equal(ids(got), want) {
					t.Fatalf("got %d traces, want %d\n got %v\nwant %v", len(got), len(want), ids(got), want)
				}
				for i := 1; i < len(got); i++ {
					if got[i].Start.After(got[i-1].Start) {
						t.Fatalf("not newest first at %d", i)
					}
				}
			})
		}
		// Limit returns the newest matches.
		got, err := db.FindTraces(context.Background(), TraceQuery{Service: "svc-02", Limit: 5})
		if err != nil || len(got) != 5 {
			t.Fatalf("%s: limit: %d %v", phase, len(got), err)
		}
		// Correlation: one ID on traces 0..4 step 5 within each 10.
		got, err = db.Correlation(context.Background(), "corr-3", 0)
		if err != nil {
			t.Fatal(err)
		}
		want := oracle(ds, TraceQuery{Attributes: map[string]string{"correlation.id": "corr-3"}})
		if !slices.Equal(ids(got), want) || len(want) != 2 {
			t.Fatalf("%s: correlation got %v want %v", phase, ids(got), want)
		}
		if got[0].Start.After(got[1].Start) {
			t.Fatalf("%s: correlation not oldest first", phase)
		}
	}
	run("mixed")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, nil)
	run("reopened")
}

func TestSummaryAndServices(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 30, Services: 3, SpansPerTrace: 3, Start: t0, Step: time.Second})
	writeDataset(t, db, ds, 4)
	got, err := db.FindTraces(context.Background(), TraceQuery{Attributes: map[string]string{"customer": "c0"}, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		i := slices.IndexFunc(ds.Spans, func(sp otlptest.Span) bool { return string(sp.Span.TraceId) == string(s.TraceID[:]) })
		root := ds.Spans[i]
		if s.RootService != root.Service || s.RootOperation != root.Span.Name || s.SpanCount != 3 {
			t.Fatalf("summary %+v, root %s %s", s, root.Service, root.Span.Name)
		}
		if s.Start != time.Unix(0, int64(root.Span.StartTimeUnixNano)).UTC() {
			t.Fatalf("start %v", s.Start)
		}
	}
	check := func(phase string) {
		svcs, err := db.Services(context.Background(), t0, t0.Add(9*time.Second+500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][2]int64{}
		for _, s := range ds.Spans {
			if s.Span.StartTimeUnixNano < uint64(t0.Add(10*time.Second).UnixNano()) {
				w := want[s.Service]
				w[0]++
				if s.Span.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
					w[1]++
				}
				want[s.Service] = w
			}
		}
		if len(svcs) != len(want) {
			t.Fatalf("%s: services %v want %v", phase, svcs, want)
		}
		for _, s := range svcs {
			if w := want[s.Name]; w[0] != s.SpanCount || w[1] != s.ErrorCount {
				t.Fatalf("%s: %s: %d/%d want %v", phase, s.Name, s.SpanCount, s.ErrorCount, w)
			}
		}
	}
	check("tail")
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	check("persisted")
	ops, err := db.Operations(context.Background(), "svc-00")
	if err != nil || len(ops) == 0 {
		t.Fatalf("ops %v %v", ops, err)
	}
}

func TestRecoveryAfterCrash(t *testing.T) {
	// A DB that is never closed (as after SIGKILL) is reopened: chunks
	// committed after the last checkpoint are re-indexed.
	dir := t.TempDir()
	db, err := Open(dir, Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ds := otlptest.Generate(otlptest.Options{Traces: 50, Services: 3, SpansPerTrace: 2, Start: t0})
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[:25]}, 5)
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	writeDataset(t, db, &otlptest.Dataset{Requests: ds.Requests[25:]}, 5)
	// Simulate the crash: release the file without Close's checkpoint.
	db.writeMu.Lock()
	db.closed.Store(true)
	db.writeMu.Unlock()
	close(db.closing)
	db.wg.Wait()
	db.bolt.Close()
	db.m.unregister()

	db2 := openTest(t, dir, nil)
	for i := range ds.Requests {
		var id TraceID
		copy(id[:], ds.Spans[i*2].Span.TraceId)
		td, err := db2.Trace(context.Background(), id)
		if err != nil {
			t.Fatalf("trace %d after crash: %v", i, err)
		}
		if n := len(td.ResourceSpans); n == 0 {
			t.Fatalf("trace %d empty", i)
		}
	}
	got, err := db2.FindTraces(context.Background(), TraceQuery{Limit: 1000})
	if err != nil || len(got) != 50 {
		t.Fatalf("search after crash: %d %v", len(got), err)
	}
}

func TestRetention(t *testing.T) {
	now := t0
	db := openTest(t, t.TempDir(), &now)
	old := otlptest.Generate(otlptest.Options{Traces: 10, Services: 2, SpansPerTrace: 2, Start: t0.Add(-time.Hour)})
	writeDataset(t, db, old, 3)
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	now = t0.Add(8 * 24 * time.Hour)
	fresh := otlptest.Generate(otlptest.Options{Traces: 10, Services: 2, SpansPerTrace: 2, Start: now, Seed: 9})
	writeDataset(t, db, fresh, 3)
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	var oldID, freshID TraceID
	copy(oldID[:], old.Spans[0].Span.TraceId)
	copy(freshID[:], fresh.Spans[0].Span.TraceId)
	if _, err := db.Trace(context.Background(), oldID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired trace still there: %v", err)
	}
	if _, err := db.Trace(context.Background(), freshID); err != nil {
		t.Fatalf("fresh trace gone: %v", err)
	}
	got, _ := db.FindTraces(context.Background(), TraceQuery{Limit: 1000})
	if len(got) != 10 {
		t.Fatalf("search after retention: %d traces", len(got))
	}
}

func TestSchemaCheck(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, u64(99)) })
	db.Close()
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrSchema) {
		t.Fatalf("open with schema 99: %v", err)
	}
}
