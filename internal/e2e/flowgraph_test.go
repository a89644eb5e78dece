package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// flowGraph is the JSON of /api/v1/flowgraph.
type flowGraph struct {
	Nodes []struct {
		ID          string
		Virtual     bool
		RequestRate float64
		ErrorRate   float64
	}
	Edges []struct {
		Source, Target string
		Virtual        bool
		Calls, Errors  float64
		Latency        map[string]float64
	}
}

func getFlowGraph(t *testing.T, s *server, query string) flowGraph {
	t.Helper()
	code, body := s.get(t, "/api/v1/flowgraph?"+query)
	if code != 200 {
		t.Fatalf("flowgraph: %d %s", code, body)
	}
	var g flowGraph
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return g
}

type spanOf struct {
	res  *resourcepb.Resource
	span *tracepb.Span
}

// TestFlowGraphTopology generates a topology of 50 services with known call
// counts, sends every call as client and server halves in separate,
// shuffled requests, and checks that the flow graph equals the topology
// with exact call counts, that isolated services appear, that an
// uninstrumented database becomes a virtual node, that errors propagate,
// and that the instance, zone and region levels group as configured.
func TestFlowGraphTopology(t *testing.T) {
	// The edge wait outlasts the delays of a loaded machine (a client half
	// that waits longer is counted unpaired); the virtual edge takes as long.
	s := startServer(t, "", func(c *config.Config) { c.Aggregation.EdgeWait = 3 * time.Second })
	r := rand.New(rand.NewPCG(11, 12))
	const nsvc = 50
	svc := func(i int) string { return fmt.Sprintf("svc-%02d", i) }
	zoneOf := func(i int) string { return []string{"zone-a", "zone-b", "zone-c"}[i%3] }
	regionOf := func(i int) string { return []string{"us-east-1", "eu-west-1"}[i%2] }
	resources := map[int]*resourcepb.Resource{}
	res := func(i int) *resourcepb.Resource {
		if resources[i] == nil {
			resources[i] = &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				otlptest.Str("service.name", svc(i)), otlptest.Str("service.instance.id", fmt.Sprintf("%s-i%d", svc(i), i%2)),
				otlptest.Str("cloud.availability_zone", zoneOf(i)), otlptest.Str("cloud.region", regionOf(i)),
			}}
		}
		return resources[i]
	}
	// Topology: every service j ≥ 1 is called by 1–3 services below it; the
	// last five services are isolated (internal spans only).
	type edge struct{ from, to, calls, errors int }
	var edges []edge
	for j := 1; j < nsvc-5; j++ {
		callers := map[int]bool{}
		for k := 0; k < 1+r.IntN(3); k++ {
			callers[r.IntN(j)] = true
		}
		for i := range callers {
			calls := 1 + r.IntN(20)
			edges = append(edges, edge{i, j, calls, r.IntN(calls/3 + 1)})
		}
	}
	now := time.Now().Add(-time.Minute)
	var halves []spanOf
	var n uint64
	want := map[string][2]int{}
	for _, e := range edges {
		want[svc(e.from)+"->"+svc(e.to)] = [2]int{e.calls, e.errors}
		for c := 0; c < e.calls; c++ {
			n++
			tid, cid, sid := otlptest.TraceID(n), otlptest.SpanID(2*n), otlptest.SpanID(2*n+1)
			st := uint64(now.Add(time.Duration(n) * time.Millisecond).UnixNano())
			client := &tracepb.Span{TraceId: tid, SpanId: cid, Name: "call", Kind: tracepb.Span_SPAN_KIND_CLIENT,
				StartTimeUnixNano: st, EndTimeUnixNano: st + 3e6}
			server := &tracepb.Span{TraceId: tid, SpanId: sid, ParentSpanId: cid, Name: "handle", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: st + 5e5, EndTimeUnixNano: st + 25e5}
			if c < e.errors { // errors on the server side must propagate to the edge
				server.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
			}
			halves = append(halves, spanOf{res(e.from), client}, spanOf{res(e.to), server})
		}
	}
	for i := nsvc - 5; i < nsvc; i++ {
		n++
		st := uint64(now.UnixNano())
		halves = append(halves, spanOf{res(i), &tracepb.Span{TraceId: otlptest.TraceID(n), SpanId: otlptest.SpanID(2 * n),
			Name: "cron", Kind: tracepb.Span_SPAN_KIND_INTERNAL, StartTimeUnixNano: st, EndTimeUnixNano: st + 1e6}})
	}
	// A database nobody instruments: client spans only, named by db.* attributes.
	for k := 0; k < 7; k++ {
		n++
		st := uint64(now.UnixNano())
		halves = append(halves, spanOf{res(3), &tracepb.Span{TraceId: otlptest.TraceID(n), SpanId: otlptest.SpanID(2 * n),
			Name: "SELECT orders", Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: st, EndTimeUnixNano: st + 2e6,
			Attributes: []*commonpb.KeyValue{otlptest.Str("db.system", "postgresql"), otlptest.Str("db.name", "orders")}}})
	}
	r.Shuffle(len(halves), func(i, j int) { halves[i], halves[j] = halves[j], halves[i] })

	conn, err := grpc.NewClient(s.addrs.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	for i := 0; i < len(halves); i += 37 {
		req := &coltracepb.ExportTraceServiceRequest{}
		for _, h := range halves[i:min(i+37, len(halves))] {
			req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{Resource: h.res,
				ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{h.span}}}})
		}
		if _, err := client.Export(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}

	q := fmt.Sprintf("level=service&start=%d", now.Add(-time.Minute).UnixMilli())
	// Paired edges are visible at once; the virtual edge after the edge wait.
	deadline := time.Now().Add(10 * time.Second)
	var g flowGraph
	for {
		g = getFlowGraph(t, s, q)
		// The virtual calls' client spans expire one commit batch at a
		// time: wait for all of them.
		virtual := 0.0
		for _, e := range g.Edges {
			if e.Virtual {
				virtual += e.Calls
			}
		}
		if virtual >= 7 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := map[string][2]int{}
	for _, e := range g.Edges {
		if e.Virtual {
			if e.Source != "svc-03" || e.Target != "orders" || e.Calls != 7 {
				t.Errorf("virtual edge %+v", e)
			}
			continue
		}
		got[e.Source+"->"+e.Target] = [2]int{int(e.Calls), int(e.Errors)}
		if e.Latency["p50"] < 2.9e6 || e.Latency["p50"] > 3.1e6 {
			t.Errorf("edge %s->%s p50 %v, want the client duration 3ms", e.Source, e.Target, e.Latency["p50"])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d edges, want %d", len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("edge %s: calls/errors %v, want %v", k, got[k], w)
		}
	}
	nodes := map[string]bool{}
	for _, nd := range g.Nodes {
		nodes[nd.ID] = true
		if nd.ID == "orders" && !nd.Virtual {
			t.Errorf("orders is not virtual")
		}
	}
	for i := 0; i < nsvc; i++ {
		if !nodes[svc(i)] {
			t.Errorf("service %s missing from the nodes", svc(i))
		}
	}
	if !nodes["orders"] {
		t.Errorf("virtual node orders missing")
	}

	// Coarser levels: edge counts sum up per (zone, zone) and (region, region).
	for _, lv := range []struct {
		level string
		of    func(int) string
	}{{"zone", zoneOf}, {"region", regionOf}, {"instance", func(i int) string { return fmt.Sprintf("%s-i%d", svc(i), i%2) }}} {
		wantL := map[string]int{}
		for _, e := range edges {
			wantL[lv.of(e.from)+"->"+lv.of(e.to)] += e.calls
		}
		gl := getFlowGraph(t, s, fmt.Sprintf("level=%s&start=%d", lv.level, now.Add(-time.Minute).UnixMilli()))
		gotL := map[string]int{}
		for _, e := range gl.Edges {
			if !e.Virtual {
				gotL[e.Source+"->"+e.Target] = int(e.Calls)
			}
		}
		if fmt.Sprint(gotL) != fmt.Sprint(wantL) {
			t.Errorf("level %s: edges %v\nwant %v", lv.level, gotL, wantL)
		}
	}
}
