package promexport

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/query"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// ent names an exposed entity by metric prefix and label values: service
// (a), edge (a → b), operation (a, b, c = kind).
type ent struct{ prefix, a, b, c string }

func (e ent) labels() map[string]string {
	switch e.prefix {
	case "service":
		return map[string]string{"service": e.a}
	case "edge":
		return map[string]string{"source": e.a, "target": e.b}
	}
	return map[string]string{"service": e.a, "operation": e.b, "kind": e.c}
}

func (e ent) String() string { return fmt.Sprintf("%s %s %s %s", e.prefix, e.a, e.b, e.c) }

// expect is what the spans sent give an entity.
type expect struct {
	requests, errors int
	durs             []time.Duration
}

type oracle map[ent]*expect

func (o oracle) add(e ent, d time.Duration, failed bool) {
	x := o[e]
	if x == nil {
		x = &expect{}
		o[e] = x
	}
	x.requests++
	if failed {
		x.errors++
	}
	x.durs = append(x.durs, d)
}

// shopDuration is trace i's call duration: three modes (~3 ms, ~45 ms,
// ~750 ms), some exactly on a default bucket bound.
func shopDuration(i int) time.Duration {
	if i%13 == 0 {
		return 5 * time.Millisecond
	}
	switch i % 3 {
	case 0:
		return 3*time.Millisecond + time.Duration(i%7)*137*time.Microsecond
	case 1:
		return 42*time.Millisecond + time.Duration(i%11)*1300*time.Microsecond
	}
	return 700*time.Millisecond + time.Duration(i%5)*23*time.Millisecond
}

// shop returns traces first..first+n-1, 200 ms apart from base: frontend
// serves GET /cart and calls checkout (POST /checkout), which queries
// postgresql (uninstrumented: a virtual node) and computes a price
// (internal). It adds what they count to o.
func shop(base time.Time, first, n int, o oracle) []span {
	var out []span
	for i := first; i < first+n; i++ {
		start := base.Add(time.Duration(i-first) * 200 * time.Millisecond)
		d := shopDuration(i)
		id := uint64(i) * 10
		tr := uint64(i)
		rootErr := i%10 == 0
		serverErr := i%10 == 0 || i%15 == 1
		dbErr := i%20 == 3
		dbDur := time.Millisecond + time.Duration(i%4)*300*time.Microsecond
		out = append(out,
			span{service: "frontend", name: "GET /cart", kind: tracepb.Span_SPAN_KIND_SERVER, start: start, dur: d + 3*time.Millisecond, err: rootErr, trace: tr, id: id + 1},
			span{service: "frontend", name: "POST /checkout", kind: tracepb.Span_SPAN_KIND_CLIENT, start: start.Add(time.Millisecond), dur: d, trace: tr, id: id + 2, pid: id + 1},
			span{service: "checkout", name: "POST /checkout", kind: tracepb.Span_SPAN_KIND_SERVER, start: start.Add(1250 * time.Microsecond), dur: d - 500*time.Microsecond, err: serverErr, trace: tr, id: id + 3, pid: id + 2},
			span{service: "checkout", name: "SELECT orders", kind: tracepb.Span_SPAN_KIND_CLIENT, start: start.Add(1500 * time.Microsecond), dur: dbDur, err: dbErr, trace: tr, id: id + 4, pid: id + 3,
				attrs: map[string]string{"db.system": "postgresql"}},
			span{service: "checkout", name: "price", kind: tracepb.Span_SPAN_KIND_INTERNAL, start: start.Add(2 * time.Millisecond), dur: 200 * time.Microsecond, trace: tr, id: id + 5, pid: id + 3},
		)
		if o == nil {
			continue
		}
		o.add(ent{"service", "frontend", "", ""}, d+3*time.Millisecond, rootErr)
		o.add(ent{"service", "checkout", "", ""}, d-500*time.Microsecond, serverErr)
		o.add(ent{"edge", "frontend", "checkout", ""}, d, serverErr)
		o.add(ent{"edge", "checkout", "postgresql", ""}, dbDur, dbErr)
		o.add(ent{"operation", "frontend", "GET /cart", "server"}, d+3*time.Millisecond, rootErr)
		o.add(ent{"operation", "frontend", "POST /checkout", "client"}, d, false)
		o.add(ent{"operation", "checkout", "POST /checkout", "server"}, d-500*time.Microsecond, serverErr)
		o.add(ent{"operation", "checkout", "SELECT orders", "client"}, dbDur, dbErr)
		o.add(ent{"operation", "checkout", "price", "internal"}, 200*time.Microsecond, false)
	}
	return out
}

// writeShop writes traces in requests of 20.
func writeShop(t testing.TB, db *store.DB, spans []span) {
	t.Helper()
	for i := 0; i < len(spans); i += 100 {
		write(t, db, spans[i:min(i+100, len(spans))]...)
	}
}

// latencyOf asks the query service for an entity's latency over [start, end].
func latencyOf(t testing.TB, qs *query.Service, e ent, start, end time.Time, quantiles []float64) *querypb.GetLatencyResponse {
	t.Helper()
	req := &querypb.GetLatencyRequest{Start: start.UTC().Format(time.RFC3339Nano), End: end.UTC().Format(time.RFC3339Nano), Quantiles: quantiles}
	switch e.prefix {
	case "service":
		req.Service = e.a
	case "edge":
		req.Source, req.Target = e.a, e.b
	default:
		req.Service, req.Operation, req.Kind = e.a, e.b, e.c
	}
	resp, err := qs.GetLatency(context.Background(), req)
	if err != nil {
		t.Fatalf("GetLatency %v: %v", e, err)
	}
	return resp
}

// lintClean fails on any problem promlint finds.
func lintClean(t testing.TB, body []byte) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// checkExact checks every oracle entity in exp: counts, buckets, count and
// sum exactly (the sum within HDR resolution), and that the counts and
// quantiles agree with the query API.
func checkExact(t *testing.T, exp exposition, o oracle, qs *query.Service, bounds []time.Duration, quants []float64, origin, now time.Time, qwin time.Duration) {
	t.Helper()
	for e, x := range o {
		v, ok := exp.values(e.prefix, e.labels())
		if !ok {
			t.Errorf("%v: not exposed", e)
			continue
		}
		if v.requests != float64(x.requests) || v.errors != float64(x.errors) {
			t.Errorf("%v: requests %v errors %v, want %d %d", e, v.requests, v.errors, x.requests, x.errors)
		}
		if v.hist.GetSampleCount() != uint64(len(x.durs)) {
			t.Errorf("%v: _count %d, want %d", e, v.hist.GetSampleCount(), len(x.durs))
		}
		var got []uint64
		for _, b := range v.hist.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				got = append(got, b.GetCumulativeCount())
			}
		}
		if want := oracleBuckets(x.durs, bounds); !slices.Equal(got, want) {
			t.Errorf("%v: buckets %v, want %v (bounds %v)", e, got, want, bounds)
		}
		var sum float64
		for _, d := range x.durs {
			sum += d.Seconds()
		}
		if s := v.hist.GetSampleSum(); math.Abs(s-sum) > sum/128 {
			t.Errorf("%v: _sum %v, want %v within 1/128", e, s, sum)
		}
		// The query API over the same range.
		lat := latencyOf(t, qs, e, origin, now, nil)
		if lat.Count != v.requests || lat.Errors != v.errors {
			t.Errorf("%v: /latency count %v errors %v, exposed %v %v", e, lat.Count, lat.Errors, v.requests, v.errors)
		}
		if len(quants) == 0 {
			continue
		}
		win := latencyOf(t, qs, e, now.Add(-qwin), now, quants)
		for _, q := range win.Quantiles {
			want := math.NaN()
			if q.Value != nil {
				want = q.Value.Value / 1e9
			}
			if got, ok := v.quantiles[q.Quantile]; !ok || !sameFloat(got, want) {
				t.Errorf("%v: quantile %v = %v, /latency says %v", e, q.Quantile, got, want)
			}
		}
	}
	// Edges agree with the flow graph too.
	fg, err := qs.GetFlowGraph(context.Background(), &querypb.GetFlowGraphRequest{
		Start: origin.UTC().Format(time.RFC3339), End: now.UTC().Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ed := range fg.Edges {
		v, ok := exp.values("edge", map[string]string{"source": ed.Source, "target": ed.Target})
		if !ok || v.requests != ed.Calls || v.errors != ed.Errors {
			t.Errorf("edge %s → %s: exposed %+v (%v), flow graph %v calls %v errors", ed.Source, ed.Target, v, ok, ed.Calls, ed.Errors)
		}
	}
}

// TestExposition sends a shop's traffic to a real store and checks every
// value of the exposition against the spans sent and the query API, for
// the default and for other buckets and quantiles.
func TestExposition(t *testing.T) {
	tests := []struct {
		name      string
		buckets   []time.Duration
		quantiles []float64
		qwin      time.Duration
	}{
		{name: "defaults"},
		{name: "custom", buckets: []time.Duration{time.Millisecond, 40 * time.Millisecond, 43 * time.Millisecond, time.Second},
			quantiles: []float64{0.25, 0.75, 0.999}, qwin: 20 * time.Second},
		{name: "no quantiles", buckets: []time.Duration{5 * time.Millisecond}, quantiles: []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(t0)
			db := openStore(t, clk, nil)
			h := NewHandler(Options{Store: db, Now: clk.Now, Buckets: tt.buckets, Quantiles: tt.quantiles, QuantileWindow: tt.qwin})
			def := DefaultOptions()
			bounds, quants, qwin := cmpOr(tt.buckets, def.Buckets), cmpOr(tt.quantiles, def.Quantiles), tt.qwin
			if qwin == 0 {
				qwin = def.QuantileWindow
			}
			o := oracle{}
			spans := shop(t0, 0, 120, o) // 24 s of traffic
			clk.advance(30 * time.Second)
			writeShop(t, db, spans)
			qs := query.NewService(db, query.ServiceOptions{Now: clk.Now})

			body := scrapeBody(t, h)
			lintClean(t, body)
			exp := parse(t, body)
			checkExact(t, exp, o, qs, bounds, quants, time.Unix(floorTo(t0.Unix(), 10), 0), clk.Now(), qwin)
			if got := exp.metric(nameStartTime, nil).GetGauge().GetValue(); got != float64(floorTo(t0.Unix(), 10)) {
				t.Errorf("start time %v", got)
			}
			if got := exp.metric(nameDropped, nil).GetGauge().GetValue(); got != 0 {
				t.Errorf("dropped %v", got)
			}
			// Nothing but the oracle's entities: the virtual postgresql is
			// an edge's target, not a service.
			per := 2 + len(bounds) + 1 + 2 + len(quants)
			if n := seriesCount(body); n != metaSeries+per*len(o) {
				t.Errorf("%d series, want %d", n, metaSeries+per*len(o))
			}
			if m := exp.metric("flowscope_red_service_requests_total", map[string]string{"service": "postgresql"}); m != nil {
				t.Error("the virtual node postgresql is exposed as a service")
			}
			if len(quants) == 0 && strings.Contains(string(body), "quantile") {
				t.Error("quantile family without quantiles")
			}

			// Later, with no traffic: the same counters, quantiles NaN.
			clk.advance(10 * time.Minute)
			exp2 := scrape(t, h)
			for e, x := range o {
				v, _ := exp2.values(e.prefix, e.labels())
				if v.requests != float64(x.requests) {
					t.Errorf("%v after 10 minutes: %v requests, want %d", e, v.requests, x.requests)
				}
				for q, val := range v.quantiles {
					if !math.IsNaN(val) {
						t.Errorf("%v: quantile %v = %v without traffic in the window, want NaN", e, q, val)
					}
				}
			}
		})
	}
}

func cmpOr[T any](a, b []T) []T {
	if a != nil {
		return a
	}
	return b
}

// TestMonotonic runs traffic across rollup window boundaries, folds,
// compaction and rollup retention (tier by tier, up to the 1 h tier's 90
// days, when the store itself no longer has the spans), checking after
// every step that no exposed value went down and that the counters equal
// everything sent.
func TestMonotonic(t *testing.T) {
	clk := newClock(t0)
	reg := prometheusRegistry()
	db := openStore(t, clk, reg)
	h := NewHandler(Options{Store: db, Now: clk.Now, Settle: 30 * time.Second})
	clk.advance(10 * time.Second) // the first traces start 6 s back: after the origin
	o := oracle{}
	var prev exposition
	check := func(phase string) exposition {
		t.Helper()
		body := scrapeBody(t, h)
		exp := parse(t, body)
		for e, x := range o {
			v, ok := exp.values(e.prefix, e.labels())
			if !ok || v.requests != float64(x.requests) || v.errors != float64(x.errors) || v.hist.GetSampleCount() != uint64(len(x.durs)) {
				t.Errorf("%s: %v: requests %v errors %v count %d, want %d %d %d", phase, e, v.requests, v.errors, v.hist.GetSampleCount(), x.requests, x.errors, len(x.durs))
			}
		}
		if prev != nil {
			checkNotDown(t, phase, prev, exp)
		}
		prev = exp
		return exp
	}

	next := 0
	traffic := func(n int) {
		t.Helper()
		writeShop(t, db, shop(clk.Now().Add(-time.Duration(n)*200*time.Millisecond-time.Second), next, n, o))
		next += n
	}
	// Traffic in several windows, scraped as it comes, at 5 s steps.
	for range 30 {
		traffic(25)
		check(fmt.Sprintf("t0+%s", clk.Now().Sub(t0)))
		clk.advance(5 * time.Second)
	}
	h2 := h.(*handler)
	if h2.e.settled <= h2.e.origin {
		t.Fatalf("nothing folded after %s", clk.Now().Sub(t0))
	}
	// Compaction into 1 m and 1 h windows, 10 s windows deleted.
	clk.advance(30 * time.Hour)
	waitRetention(t, reg, "rollups_10s")
	check("after the 10 s tier's retention")
	traffic(40)
	check("traffic after a day")
	clk.advance(time.Minute)
	check("a day's traffic folded")
	// Every tier's retention: the store forgets the spans of the first day.
	// Rollups compacted late count as written then and stay 90 days from
	// that write, so the clock moves a day at a time until they are gone.
	clk.advance(91 * 24 * time.Hour)
	check("91 days later")
	waitFor(t, "the store forgets the first day's edges", func() bool {
		g, err := db.FlowGraph(context.Background(), t0, t0.Add(32*time.Hour), serviceLevel)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Edges) == 0 {
			return true
		}
		clk.advance(24 * time.Hour)
		return false
	})
	waitRetention(t, reg, "rollups_1h")
	check("after every tier's retention")
	traffic(40)
	check("traffic after 91 days")
}

// checkNotDown fails when a counter, bucket, _sum or _count of prev is
// above its value in cur, or a series of prev is gone.
func checkNotDown(t *testing.T, phase string, prev, cur exposition) {
	t.Helper()
	for name, mf := range prev {
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			c := cur.metric(name, labels)
			if c == nil {
				t.Errorf("%s: %s%v is gone", phase, name, labels)
				continue
			}
			switch {
			case m.Counter != nil:
				if c.GetCounter().GetValue() < m.GetCounter().GetValue() {
					t.Errorf("%s: %s%v went down: %v → %v", phase, name, labels, m.GetCounter().GetValue(), c.GetCounter().GetValue())
				}
			case m.Histogram != nil:
				ph, ch := m.GetHistogram(), c.GetHistogram()
				if ch.GetSampleCount() < ph.GetSampleCount() || ch.GetSampleSum() < ph.GetSampleSum() {
					t.Errorf("%s: %s%v _count or _sum went down", phase, name, labels)
				}
				for i, b := range ph.GetBucket() {
					if ch.GetBucket()[i].GetCumulativeCount() < b.GetCumulativeCount() {
						t.Errorf("%s: %s%v le=%v went down", phase, name, labels, b.GetUpperBound())
					}
				}
			}
		}
	}
}

// TestProvisionalMove checks that an edge's counter holds its value when
// the flow graph takes a call back from it: a client span naming its
// callee server.address payments.internal is a provisional call to that
// virtual node until its server half (service payments) arrives, when it
// moves to the edge checkout → payments.
func TestProvisionalMove(t *testing.T) {
	clk := newClock(t0)
	db := openStore(t, clk, nil)
	h := NewHandler(Options{Store: db, Now: clk.Now})
	client := span{service: "checkout", name: "charge", kind: tracepb.Span_SPAN_KIND_CLIENT, start: t0, dur: 30 * time.Millisecond,
		trace: 7, id: 71, attrs: map[string]string{"server.address": "payments.internal"}}
	server := span{service: "payments", name: "charge", kind: tracepb.Span_SPAN_KIND_SERVER, start: t0.Add(time.Millisecond), dur: 28 * time.Millisecond,
		trace: 7, id: 72, pid: 71}
	clk.advance(time.Second)
	write(t, db, client)
	virtual := map[string]string{"source": "checkout", "target": "payments.internal"}
	real := map[string]string{"source": "checkout", "target": "payments"}
	first := scrape(t, h)
	if v, ok := first.values("edge", virtual); !ok || v.requests != 1 {
		t.Fatalf("provisional call: %+v %v", v, ok)
	}
	clk.advance(time.Second)
	write(t, db, server)
	g, err := db.FlowGraph(context.Background(), t0, clk.Now(), serviceLevel)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Edges) != 1 || g.Edges[0].Target != "payments" {
		t.Fatalf("the flow graph did not move the call: %+v", g.Edges)
	}
	second := scrape(t, h)
	checkNotDown(t, "after the move", first, second)
	if v, _ := second.values("edge", real); v.requests != 1 {
		t.Errorf("checkout → payments: %v calls, want 1", v.requests)
	}
	if v, _ := second.values("edge", virtual); v.requests != 1 {
		t.Errorf("checkout → payments.internal: %v calls, want 1 (held)", v.requests)
	}
}

// TestMaxSeries checks the cardinality bound: entities are exposed whole
// in order (services, edges, operations) while they fit, and the rest
// counted as dropped.
func TestMaxSeries(t *testing.T) {
	// The shop has 2 services, 2 edges and 5 operations of 19 series each
	// (default buckets and quantiles).
	const per = 19
	tests := []struct {
		name      string
		max       int
		exposed   []string // prefixes, in order
		dropped   int
		dropLater bool
	}{
		{name: "all fit", max: metaSeries + 9*per, exposed: []string{"service", "service", "edge", "edge", "operation", "operation", "operation", "operation", "operation"}},
		{name: "one operation short", max: metaSeries + 9*per - 1, exposed: []string{"service", "service", "edge", "edge", "operation", "operation", "operation", "operation"}, dropped: per},
		{name: "services only", max: metaSeries + 2*per + per - 1, exposed: []string{"service", "service"}, dropped: 7 * per},
		{name: "nothing", max: 1, dropped: 9 * per},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock(t0)
			db := openStore(t, clk, nil)
			h := NewHandler(Options{Store: db, Now: clk.Now, MaxSeries: tt.max})
			clk.advance(30 * time.Second)
			writeShop(t, db, shop(t0, 0, 50, nil))
			body := scrapeBody(t, h)
			lintClean(t, body)
			exp := parse(t, body)
			if n := seriesCount(body); n > max(tt.max, metaSeries) {
				t.Errorf("%d series over max_series %d", n, tt.max)
			}
			var got []string
			for _, p := range []string{"service", "edge", "operation"} {
				for range exp["flowscope_red_"+p+"_requests_total"].GetMetric() {
					got = append(got, p)
				}
			}
			if !slices.Equal(got, tt.exposed) {
				t.Errorf("exposed %v, want %v", got, tt.exposed)
			}
			if d := exp.metric(nameDropped, nil).GetGauge().GetValue(); d != float64(tt.dropped) {
				t.Errorf("dropped %v, want %d", d, tt.dropped)
			}
			// The exposed operations are the first in order.
			if tt.name == "one operation short" {
				if exp.metric("flowscope_red_operation_requests_total", map[string]string{"service": "frontend", "operation": "POST /checkout"}) != nil {
					t.Error("the last operation (frontend POST /checkout) is exposed")
				}
			}
		})
	}
}

// TestLabelEscaping sends names that need escaping and reads them back
// through a parser; a value with invalid UTF-8 becomes U+FFFD.
func TestLabelEscaping(t *testing.T) {
	clk := newClock(t0)
	db := openStore(t, clk, nil)
	h := NewHandler(Options{Store: db, Now: clk.Now})
	names := []string{`say "hi"`, `C:\path\`, "two\nlines", "ünï cødé ✓", `{le="1"}`}
	clk.advance(10 * time.Second)
	for i, n := range names {
		write(t, db, span{service: n, name: n + " op", kind: tracepb.Span_SPAN_KIND_SERVER, start: t0, dur: time.Millisecond, trace: uint64(100 + i), id: uint64(1000 + i)})
	}
	body := scrapeBody(t, h)
	lintClean(t, body)
	exp := parse(t, body)
	for _, n := range names {
		if _, ok := exp.values("service", map[string]string{"service": n}); !ok {
			t.Errorf("service %q: not found after parsing", n)
		}
		if _, ok := exp.values("operation", map[string]string{"service": n, "operation": n + " op", "kind": "server"}); !ok {
			t.Errorf("operation %q: not found after parsing", n+" op")
		}
	}
	// The writer alone, for what the store would not take.
	w := newWriter(nil, nil)
	out := w.write(nil, &snapshot{entities: []exposed{{ent: entity{kind: entityService, a: "bad\xffutf8"}, s: newAcc(0).cumulative()}}})
	if parse(t, out).metric("flowscope_red_service_requests_total", map[string]string{"service": "bad\uFFFDutf8"}) == nil {
		t.Errorf("invalid UTF-8: %s", out)
	}
}

// TestGzip checks the encodings offered.
func TestGzip(t *testing.T) {
	f := func(header string, want bool) {
		t.Helper()
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
	f("", false)
	f("gzip", true)
	f("identity", false)
	f("br, gzip;q=0.5", true)
	f("gzip;q=0", false)
	f("GZIP ; Q=1.0", true)
	f("*", true)
	f("deflate, x-gzip", true)

	clk := newClock(t0)
	db := openStore(t, clk, nil)
	h := NewHandler(Options{Store: db, Now: clk.Now})
	clk.advance(30 * time.Second)
	writeShop(t, db, shop(t0, 0, 20, nil))
	plain := scrapeBody(t, h)
	req := httptest.NewRequest(http.MethodGet, "/api/v1/prometheus/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip: %v", rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	var unzipped bytes.Buffer
	if _, err := unzipped.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(unzipped.Bytes(), plain) {
		t.Errorf("gzip body differs from the plain one:\n%s\n---\n%s", unzipped.Bytes(), plain)
	}
}

// TestStoreClosed answers 503 when the store is closed.
func TestStoreClosed(t *testing.T) {
	clk := newClock(t0)
	db := openStore(t, clk, nil)
	h := NewHandler(Options{Store: db, Now: clk.Now})
	db.Close()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rec.Code)
	}
}

// TestNamespacedService checks that a service with a service.namespace is
// exposed under its flow-graph ID (namespace/name), its operations too.
func TestNamespacedService(t *testing.T) {
	clk := newClock(t0)
	db := openStore(t, clk, nil)
	h := NewHandler(Options{Store: db, Now: clk.Now})
	clk.advance(10 * time.Second)
	for i := range 3 {
		write(t, db, span{service: "cart", namespace: "shop", name: "GET /cart", kind: tracepb.Span_SPAN_KIND_SERVER,
			start: t0.Add(time.Duration(i) * time.Second), dur: 4 * time.Millisecond, err: i == 0, trace: uint64(200 + i), id: uint64(2000 + i)})
	}
	exp := scrape(t, h)
	if v, ok := exp.values("service", map[string]string{"service": "shop/cart"}); !ok || v.requests != 3 || v.errors != 1 {
		t.Errorf("service shop/cart: %+v %v", v, ok)
	}
	if v, ok := exp.values("operation", map[string]string{"service": "shop/cart", "operation": "GET /cart", "kind": "server"}); !ok || v.requests != 3 {
		t.Errorf("operation of shop/cart: %+v %v", v, ok)
	}
}

// TestConcurrentScrapes scrapes from several goroutines while spans are
// written (run with -race); every scrape sees counters at least as high as
// the ones before it finished.
func TestConcurrentScrapes(t *testing.T) {
	clk := newClock(t0)
	db := openStore(t, clk, nil)
	h := NewHandler(Options{Store: db, Now: clk.Now, Settle: 10 * time.Second})
	clk.advance(10 * time.Second)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			clk.advance(time.Second)
			if err := tryWrite(db, shop(clk.Now().Add(-time.Second), i*2, 2, nil)...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0.0
			for range 20 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("status %d", rec.Code)
					return
				}
				m := parse(t, rec.Body.Bytes()).metric("flowscope_red_service_requests_total", map[string]string{"service": "frontend"})
				if v := m.GetCounter().GetValue(); v < last {
					t.Errorf("frontend requests went from %v to %v", last, v)
				} else {
					last = v
				}
			}
		}()
	}
	wg.Wait()
	<-done
	if v, _ := scrape(t, h).values("service", map[string]string{"service": "frontend"}); v.requests != 40 {
		t.Errorf("frontend: %v requests, want 40", v.requests)
	}
}
