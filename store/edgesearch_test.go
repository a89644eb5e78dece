package store

import (
	"context"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// edgeSpan is one span of an edge-search fixture trace.
type edgeSpan struct {
	id, parent uint64 // span IDs within the trace; parent 0: root
	svc, ns    string
	kind       tracepb.Span_SpanKind
	name       string
	dur        time.Duration
	err        bool
	attrs      map[string]string
}

// edgeTraces are the fixture traces of TestEdgeSearch, trace i+1 started
// at t0 + i s.
var edgeTraces = []struct {
	name  string
	spans []edgeSpan
}{
	{"client-server", []edgeSpan{
		{id: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /", dur: 60 * time.Millisecond},
		{id: 2, parent: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_CLIENT, name: "GET /cart", dur: 40 * time.Millisecond},
		{id: 3, parent: 2, svc: "cart", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /cart", dur: 30 * time.Millisecond},
	}},
	{"uninstrumented caller", []edgeSpan{
		{id: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /", dur: 60 * time.Millisecond},
		{id: 2, parent: 1, svc: "cart", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /items", dur: 20 * time.Millisecond},
	}},
	{"virtual callee", []edgeSpan{
		{id: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /", dur: 60 * time.Millisecond},
		{id: 2, parent: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_CLIENT, name: "GET", dur: 5 * time.Millisecond,
			attrs: map[string]string{"peer.service": "redis", "server.address": "10.0.0.9"}},
	}},
	{"named callee answered by another", []edgeSpan{
		{id: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /", dur: 60 * time.Millisecond},
		{id: 2, parent: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_CLIENT, name: "POST /pay", dur: 45 * time.Millisecond,
			attrs: map[string]string{"peer.service": "cart"}},
		{id: 3, parent: 2, svc: "checkout", kind: tracepb.Span_SPAN_KIND_SERVER, name: "POST /pay", dur: 40 * time.Millisecond},
	}},
	{"namespaced", []edgeSpan{
		{id: 1, svc: "frontend", ns: "shop", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /", dur: 60 * time.Millisecond},
		{id: 2, parent: 1, svc: "frontend", ns: "shop", kind: tracepb.Span_SPAN_KIND_CLIENT, name: "GET /cart", dur: 10 * time.Millisecond},
		{id: 3, parent: 2, svc: "cart", ns: "shop", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /cart", dur: 8 * time.Millisecond},
	}},
	{"same service", []edgeSpan{
		{id: 1, svc: "cart", kind: tracepb.Span_SPAN_KIND_INTERNAL, name: "work", dur: 60 * time.Millisecond},
		{id: 2, parent: 1, svc: "cart", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /cart", dur: 20 * time.Millisecond},
	}},
	{"failing call", []edgeSpan{
		{id: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /", dur: 90 * time.Millisecond},
		{id: 2, parent: 1, svc: "frontend", kind: tracepb.Span_SPAN_KIND_CLIENT, name: "GET /cart", dur: 80 * time.Millisecond,
			attrs: map[string]string{"http.route": "/cart"}},
		{id: 3, parent: 2, svc: "cart", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /cart", dur: 70 * time.Millisecond, err: true},
	}},
	{"reverse direction", []edgeSpan{
		{id: 1, svc: "cart", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /cart", dur: 60 * time.Millisecond},
		{id: 2, parent: 1, svc: "cart", kind: tracepb.Span_SPAN_KIND_CLIENT, name: "GET /user", dur: 40 * time.Millisecond},
		{id: 3, parent: 2, svc: "frontend", kind: tracepb.Span_SPAN_KIND_SERVER, name: "GET /user", dur: 30 * time.Millisecond},
	}},
}

// edgeTraceID is the trace ID of fixture trace name.
func edgeTraceID(t *testing.T, name string) uint64 {
	for i, tr := range edgeTraces {
		if tr.name == name {
			return uint64(i + 1)
		}
	}
	t.Fatalf("no fixture trace %q", name)
	return 0
}

// TestEdgeSearch checks TraceQuery.Source/Target against the pairing rules
// of the flow graph: client → server, an uninstrumented caller, a virtual
// callee, a named callee answered by another service, namespaces, no edge
// within one service or in the reverse direction; the call's operation,
// duration and the source's attributes as conditions; status on top; and
// MatchedSpan naming the call.
func TestEdgeSearch(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	for i, tr := range edgeTraces {
		base := t0.Add(time.Duration(i) * time.Second)
		var rs []*tracepb.ResourceSpans
		for _, sp := range tr.spans {
			start := base.Add(time.Duration(sp.id) * time.Millisecond)
			p := &tracepb.Span{
				TraceId: otlptest.TraceID(uint64(i + 1)), SpanId: otlptest.SpanID(uint64(100*(i+1)) + sp.id),
				Name: sp.name, Kind: sp.kind,
				StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(sp.dur).UnixNano()),
			}
			if sp.parent != 0 {
				p.ParentSpanId = otlptest.SpanID(uint64(100*(i+1)) + sp.parent)
			}
			if sp.err {
				p.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
			}
			for k, v := range sp.attrs {
				p.Attributes = append(p.Attributes, otlptest.Str(k, v))
			}
			res := []*commonpb.KeyValue{otlptest.Str("service.name", sp.svc)}
			if sp.ns != "" {
				res = append(res, otlptest.Str("service.namespace", sp.ns))
			}
			rs = append(rs, &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: res},
				ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{p}}}})
		}
		b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := db.WriteTraces(context.Background(), b); err != nil || res.Rejected != 0 {
			t.Fatalf("write %s: %v %+v", tr.name, err, res)
		}
		if i == 3 { // half persisted, half in memory
			if err := db.checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// match is a fixture trace and the span (its ID within the trace)
	// expected as MatchedSpan.
	type match struct {
		trace string
		span  uint64
	}
	cases := []struct {
		name string
		q    TraceQuery
		want []match // any order
	}{
		{"frontend → cart", TraceQuery{Source: "frontend", Target: "cart"},
			[]match{{"client-server", 2}, {"uninstrumented caller", 2}, {"namespaced", 2}, {"failing call", 2}}},
		{"operation of the call", TraceQuery{Source: "frontend", Target: "cart", Operation: "GET /cart"},
			[]match{{"client-server", 2}, {"namespaced", 2}, {"failing call", 2}}},
		{"operation of an uninstrumented caller's call is the server's", TraceQuery{Source: "frontend", Target: "cart", Operation: "GET /items"},
			[]match{{"uninstrumented caller", 2}}},
		{"duration of the call", TraceQuery{Source: "frontend", Target: "cart", MinDuration: 35 * time.Millisecond, MaxDuration: 79 * time.Millisecond},
			[]match{{"client-server", 2}}},
		{"status error", TraceQuery{Source: "frontend", Target: "cart", Status: TraceStatusError}, []match{{"failing call", 2}}},
		{"status ok", TraceQuery{Source: "frontend", Target: "cart", Status: TraceStatusOK},
			[]match{{"client-server", 2}, {"uninstrumented caller", 2}, {"namespaced", 2}}},
		{"attribute of the source's span", TraceQuery{Source: "frontend", Target: "cart", Attributes: map[string]string{"http.route": "/cart"}},
			[]match{{"failing call", 2}}},
		{"virtual callee", TraceQuery{Source: "frontend", Target: "redis"}, []match{{"virtual callee", 2}}},
		{"a lower-priority name is not the callee", TraceQuery{Source: "frontend", Target: "10.0.0.9"}, nil},
		{"the answering service is the callee", TraceQuery{Source: "frontend", Target: "checkout"}, []match{{"named callee answered by another", 2}}},
		{"the named service is not", TraceQuery{Source: "frontend", Target: "cart", Operation: "POST /pay"}, nil},
		{"namespaced IDs", TraceQuery{Source: "shop/frontend", Target: "shop/cart"}, []match{{"namespaced", 2}}},
		{"mixed ID and plain name", TraceQuery{Source: "shop/frontend", Target: "cart"}, []match{{"namespaced", 2}}},
		{"another namespace", TraceQuery{Source: "other/frontend", Target: "cart"}, nil},
		{"within one service", TraceQuery{Source: "cart", Target: "cart"}, nil},
		{"reverse direction", TraceQuery{Source: "cart", Target: "frontend"}, []match{{"reverse direction", 2}}},
		{"limit", TraceQuery{Source: "frontend", Target: "cart", Limit: 1}, []match{{"failing call", 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			if q.Limit == 0 {
				q.Limit = MaxSearchLimit
			}
			got, err := db.FindTraces(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			var gotS, wantS []string
			for _, s := range got {
				gotS = append(gotS, s.TraceID.String()+"/"+hex.EncodeToString(s.MatchedSpan[:]))
			}
			for _, m := range tc.want {
				i := edgeTraceID(t, m.trace)
				var id TraceID
				copy(id[:], otlptest.TraceID(i))
				wantS = append(wantS, id.String()+"/"+hex.EncodeToString(otlptest.SpanID(100*i+m.span)))
			}
			slices.Sort(gotS)
			slices.Sort(wantS)
			if !slices.Equal(gotS, wantS) {
				t.Errorf("traces/matched span = %v\nwant %v", gotS, wantS)
			}
		})
	}
}

// TestSearchMatchedSpan checks that a plain search names the span that
// matched: the cart server span of a search by service cart.
func TestSearchMatchedSpan(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	tr := edgeTraces[0]
	var rs []*tracepb.ResourceSpans
	for _, sp := range tr.spans {
		p := &tracepb.Span{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(100 + sp.id), Name: sp.name, Kind: sp.kind,
			StartTimeUnixNano: uint64(t0.UnixNano()), EndTimeUnixNano: uint64(t0.Add(sp.dur).UnixNano())}
		if sp.parent != 0 {
			p.ParentSpanId = otlptest.SpanID(100 + sp.parent)
		}
		rs = append(rs, &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", sp.svc)}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{p}}}})
	}
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteTraces(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    TraceQuery
		want uint64
	}{
		{TraceQuery{Service: "cart"}, 103},
		{TraceQuery{Service: "frontend", Operation: "GET /cart"}, 102},
		{TraceQuery{Service: "cart", Status: TraceStatusOK}, 103},
	} {
		got, err := db.FindTraces(context.Background(), tc.q)
		if err != nil || len(got) != 1 {
			t.Fatalf("%+v: %v %v", tc.q, got, err)
		}
		if m := got[0].MatchedSpan; string(m[:]) != string(otlptest.SpanID(tc.want)) {
			t.Errorf("%+v: MatchedSpan %x, want %x", tc.q, m, otlptest.SpanID(tc.want))
		}
	}
}
