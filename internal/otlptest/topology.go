package otlptest

import (
	"fmt"
	"math/rand/v2"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TopologyOptions shape GenerateTopology's traffic.
type TopologyOptions struct {
	// Traces is the number of traces; Start the first one's start and
	// Step the time between trace starts (default 1ms).
	Traces int
	Start  time.Time
	Step   time.Duration
	// PerRequest is how many traces one export request holds (default 10).
	PerRequest int
	// Seed makes the IDs and the durations; equal options give equal
	// requests.
	Seed uint64
}

// Topology is a generated shop: its export requests and what they hold.
type Topology struct {
	Requests []*coltracepb.ExportTraceServiceRequest
	// Spans is the number of spans; TraceIDs the hex IDs of the traces,
	// in start order; Correlations the correlation IDs, each carried by
	// three consecutive traces.
	Spans        int
	TraceIDs     []string
	Correlations []string
}

// shopNode is a service instance of the generated shop.
type shopNode struct {
	service, instance, zone, region string
}

func (n shopNode) resource() *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
		Str("service.name", n.service), Str("service.instance.id", n.instance),
		Str("cloud.availability_zone", n.zone), Str("cloud.region", n.region),
	}}
}

// GenerateTopology builds the traffic of a small shop whose flow graph
// has every kind of node and edge: two kinds of trace, frontend →
// checkout → {cart → postgres, payments → stripe} and frontend → catalog
// → {postgres, redis}, over two instances per service in two zones;
// postgres, redis and stripe are not instrumented (virtual nodes, named
// by db.system, server.address and peer.service); postgres answers in
// two modes (a cache-warm 1–3 ms and a 40–60 ms tail of one call in
// ten), stripe in two (about 100 ms and about 300 ms); one payment in 25
// fails (its server span, the checkout's client span and the checkout
// with status ERROR) and one stripe call in 40 fails. Every trace's root
// carries correlation.id "order-K" shared by three consecutive traces,
// which the load-balancing exporter sends to different nodes.
func GenerateTopology(o TopologyOptions) *Topology {
	if o.Step == 0 {
		o.Step = time.Millisecond
	}
	if o.PerRequest <= 0 {
		o.PerRequest = 10
	}
	r := rand.New(rand.NewPCG(o.Seed, 19))
	top := &Topology{}
	var spanN uint64
	nextSpan := func() []byte { spanN++; return SpanID(spanN + o.Seed*100_000_000) }
	inst := func(svc string, i int) shopNode {
		zone := []string{"eu-west-1a", "eu-west-1b"}[i%2]
		return shopNode{svc, fmt.Sprintf("%s-%d", svc, i%2), zone, "eu-west-1"}
	}
	var req *coltracepb.ExportTraceServiceRequest
	for i := 0; i < o.Traces; i++ {
		if i%o.PerRequest == 0 {
			req = &coltracepb.ExportTraceServiceRequest{}
			top.Requests = append(top.Requests, req)
		}
		tid := TraceID(uint64(i) + o.Seed*1_000_000_000)
		top.TraceIDs = append(top.TraceIDs, fmt.Sprintf("%x", tid))
		corr := fmt.Sprintf("order-%d-%d", o.Seed, i/3)
		if i%3 == 0 {
			top.Correlations = append(top.Correlations, corr)
		}
		t0 := o.Start.Add(time.Duration(i) * o.Step)
		b := &traceBuilder{tid: tid, next: nextSpan, req: req}
		ms := func(lo, hi float64) time.Duration {
			return time.Duration((lo + r.Float64()*(hi-lo)) * float64(time.Millisecond))
		}
		fe := inst("frontend", i)
		if i%3 != 2 {
			// Checkout.
			payFails := r.IntN(25) == 0
			stripeFails := r.IntN(40) == 0
			dbDur := ms(1, 3)
			if r.IntN(10) == 0 {
				dbDur = ms(40, 60)
			}
			stripeDur := ms(90, 110)
			if r.IntN(3) == 0 {
				stripeDur = ms(280, 320)
			}
			cartDur := dbDur + ms(1, 2)
			payDur := stripeDur + ms(2, 4)
			coDur := cartDur + payDur + ms(3, 6)
			total := coDur + ms(2, 5)
			root := b.span(fe, nil, "GET /checkout", tracepb.Span_SPAN_KIND_SERVER, t0, total, payFails, Str("correlation.id", corr), Str("http.route", "/checkout"))
			cc := b.span(fe, root, "POST checkout/Place", tracepb.Span_SPAN_KIND_CLIENT, t0.Add(time.Millisecond), coDur, payFails)
			co := inst("checkout", i+1)
			cs := b.span(co, cc, "checkout/Place", tracepb.Span_SPAN_KIND_SERVER, t0.Add(time.Millisecond), coDur, payFails)
			cartC := b.span(co, cs, "GET cart/items", tracepb.Span_SPAN_KIND_CLIENT, t0.Add(2*time.Millisecond), cartDur, false)
			cart := inst("cart", i)
			cartS := b.span(cart, cartC, "cart/items", tracepb.Span_SPAN_KIND_SERVER, t0.Add(2*time.Millisecond), cartDur, false)
			b.span(cart, cartS, "SELECT cart_items", tracepb.Span_SPAN_KIND_CLIENT, t0.Add(2*time.Millisecond), dbDur, false,
				Str("db.system", "postgresql"), Str("server.address", "postgres"))
			at := t0.Add(2*time.Millisecond + cartDur)
			payC := b.span(co, cs, "POST payments/Charge", tracepb.Span_SPAN_KIND_CLIENT, at, payDur, payFails)
			pay := inst("payments", i+1)
			payS := b.span(pay, payC, "payments/Charge", tracepb.Span_SPAN_KIND_SERVER, at, payDur, payFails)
			b.span(pay, payS, "POST /v1/charges", tracepb.Span_SPAN_KIND_CLIENT, at.Add(time.Millisecond), stripeDur, stripeFails,
				Str("peer.service", "stripe"), Str("server.address", "api.stripe.com"))
		} else {
			// Catalog.
			dbDur := ms(1, 3)
			if r.IntN(10) == 0 {
				dbDur = ms(40, 60)
			}
			cacheDur := ms(0.2, 0.6)
			catDur := dbDur + cacheDur + ms(1, 2)
			total := catDur + ms(1, 3)
			root := b.span(fe, nil, "GET /catalog", tracepb.Span_SPAN_KIND_SERVER, t0, total, false, Str("correlation.id", corr), Str("http.route", "/catalog"))
			cc := b.span(fe, root, "GET catalog/list", tracepb.Span_SPAN_KIND_CLIENT, t0.Add(time.Millisecond), catDur, false)
			cat := inst("catalog", i)
			cs := b.span(cat, cc, "catalog/list", tracepb.Span_SPAN_KIND_SERVER, t0.Add(time.Millisecond), catDur, false)
			b.span(cat, cs, "GET", tracepb.Span_SPAN_KIND_CLIENT, t0.Add(time.Millisecond), cacheDur, false,
				Str("db.system", "redis"), Str("server.address", "redis"))
			b.span(cat, cs, "SELECT products", tracepb.Span_SPAN_KIND_CLIENT, t0.Add(time.Millisecond+cacheDur), dbDur, false,
				Str("db.system", "postgresql"), Str("server.address", "postgres"))
		}
		top.Spans += b.n
	}
	return top
}

// traceBuilder appends one trace's spans to an export request, one
// ResourceSpans per span's node.
type traceBuilder struct {
	tid  []byte
	next func() []byte
	req  *coltracepb.ExportTraceServiceRequest
	n    int
}

func (b *traceBuilder) span(n shopNode, parent *tracepb.Span, name string, kind tracepb.Span_SpanKind,
	start time.Time, dur time.Duration, fail bool, attrs ...*commonpb.KeyValue) *tracepb.Span {
	s := &tracepb.Span{
		TraceId: b.tid, SpanId: b.next(), Name: name, Kind: kind,
		StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(dur).UnixNano()),
		Attributes: attrs,
	}
	if parent != nil {
		s.ParentSpanId = parent.SpanId
	}
	if fail {
		s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "payment declined"}
	}
	b.req.ResourceSpans = append(b.req.ResourceSpans, &tracepb.ResourceSpans{
		Resource:   n.resource(),
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "shop", Version: "1.0"}, Spans: []*tracepb.Span{s}}},
	})
	b.n++
	return s
}
