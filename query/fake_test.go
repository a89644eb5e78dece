package query

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// fakeStore is an in-memory Store over fixed data. It records the last
// search query and time range it was asked for.
type fakeStore struct {
	mu         sync.Mutex
	lastQuery  store.TraceQuery
	lastStart  time.Time
	lastEnd    time.Time
	lastLimit  int
	lastName   string // service of Operations, name of Metrics
	traces     map[store.TraceID]*tracepb.TracesData
	summaries  []store.TraceSummary
	metrics    map[string][]*metricspb.ResourceMetrics
	failingSvc string // Operations and Latency of this service fail
	archs      map[string]store.Architecture

	lastGraph   aggregate.GraphQuery   // query of the last FlowGraph call
	lastLatency aggregate.LatencyQuery // query of the last Latency call
}

var _ Store = (*fakeStore)(nil)

var errBroken = errors.New("disk on fire")

func (f *fakeStore) record(start, end time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastStart, f.lastEnd = start, end
}

func (f *fakeStore) Services(_ context.Context, start, end time.Time) ([]store.ServiceStats, error) {
	f.record(start, end)
	return []store.ServiceStats{
		{Name: "frontend", SpanCount: 1200, ErrorCount: 3},
		{Name: "checkout", SpanCount: 800, ErrorCount: 0},
	}, nil
}

func (f *fakeStore) Operations(_ context.Context, service string) ([]store.Operation, error) {
	f.mu.Lock()
	f.lastName = service
	f.mu.Unlock()
	if service == f.failingSvc {
		return nil, errBroken
	}
	if service != "checkout" {
		return nil, nil
	}
	return []store.Operation{
		{Name: "SELECT orders", Kind: tracepb.Span_SPAN_KIND_CLIENT},
		{Name: "POST /checkout", Kind: tracepb.Span_SPAN_KIND_SERVER},
	}, nil
}

func (f *fakeStore) Trace(_ context.Context, id store.TraceID) (*tracepb.TracesData, error) {
	td, ok := f.traces[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	return proto.Clone(td).(*tracepb.TracesData), nil
}

func (f *fakeStore) FindTraces(_ context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	f.mu.Lock()
	f.lastQuery = q
	f.mu.Unlock()
	var out []store.TraceSummary
	for _, s := range f.summaries {
		if q.Service != "" && !contains(s.Services, q.Service) {
			continue
		}
		if q.Source != "" && (!contains(s.Services, q.Source) || !contains(s.Services, q.Target)) {
			continue
		}
		if q.Status == store.TraceStatusError && s.ErrorCount == 0 || q.Status == store.TraceStatusOK && s.ErrorCount != 0 {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		s.MatchedSpan = [8]byte{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, byte(len(out))} // as the store marks the span found
		out = append(out, s)
	}
	return out, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fakeStore) Correlation(_ context.Context, id string, limit int) ([]store.TraceSummary, error) {
	f.mu.Lock()
	f.lastLimit = limit
	f.mu.Unlock()
	if id != "req-42" {
		return nil, nil
	}
	return f.summaries[:1], nil
}

func (f *fakeStore) MetricNames(_ context.Context, start, end time.Time) ([]store.MetricInfo, error) {
	f.record(start, end)
	return []store.MetricInfo{
		{Name: "queue.size", Type: "gauge", Unit: "{item}", Description: "Items waiting."},
		{Name: "http.server.request.duration", Type: "histogram", Unit: "ms", Description: "Request latency."},
		{Name: "gc.pause", Type: "summary", Unit: "ms"},
		{Name: "rpc.latency", Type: "exponential_histogram", Unit: "ms"},
		{Name: "requests", Type: "sum", Unit: "{request}"},
	}, nil
}

func (f *fakeStore) Metrics(_ context.Context, name string, start, end time.Time) ([]*metricspb.ResourceMetrics, error) {
	f.record(start, end)
	f.mu.Lock()
	f.lastName = name
	f.mu.Unlock()
	var out []*metricspb.ResourceMetrics
	for _, rm := range f.metrics[name] {
		out = append(out, proto.Clone(rm).(*metricspb.ResourceMetrics))
	}
	return out, nil
}

// FlowGraph returns fixtureGraph, or fixtureRegionGraph at LevelRegion.
func (f *fakeStore) FlowGraph(_ context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error) {
	f.record(start, end)
	f.mu.Lock()
	f.lastGraph = q
	f.mu.Unlock()
	if q.Level == aggregate.LevelRegion {
		return fixtureRegionGraph(), nil
	}
	return fixtureGraph(), nil
}

// Latency returns fixtureLatency for service checkout and for the edge
// frontend -> checkout, an empty distribution otherwise, and fails for the
// service named failingSvc.
func (f *fakeStore) Latency(_ context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error) {
	f.record(start, end)
	f.mu.Lock()
	f.lastLatency = q
	f.mu.Unlock()
	switch {
	case q.Service != "" && q.Service == f.failingSvc:
		return nil, errBroken
	case q.Service == "checkout", q.Source == "frontend" && q.Target == "checkout":
		return fixtureLatency(start, end, q.Step), nil
	}
	return &aggregate.Latency{}, nil
}

// Architecture returns the architecture of that name from archs; the one
// named failingSvc fails.
func (f *fakeStore) Architecture(_ context.Context, name string) (store.Architecture, error) {
	if name == f.failingSvc {
		return store.Architecture{}, errBroken
	}
	a, ok := f.archs[name]
	if !ok {
		return store.Architecture{}, fmt.Errorf("architecture %q: %w", name, store.ErrNotFound)
	}
	a.Nodes = append([]store.ArchNode(nil), a.Nodes...)
	a.Edges = append([]store.ArchEdge(nil), a.Edges...)
	return a, nil
}

// Architectures lists archs, in map order (the service sorts).
func (f *fakeStore) Architectures(context.Context) ([]store.ArchitectureInfo, error) {
	var out []store.ArchitectureInfo
	for _, a := range f.archs {
		out = append(out, store.ArchitectureInfo{Name: a.Name, Source: a.Source, Imported: a.Imported,
			Nodes: len(a.Nodes), Edges: len(a.Edges)})
	}
	return out, nil
}

// fixtureArch is the declared architecture of the shop that fixtureGraph
// observes: frontend calls checkout and cart, checkout calls payments and
// inventory (never observed; in us-west-2), cart calls inventory. The
// self-call of checkout and its calls into postgres are not declared.
// reports is declared without any call; batch has no service name (it
// exists only at the instance level and below). Its nodes have no
// namespace, like the services of fixtureGraph (see compare_test.go for
// namespaced architectures).
func fixtureArch() store.Architecture {
	node := func(service, region string) store.ArchNode {
		return store.ArchNode{ID: "shop." + region + "." + service + "0", Service: service,
			Instance: service + "0", Zone: region + "a", Region: region}
	}
	a := store.Architecture{
		Name:     "shop",
		Source:   "spigo graph json shop.json",
		Imported: time.Date(2024, 4, 30, 8, 15, 0, 0, time.UTC),
		Nodes: []store.ArchNode{
			node("frontend", "us-east-1"), node("checkout", "us-east-1"), node("cart", "us-east-1"),
			node("payments", "eu-west-1"), node("inventory", "us-west-2"),
			{ID: "shop.reports", Service: "reports"},
			{ID: "shop.batch", Instance: "batch0"},
		},
	}
	edge := func(src, dst int) store.ArchEdge {
		return store.ArchEdge{Source: a.Nodes[src].ID, Target: a.Nodes[dst].ID}
	}
	a.Edges = []store.ArchEdge{edge(0, 1), edge(0, 2), edge(1, 3), edge(1, 4), edge(2, 4), edge(6, 1)}
	return a
}

// Fixture IDs.
var (
	traceID1 = store.TraceID{0x5b, 0x8e, 0xfa, 0xf1, 0x6e, 0x7d, 0x4c, 0x90, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18}
	// traceID64 is a 64-bit (Zipkin) trace ID as the store keeps it.
	traceID64 = store.TraceID{8: 0x46, 9: 0x3a, 10: 0xc3, 11: 0x5c, 12: 0x9f, 13: 0x64, 14: 0x13, 15: 0xad}
)

// fixture times: the fake clock reads 2024-05-01T12:00:00Z.
var (
	t0 = time.Date(2024, 5, 1, 11, 59, 0, 0, time.UTC)
	t1 = t0.Add(30 * time.Second)
)

func newFakeStore() *fakeStore {
	return &fakeStore{
		failingSvc: "broken",
		archs: map[string]store.Architecture{
			"shop":  fixtureArch(),
			"empty": {Name: "empty", Source: "hand-written", Imported: t0},
		},
		traces: map[store.TraceID]*tracepb.TracesData{
			traceID1:  fixtureTrace(traceID1),
			traceID64: fixtureTrace(traceID64),
		},
		summaries: []store.TraceSummary{
			{
				TraceID: traceID1, RootService: "frontend", RootOperation: "GET /cart",
				Start: t1, Duration: 42 * time.Millisecond, SpanCount: 2, ErrorCount: 1,
				Services: []string{"checkout", "frontend"},
			},
			{
				TraceID: traceID64, RootService: "frontend", RootOperation: "GET /",
				Start: t0, Duration: 1500 * time.Microsecond, SpanCount: 1,
				Services: []string{"frontend"},
			},
		},
		metrics: map[string][]*metricspb.ResourceMetrics{
			"queue.size":                   {fixtureGauge()},
			"requests":                     {fixtureSum()},
			"http.server.request.duration": fixtureHistogram(),
			"rpc.latency":                  {fixtureExponential()},
			"gc.pause":                     {fixtureSummary()},
		},
	}
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func resource(service string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", service)}}
}

func nanos(t time.Time) uint64 { return uint64(t.UnixNano()) }

// fixtureTrace is a two-span trace: frontend GET /cart calling checkout.
func fixtureTrace(id store.TraceID) *tracepb.TracesData {
	root := []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}
	child := []byte{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{
		{
			Resource: resource("frontend"),
			ScopeSpans: []*tracepb.ScopeSpans{{
				Scope: &commonpb.InstrumentationScope{Name: "net/http"},
				Spans: []*tracepb.Span{{
					TraceId: id[:], SpanId: root, Name: "GET /cart", Kind: tracepb.Span_SPAN_KIND_SERVER,
					StartTimeUnixNano: nanos(t1), EndTimeUnixNano: nanos(t1.Add(42 * time.Millisecond)),
					Attributes: []*commonpb.KeyValue{strAttr("http.route", "/cart"), intAttr("http.response.status_code", 500)},
					Status:     &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "upstream failed"},
				}},
			}},
		},
		{
			Resource: resource("checkout"),
			ScopeSpans: []*tracepb.ScopeSpans{{
				Spans: []*tracepb.Span{{
					TraceId: id[:], SpanId: child, ParentSpanId: root, Name: "POST /checkout", Kind: tracepb.Span_SPAN_KIND_SERVER,
					StartTimeUnixNano: nanos(t1.Add(time.Millisecond)), EndTimeUnixNano: nanos(t1.Add(40 * time.Millisecond)),
				}},
			}},
		},
	}}
}

func metricRM(service string, m *metricspb.Metric) *metricspb.ResourceMetrics {
	res := resource(service)
	res.Attributes = append(res.Attributes, strAttr("service.instance.id", service+"-1"), intAttr("process.pid", 4242))
	return &metricspb.ResourceMetrics{
		Resource:     res,
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{m}}},
	}
}

func fixtureGauge() *metricspb.ResourceMetrics {
	return metricRM("checkout", &metricspb.Metric{
		Name: "queue.size", Unit: "{item}", Description: "Items waiting.",
		Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
			// Out of order on purpose: the response sorts by time.
			{TimeUnixNano: nanos(t1), Value: &metricspb.NumberDataPoint_AsInt{AsInt: 7}, Attributes: []*commonpb.KeyValue{strAttr("queue", "orders")}},
			{TimeUnixNano: nanos(t0), Value: &metricspb.NumberDataPoint_AsInt{AsInt: 4}, Attributes: []*commonpb.KeyValue{strAttr("queue", "orders")}},
			{TimeUnixNano: nanos(t0), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 0.5}, Attributes: []*commonpb.KeyValue{strAttr("queue", "emails")}},
			// No recorded value: left out.
			{TimeUnixNano: nanos(t1), Flags: 1, Attributes: []*commonpb.KeyValue{strAttr("queue", "emails")}},
		}}},
	})
}

func fixtureSum() *metricspb.ResourceMetrics {
	return metricRM("frontend", &metricspb.Metric{
		Name: "requests", Unit: "{request}",
		Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE, IsMonotonic: true,
			DataPoints: []*metricspb.NumberDataPoint{{
				StartTimeUnixNano: nanos(t0.Add(-time.Hour)), TimeUnixNano: nanos(t0),
				Value: &metricspb.NumberDataPoint_AsInt{AsInt: 1234},
				Exemplars: []*metricspb.Exemplar{{
					TimeUnixNano: nanos(t0.Add(-time.Second)), Value: &metricspb.Exemplar_AsInt{AsInt: 1},
					TraceId: traceID1[:], SpanId: []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08},
					FilteredAttributes: []*commonpb.KeyValue{strAttr("http.route", "/cart")},
				}},
			}},
		}},
	})
}

func ptr[T any](v T) *T { return &v }

// fixtureHistogram is the histogram of TestExplicitQuantile (bounds 10, 20,
// 50, 100; counts 2, 3, 4, 1, 0; min 3, max 90) for two services.
func fixtureHistogram() []*metricspb.ResourceMetrics {
	m := func(service string, count uint64) *metricspb.ResourceMetrics {
		return metricRM(service, &metricspb.Metric{
			Name: "http.server.request.duration", Unit: "ms", Description: "Request latency.",
			Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
				DataPoints: []*metricspb.HistogramDataPoint{{
					StartTimeUnixNano: nanos(t0), TimeUnixNano: nanos(t1),
					Attributes: []*commonpb.KeyValue{strAttr("http.route", "/cart")},
					Count:      count, Sum: ptr(384.5), Min: ptr(3.0), Max: ptr(90.0),
					ExplicitBounds: []float64{10, 20, 50, 100},
					BucketCounts:   []uint64{2, 3, 4, 1, 0},
					Exemplars: []*metricspb.Exemplar{{
						TimeUnixNano: nanos(t1), Value: &metricspb.Exemplar_AsDouble{AsDouble: 90},
						TraceId: traceID1[:], SpanId: []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08},
					}},
				}},
			}},
		})
	}
	return []*metricspb.ResourceMetrics{m("frontend", 10), m("checkout", 10)}
}

// fixtureExponential is the scale-0 histogram of TestExponentialQuantile.
func fixtureExponential() *metricspb.ResourceMetrics {
	return metricRM("checkout", &metricspb.Metric{
		Name: "rpc.latency", Unit: "ms",
		Data: &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: &metricspb.ExponentialHistogram{
			AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
			DataPoints: []*metricspb.ExponentialHistogramDataPoint{{
				StartTimeUnixNano: nanos(t0), TimeUnixNano: nanos(t1),
				Count: 5, Sum: ptr(12.0), Scale: 0, ZeroCount: 1,
				Positive: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: 0, BucketCounts: []uint64{1, 2, 1}},
			}},
		}},
	})
}

func fixtureSummary() *metricspb.ResourceMetrics {
	return metricRM("checkout", &metricspb.Metric{
		Name: "gc.pause", Unit: "ms",
		Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{{
			StartTimeUnixNano: nanos(t0), TimeUnixNano: nanos(t1), Count: 100, Sum: 250,
			QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{
				{Quantile: 0.99, Value: 9.5}, {Quantile: 0.5, Value: 2},
			},
		}}}},
	})
}
