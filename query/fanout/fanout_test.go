package fanout_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/jsondiff"
	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/query"
	"github.com/flowscope/flowscope/query/fanout"
	"github.com/flowscope/flowscope/query/jaegerapi"
	"github.com/flowscope/flowscope/query/zipkinapi"
	"github.com/flowscope/flowscope/store"
)

// cluster is one store holding everything and three holding it split by
// trace ID, as the load-balancing exporter splits it, with the query
// API of the single store and of a front end over the three.
type cluster struct {
	single   *store.DB
	nodes    []*store.DB
	peers    []*httptest.Server
	singleGW *httptest.Server
	frontGW  *httptest.Server
	top      *otlptest.Topology
	start    time.Time
	end      time.Time
}

func openStore(t testing.TB) *store.DB {
	t.Helper()
	opts := store.DefaultOptions()
	opts.Aggregation.PairWait = 200 * time.Millisecond
	db, err := store.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// owner is the node of a trace (any stable function of the trace ID
// pairs every edge on one node, as the exporter's hash ring does).
func owner(tid []byte, n int) int {
	h := fnv.New32a()
	h.Write(tid)
	return int(h.Sum32() % uint32(n))
}

// split divides req's resource spans by the owner of their trace.
func split(req *coltracepb.ExportTraceServiceRequest, n int) []*coltracepb.ExportTraceServiceRequest {
	out := make([]*coltracepb.ExportTraceServiceRequest, n)
	for i := range out {
		out[i] = &coltracepb.ExportTraceServiceRequest{}
	}
	for _, rs := range req.ResourceSpans {
		o := owner(rs.ScopeSpans[0].Spans[0].TraceId, n)
		out[o].ResourceSpans = append(out[o].ResourceSpans, rs)
	}
	return out
}

func write(t testing.TB, db *store.DB, req *coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	if len(req.ResourceSpans) == 0 {
		return
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.WriteTraces(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func gateway(t testing.TB, st query.Store) *httptest.Server {
	t.Helper()
	gw, err := query.NewGatewayHandler(context.Background(), query.NewService(st, query.ServiceOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fanout.Middleware(gw))
	t.Cleanup(srv.Close)
	return srv
}

type staticPeers []string

func (p staticPeers) Current() []string { return p }

func newCluster(t testing.TB, traces int) *cluster {
	t.Helper()
	c := &cluster{single: openStore(t)}
	now := time.Now().Truncate(10 * time.Second)
	c.start = now.Add(-20 * time.Minute)
	c.end = now.Add(time.Minute)
	c.top = otlptest.GenerateTopology(otlptest.TopologyOptions{Traces: traces, Start: now.Add(-10 * time.Minute),
		Step: 9 * time.Minute / time.Duration(traces), Seed: 3})
	var urls []string
	for range 3 {
		db := openStore(t)
		c.nodes = append(c.nodes, db)
		srv := httptest.NewServer(fanout.NewPeerHandler(fanout.PeerOptions{Source: db, Geometry: db.Geometry(), Node: "n"}))
		t.Cleanup(srv.Close)
		c.peers = append(c.peers, srv)
		urls = append(urls, srv.URL)
	}
	for _, req := range c.top.Requests {
		write(t, c.single, req)
		for i, part := range split(req, 3) {
			write(t, c.nodes[i], part)
		}
	}
	// Settled: no call is provisional any more (the pair wait has passed
	// and the aggregation has caught up), on any store.
	deadline := time.Now().Add(30 * time.Second)
	for _, db := range append([]*store.DB{c.single}, c.nodes...) {
		for {
			g, err := db.FlowGraph(context.Background(), c.start, c.end, aggregate.GraphQuery{})
			if err != nil {
				t.Fatal(err)
			}
			provisional := int64(0)
			for _, e := range g.Edges {
				provisional += e.Provisional
			}
			if provisional == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls still provisional after 30 s", provisional)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	c.singleGW = gateway(t, c.single)
	c.frontGW = gateway(t, fanout.New(fanout.Options{Peers: staticPeers(urls), Local: c.single, Timeout: 5 * time.Second}))
	return c
}

func get(t testing.TB, base, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// paths returns the API requests compared between the single node and
// the front end.
func (c *cluster) paths() []string {
	rng := fmt.Sprintf("start=%d&end=%d", c.start.UnixMilli(), c.end.UnixMilli())
	ps := []string{
		"/api/v1/services?" + rng,
		"/api/v1/services/checkout/operations",
		"/api/v1/services/frontend/operations",
		"/api/v1/flowgraph?" + rng,
		"/api/v1/flowgraph?level=instance&" + rng,
		"/api/v1/flowgraph?level=zone&" + rng,
		"/api/v1/flowgraph?operation=GET%20%2Fcheckout&" + rng,
		"/api/v1/latency?service=frontend&" + rng,
		"/api/v1/latency?service=payments&operation=payments%2FCharge&" + rng,
		"/api/v1/latency?source=cart&target=postgres&" + rng,
		"/api/v1/latency?source=payments&target=stripe&step=1m&" + rng,
		"/api/v1/latency?service=checkout&kind=client&step=30s&" + rng,
		"/api/v1/traces?service=frontend&limit=15&" + rng,
		"/api/v1/traces?service=payments&status=error&limit=1000&" + rng,
		"/api/v1/traces?service=cart&min_duration=40ms&limit=1000&" + rng,
		"/api/v1/traces?source=checkout&target=payments&limit=7&" + rng,
		"/api/v1/traces/" + c.top.TraceIDs[0],
		"/api/v1/traces/" + c.top.TraceIDs[len(c.top.TraceIDs)/2],
		"/api/v1/traces/00000000000000000000000000000abc",
		"/api/v1/correlations/" + url.PathEscape(c.top.Correlations[0]),
		"/api/v1/correlations/" + url.PathEscape(c.top.Correlations[len(c.top.Correlations)-1]),
		"/api/v1/lint?" + rng,
	}
	return ps
}

func TestFrontEndEqualsSingleNode(t *testing.T) {
	c := newCluster(t, 600)
	for _, p := range c.paths() {
		sc, _, sb := get(t, c.singleGW.URL, p)
		fc, fh, fb := get(t, c.frontGW.URL, p)
		if sc != fc {
			t.Errorf("%s: status %d on the front end, %d on one node: %s", p, fc, sc, fb)
			continue
		}
		if want := http.StatusOK; strings.HasSuffix(p, "abc") {
			if sc != http.StatusNotFound {
				t.Errorf("%s: status %d, want 404", p, sc)
			}
		} else if sc != want || len(sb) < 100 {
			t.Errorf("%s: status %d, %d bytes, want 200 and an answer with data: %s", p, sc, len(sb), sb)
		}
		if fh.Get(fanout.HeaderPartial) != "" {
			t.Errorf("%s: marked partial: %s", p, fh.Get(fanout.HeaderMissingPeers))
		}
		if diff := jsondiff.Diff(sb, fb, 8); diff != "" {
			t.Errorf("%s: the front end's answer differs from one node's:\n%s", p, diff)
		}
	}
}

// TestPartialAnswers stops one peer: every answer is marked partial and
// names it, alert-style Strict queries fail, and once the peer is back the
// answers are complete and equal one node's again.
func TestPartialAnswers(t *testing.T) {
	c := newCluster(t, 300)
	down := c.peers[1]
	addr := down.Listener.Addr().String()
	down.Close() // refuses connections, as a killed node does
	rng := fmt.Sprintf("start=%d&end=%d", c.start.UnixMilli(), c.end.UnixMilli())
	for _, p := range []string{"/api/v1/services?" + rng, "/api/v1/flowgraph?" + rng, "/api/v1/traces?service=frontend&" + rng,
		"/api/v1/latency?service=frontend&" + rng} {
		code, h, body := get(t, c.frontGW.URL, p)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", p, code, body)
		}
		if h.Get(fanout.HeaderPartial) != "true" || h.Get(fanout.HeaderMissingPeers) != down.URL {
			t.Errorf("%s: headers %s=%q %s=%q, want true and %s", p, fanout.HeaderPartial, h.Get(fanout.HeaderPartial),
				fanout.HeaderMissingPeers, h.Get(fanout.HeaderMissingPeers), down.URL)
		}
		var doc struct {
			Partial      bool     `json:"partial"`
			MissingPeers []string `json:"missingPeers"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !doc.Partial || len(doc.MissingPeers) != 1 || doc.MissingPeers[0] != down.URL {
			t.Errorf("%s: partial=%v missingPeers=%v, want true [%s]", p, doc.Partial, doc.MissingPeers, down.URL)
		}
	}
	// The answer holds the others' data: fewer spans than one node has.
	st := fanout.New(fanout.Options{Peers: staticPeers{c.peers[0].URL, down.URL, c.peers[2].URL}, Local: c.single, Timeout: time.Second})
	ctx, tr := fanout.WithTracker(context.Background())
	svcs, err := st.Services(ctx, c.start, c.end)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Missing(); len(got) != 1 || got[0] != down.URL {
		t.Errorf("tracker: missing %v, want [%s]", got, down.URL)
	}
	var spans, all int64
	for _, s := range svcs {
		spans += s.SpanCount
	}
	full, err := c.single.Services(context.Background(), c.start, c.end)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range full {
		all += s.SpanCount
	}
	if spans == 0 || spans >= all {
		t.Errorf("partial answer counts %d spans, want some but fewer than %d", spans, all)
	}
	if _, err := st.FlowGraph(fanout.Strict(context.Background()), c.start, c.end, aggregate.GraphQuery{}); !errors.Is(err, fanout.ErrPeersUnavailable) {
		t.Errorf("strict query with a peer down: err = %v, want ErrPeersUnavailable", err)
	}

	// The node comes back on its address with its data.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	back := &httptest.Server{Listener: l, Config: &http.Server{Handler: fanout.NewPeerHandler(fanout.PeerOptions{Source: c.nodes[1], Geometry: c.nodes[1].Geometry()})}}
	back.Start()
	t.Cleanup(back.Close)
	for _, p := range c.paths() {
		_, _, sb := get(t, c.singleGW.URL, p)
		_, fh, fb := get(t, c.frontGW.URL, p)
		if fh.Get(fanout.HeaderPartial) != "" {
			t.Errorf("%s: still partial after the peer is back", p)
		}
		if diff := jsondiff.Diff(sb, fb, 8); diff != "" {
			t.Errorf("%s: after the peer is back, the answer differs from one node's:\n%s", p, diff)
		}
	}
}

// TestNoPeerAnswers: when no peer answers, the query fails as unavailable
// and names the peers.
func TestNoPeerAnswers(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	dead := srv.URL
	srv.Close()
	st := fanout.New(fanout.Options{Peers: staticPeers{dead}, Local: openStore(t), Timeout: time.Second})
	_, err := st.Services(context.Background(), time.Now().Add(-time.Hour), time.Now())
	if !errors.Is(err, fanout.ErrPeersUnavailable) || !strings.Contains(err.Error(), dead) {
		t.Errorf("err = %v, want ErrPeersUnavailable naming %s", err, dead)
	}
	gw := gateway(t, st)
	code, _, body := get(t, gw.URL, "/api/v1/services")
	if code != http.StatusServiceUnavailable {
		t.Errorf("REST status %d, want 503: %s", code, body)
	}
}

// TestSpanFilterSearch compares a search with a span filter (as the
// compatibility APIs make) on the front end and on one node.
func TestSpanFilterSearch(t *testing.T) {
	c := newCluster(t, 300)
	st := fanout.New(fanout.Options{Peers: staticPeers{c.peers[0].URL, c.peers[1].URL, c.peers[2].URL}, Local: c.single})
	filters := map[string]func(store.SpanView) bool{
		"error status": func(v store.SpanView) bool { return v.Span.GetStatus().GetCode() == 2 },
		"route attribute": func(v store.SpanView) bool {
			for _, kv := range v.Span.GetAttributes() {
				if kv.GetKey() == "http.route" && kv.GetValue().GetStringValue() == "/catalog" {
					return true
				}
			}
			return false
		},
	}
	for name, f := range filters {
		for _, limit := range []int{5, 1000} {
			q := store.TraceQuery{Service: "frontend", Start: c.start, End: c.end, SpanFilter: f, Limit: limit}
			want, err := c.single.FindTraces(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.FindTraces(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 {
				t.Fatalf("%s: no match on one node", name)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s, limit %d: front end found %d traces, one node %d:\n%v\n%v", name, limit, len(got), len(want), got, want)
			}
		}
	}
}

// TestCompatibilityAPIsOverFrontEnd compares the Jaeger and Zipkin query
// APIs answered from the front end's merged view with the same APIs over
// one node, tag and annotation searches (span filters) included.
func TestCompatibilityAPIsOverFrontEnd(t *testing.T) {
	c := newCluster(t, 400)
	front := fanout.New(fanout.Options{Peers: staticPeers{c.peers[0].URL, c.peers[1].URL, c.peers[2].URL}, Local: c.single})
	now := func() time.Time { return c.end }
	serve := func(h http.Handler) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	jOne := serve(jaegerapi.NewHandler(jaegerapi.Options{Store: c.single, Now: now}))
	jFront := serve(jaegerapi.NewHandler(jaegerapi.Options{Store: front, Now: now}))
	zOne := serve(zipkinapi.NewHandler(zipkinapi.Options{Store: c.single, Now: now}))
	zFront := serve(zipkinapi.NewHandler(zipkinapi.Options{Store: front, Now: now}))
	startUs, endUs := c.start.UnixMicro(), c.end.UnixMicro()
	endMs, lookbackMs := c.end.UnixMilli(), c.end.Sub(c.start).Milliseconds()
	cases := []struct{ one, front, path string }{
		{jOne, jFront, "/api/services"},
		{jOne, jFront, "/api/operations?service=checkout"},
		{jOne, jFront, fmt.Sprintf("/api/traces?service=frontend&limit=10&start=%d&end=%d", startUs, endUs)},
		{jOne, jFront, fmt.Sprintf("/api/traces?service=payments&tags=%s&limit=50&start=%d&end=%d", url.QueryEscape(`{"error":"true"}`), startUs, endUs)},
		{jOne, jFront, fmt.Sprintf("/api/traces?service=frontend&tag=http.route:/catalog&limit=5&start=%d&end=%d", startUs, endUs)},
		{jOne, jFront, "/api/traces/" + c.top.TraceIDs[7]},
		{jOne, jFront, fmt.Sprintf("/api/dependencies?endTs=%d&lookback=%d", endMs, lookbackMs)},
		{zOne, zFront, "/api/v2/services"},
		{zOne, zFront, "/api/v2/spans?serviceName=cart"},
		{zOne, zFront, "/api/v2/remoteServices?serviceName=payments"},
		{zOne, zFront, fmt.Sprintf("/api/v2/traces?serviceName=checkout&limit=10&endTs=%d&lookback=%d", endMs, lookbackMs)},
		{zOne, zFront, fmt.Sprintf("/api/v2/traces?annotationQuery=error&limit=100&endTs=%d&lookback=%d", endMs, lookbackMs)},
		{zOne, zFront, "/api/v2/trace/" + c.top.TraceIDs[11]},
		{zOne, zFront, fmt.Sprintf("/api/v2/dependencies?endTs=%d&lookback=%d", endMs, lookbackMs)},
	}
	for _, tc := range cases {
		sc, _, sb := get(t, tc.one, tc.path)
		fc, _, fb := get(t, tc.front, tc.path)
		if sc != http.StatusOK || fc != sc || len(sb) < 10 {
			t.Errorf("%s: status %d on the front end, %d on one node (%d bytes): %s", tc.path, fc, sc, len(sb), fb)
			continue
		}
		if diff := jsondiff.Diff(sb, fb, 8); diff != "" {
			t.Errorf("%s: the front end's answer differs from one node's:\n%s", tc.path, diff)
		}
	}
}
