package promexport

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/store"
)

// clock is a settable clock safe for concurrent use (the store's rollup
// loop reads it).
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// t0 is the start of the tests' data: a Saturday noon in the past, 5 s
// into a 10-second window.
var t0 = time.Date(2025, 3, 1, 12, 0, 5, 0, time.UTC)

// openStore opens a store in a temporary directory on clk, flushing its
// rollups every 10 ms (so compaction and rollup retention run every
// 100 ms), with its self-metrics in reg when not nil.
func openStore(t testing.TB, clk *clock, reg prometheus.Registerer) *store.DB {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.Options{
		Now: clk.Now, CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		RollupFlushInterval: 10 * time.Millisecond, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// span is a span to write: IDs are derived from trace, id and parent
// (parent 0: a root).
type span struct {
	service, name    string
	kind             tracepb.Span_SpanKind
	start            time.Time
	dur              time.Duration
	err              bool
	trace, id, pid   uint64
	attrs            map[string]string
	namespace        string // service.namespace
	resourceInstance string
}

func traceID(n uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, n*0x9E3779B97F4A7C15+1)
	binary.BigEndian.PutUint64(b[8:], n+1)
	return b
}

func spanID(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n+1)
	return b
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// write stores spans in one request, one resource per span.
func write(t testing.TB, db *store.DB, spans ...span) {
	t.Helper()
	if err := tryWrite(db, spans...); err != nil {
		t.Fatal(err)
	}
}

// tryWrite is write for goroutines other than the test's.
func tryWrite(db *store.DB, spans ...span) error {
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, s := range spans {
		res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", s.service)}}
		if s.namespace != "" {
			res.Attributes = append(res.Attributes, str("service.namespace", s.namespace))
		}
		ps := &tracepb.Span{
			TraceId: traceID(s.trace), SpanId: spanID(s.id), Name: s.name, Kind: s.kind,
			StartTimeUnixNano: uint64(s.start.UnixNano()), EndTimeUnixNano: uint64(s.start.Add(s.dur).UnixNano()),
		}
		if s.pid != 0 {
			ps.ParentSpanId = spanID(s.pid)
		}
		if s.err {
			ps.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
		}
		for k, v := range s.attrs {
			ps.Attributes = append(ps.Attributes, str(k, v))
		}
		req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{Resource: res,
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{ps}}}})
	}
	b, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	res, err := db.WriteTraces(context.Background(), b)
	if err != nil || res.Rejected != 0 {
		return fmt.Errorf("write: %v %+v", err, res)
	}
	return nil
}

// scrapeBody serves one scrape and returns the body.
func scrapeBody(t testing.TB, h http.Handler) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/prometheus/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Fatalf("Content-Type %q", ct)
	}
	return rec.Body.Bytes()
}

// exposition is a parsed scrape.
type exposition map[string]*dto.MetricFamily

func parse(t testing.TB, body []byte) exposition {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, body)
	}
	return mfs
}

func scrape(t testing.TB, h http.Handler) exposition { return parse(t, scrapeBody(t, h)) }

// metric returns the series of family name whose labels include want.
func (e exposition) metric(name string, want map[string]string) *dto.Metric {
	mf := e[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// values returns the requests, errors and the histogram of an entity
// (prefix "service", "edge" or "operation"); ok false when absent.
type values struct {
	requests, errors float64
	hist             *dto.Histogram
	quantiles        map[float64]float64
}

func (e exposition) values(prefix string, labels map[string]string) (values, bool) {
	p := "flowscope_red_" + prefix
	r, er, h, q := e.metric(p+"_requests_total", labels), e.metric(p+"_errors_total", labels),
		e.metric(p+"_duration_seconds", labels), e.metric(p+"_duration_quantile_seconds", labels)
	if r == nil || er == nil || h == nil || (q == nil && e[p+"_duration_quantile_seconds"] != nil) {
		return values{}, false
	}
	v := values{requests: r.GetCounter().GetValue(), errors: er.GetCounter().GetValue(), hist: h.GetHistogram(),
		quantiles: map[float64]float64{}}
	for _, qq := range q.GetSummary().GetQuantile() {
		v.quantiles[qq.GetQuantile()] = qq.GetValue()
	}
	return v, true
}

// seriesCount is the number of samples of an exposition.
func seriesCount(body []byte) int {
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

// oracleBuckets computes the classic bucket counts of durations with the
// HDR library's own bucket ranges (Histogram.Distribution): the spans of
// HDR buckets whose highest value (To) is at most each bound.
func oracleBuckets(durs []time.Duration, bounds []time.Duration) []uint64 {
	h := hdr.New(1, int64(time.Hour), 2)
	for _, d := range durs {
		h.RecordValue(int64(d))
	}
	out := make([]uint64, len(bounds))
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		i := sort.Search(len(bounds), func(i int) bool { return int64(bounds[i]) >= bar.To })
		for ; i < len(bounds); i++ {
			out[i] += uint64(bar.Count)
		}
	}
	return out
}

func sameFloat(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// waitFor polls cond for up to 30 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func prometheusRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// waitRetention waits until the store's rollup retention deleted records
// of kind (rollups_10s, rollups_1m, rollups_1h), as its self-metrics say.
func waitRetention(t testing.TB, reg *prometheus.Registry, kind string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "flowscope_store_retention_deleted_total" {
				continue
			}
			for _, m := range mf.Metric {
				for _, l := range m.Label {
					if l.GetName() == "kind" && l.GetValue() == kind && m.GetCounter().GetValue() > 0 {
						return
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s deleted by the store's retention within 30s", kind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
