package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// callRequest builds one request of spans of service svc. Client i (trace
// i, span 10·i) of frontend calls cart with peer.service = cart and lasts
// i·10 ms; server i (span 10·i+1, child of client i) runs in cart.
func callRequest(t *testing.T, svc string, kind tracepb.Span_SpanKind, ids ...int) []byte {
	t.Helper()
	ss := &tracepb.ScopeSpans{}
	for _, i := range ids {
		start := uint64(t0.UnixNano()) + uint64(i)*uint64(time.Millisecond)
		sp := &tracepb.Span{TraceId: otlptest.TraceID(uint64(i)), Name: "GET /cart", Kind: kind}
		if kind == tracepb.Span_SPAN_KIND_CLIENT {
			sp.SpanId = otlptest.SpanID(uint64(10 * i))
			sp.StartTimeUnixNano, sp.EndTimeUnixNano = start, start+uint64(i)*10*uint64(time.Millisecond)
			sp.Attributes = []*commonpb.KeyValue{otlptest.Str("peer.service", "cart")}
		} else {
			sp.SpanId, sp.ParentSpanId = otlptest.SpanID(uint64(10*i+1)), otlptest.SpanID(uint64(10*i))
			sp.StartTimeUnixNano, sp.EndTimeUnixNano = start+uint64(time.Millisecond), start+2*uint64(time.Millisecond)
		}
		ss.Spans = append(ss.Spans, sp)
	}
	b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", svc)}},
		ScopeSpans: []*tracepb.ScopeSpans{ss},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProvisionalCallsStore checks, through FlowGraph and Latency, that a
// client span naming its callee is a call as soon as it is acknowledged,
// that a server half arriving later moves it to the paired edge without
// double counting, that expiry makes it a persisted virtual call with the
// same counts, and that a crash at every stage gives the same answer.
func TestProvisionalCallsStore(t *testing.T) {
	type want struct {
		calls, prov int64 // edge frontend → cart (virtual and paired calls merge at service level)
		virtual     bool  // the edge is virtual (cart has no span of its own yet)
		p100        time.Duration
	}
	now := t0.Add(time.Second)
	dir := t.TempDir()
	db := openAgg(t, dir, &now)
	check := func(phase string, w want) {
		t.Helper()
		g, err := db.FlowGraph(context.Background(), t0.Add(-time.Minute), t0.Add(time.Minute), aggregate.GraphQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range g.Edges {
			got = append(got, fmt.Sprintf("%s->%s calls=%d prov=%d virtual=%v", e.Source, e.Target, e.Calls.Count, e.Provisional, e.Virtual))
		}
		wantEdge := fmt.Sprintf("frontend->cart calls=%d prov=%d virtual=%v", w.calls, w.prov, w.virtual)
		if len(got) != 1 || got[0] != wantEdge {
			t.Errorf("%s: flow graph edges %q, want [%s]", phase, got, wantEdge)
		}
		for _, q := range []aggregate.LatencyQuery{{Source: "frontend", Target: "cart"}, {Source: "frontend", Target: "cart", Step: 60}} {
			l, err := db.Latency(context.Background(), t0.Add(-time.Minute), t0.Add(time.Minute), q)
			if err != nil {
				t.Fatal(err)
			}
			max := time.Duration(l.Total.Hist.ValueAtPercentile(100)).Round(time.Millisecond)
			if l.Total.Count != w.calls || l.Total.Hist.TotalCount() != w.calls || l.Provisional != w.prov || max != w.p100 {
				t.Errorf("%s: latency %+v: count %d (hist %d), provisional %d, max %v; want %d, %d, %v",
					phase, q, l.Total.Count, l.Total.Hist.TotalCount(), l.Provisional, max, w.calls, w.prov, w.p100)
			}
		}
	}
	write := func(b []byte) {
		t.Helper()
		if res, err := db.WriteTraces(context.Background(), b); err != nil || res.Rejected != 0 {
			t.Fatalf("write: %v %+v", err, res)
		}
	}
	restart := func(phase string, w want) {
		t.Helper()
		crash(db)
		db = openAgg(t, dir, &now)
		check(phase+", after a crash", w)
	}
	allProv := want{calls: 5, prov: 5, virtual: true, p100: 50 * time.Millisecond}
	paired2 := want{calls: 5, prov: 3, p100: 50 * time.Millisecond}
	expired := want{calls: 5, prov: 0, p100: 50 * time.Millisecond}

	write(callRequest(t, "frontend", tracepb.Span_SPAN_KIND_CLIENT, 1, 2, 3, 4, 5))
	check("clients acknowledged", allProv)
	restart("clients acknowledged", allProv)
	if err := db.flushRollups(true); err != nil {
		t.Fatal(err)
	}
	check("flushed", allProv)
	restart("flushed", allProv)

	now = now.Add(time.Second)
	write(callRequest(t, "cart", tracepb.Span_SPAN_KIND_SERVER, 1, 2))
	check("two servers paired", paired2)
	restart("two servers paired", paired2)
	if err := db.flushRollups(true); err != nil {
		t.Fatal(err)
	}
	check("two servers paired, flushed", paired2)
	restart("two servers paired, flushed", paired2)

	now = now.Add(10 * time.Second) // past the edge wait of the clients
	check("edge wait over, not expired yet", paired2)
	if err := db.flushRollups(true); err != nil {
		t.Fatal(err)
	}
	check("expired", expired)
	restart("expired", expired)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAgg(t, dir, &now)
	check("reopened", expired)
}
