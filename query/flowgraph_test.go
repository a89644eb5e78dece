package query

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
)

// getJSON GETs path from srv, checks the status, and decodes the JSON body
// into v.
func getJSON(t *testing.T, srvURL string, client *http.Client, path string, wantStatus int, v any) {
	t.Helper()
	resp, err := client.Get(srvURL + path)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// TestVizceralStructure checks the Vizceral documents recursively: every
// node has a name and a renderer, every connection a source, a target and
// metrics, and connections join nodes of the same level.
func TestVizceralStructure(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, path := range []string{
		"/api/v1/flowgraph?format=vizceral",
		"/api/v1/flowgraph?format=vizceral&level=region",
	} {
		t.Run(path, func(t *testing.T) {
			var doc map[string]any
			getJSON(t, srv.URL, srv.Client(), path, 200, &doc)
			if doc["renderer"] != "global" || doc["name"] != "edge" {
				t.Errorf("top level: renderer %v, name %v; want global, edge", doc["renderer"], doc["name"])
			}
			if n := checkVizceralNode(t, "top", doc); n < 3 {
				t.Errorf("only %d nodes in the document", n)
			}
		})
	}
}

// checkVizceralNode checks node (at path) and its children recursively and
// returns the number of nodes below it.
func checkVizceralNode(t *testing.T, path string, node map[string]any) int {
	t.Helper()
	name, ok := node["name"].(string)
	if !ok || name == "" {
		t.Errorf("%s: node without name: %v", path, node)
	}
	if r, ok := node["renderer"].(string); !ok || r == "" {
		t.Errorf("%s: node %q without renderer", path, name)
	}
	path += "/" + name
	names := make(map[string]bool)
	count := 0
	if raw, ok := node["nodes"]; ok {
		children, ok := raw.([]any)
		if !ok {
			t.Fatalf("%s: nodes is %T, want a list", path, raw)
		}
		for _, c := range children {
			child, ok := c.(map[string]any)
			if !ok {
				t.Fatalf("%s: node %v is not an object", path, c)
			}
			cn, _ := child["name"].(string)
			if names[cn] {
				t.Errorf("%s: node %q twice", path, cn)
			}
			names[cn] = true
			count += 1 + checkVizceralNode(t, path, child)
		}
	}
	if raw, ok := node["connections"]; ok {
		conns, ok := raw.([]any)
		if !ok {
			t.Fatalf("%s: connections is %T, want a list", path, raw)
		}
		for _, c := range conns {
			conn, ok := c.(map[string]any)
			if !ok {
				t.Fatalf("%s: connection %v is not an object", path, c)
			}
			src, _ := conn["source"].(string)
			dst, _ := conn["target"].(string)
			if src == "" || dst == "" {
				t.Errorf("%s: connection without source or target: %v", path, conn)
			}
			if !names[src] || !names[dst] {
				t.Errorf("%s: connection %s -> %s joins a node that is not in %v", path, src, dst, names)
			}
			m, ok := conn["metrics"].(map[string]any)
			if !ok {
				t.Errorf("%s: connection %s -> %s without metrics", path, src, dst)
				continue
			}
			for k, v := range m {
				if f, ok := v.(float64); !ok || f < 0 || math.IsNaN(f) {
					t.Errorf("%s: connection %s -> %s: metric %s = %v", path, src, dst, k, v)
				}
			}
		}
	}
	return count
}

// TestVizceralLayout checks where nodes and connections go.
func TestVizceralLayout(t *testing.T) {
	b, err := vizceralJSON(fixtureGraph(), aggregate.LevelService, testNow)
	if err != nil {
		t.Fatal(err)
	}
	var doc vizGraph
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	regions := make(map[string]*vizRegion)
	var order []string
	for _, r := range doc.Nodes {
		regions[r.Name] = r
		order = append(order, r.Name)
	}
	if want := []string{"INTERNET", "eu-west-1", "unknown", "us-east-1"}; !slices.Equal(order, want) {
		t.Fatalf("regions %v, want %v", order, want)
	}
	nodeNames := func(r *vizRegion) []string {
		var out []string
		for _, n := range r.Nodes {
			out = append(out, n.Name+":"+n.Class)
		}
		return out
	}
	connNames := func(cs []*vizConnection) []string {
		var out []string
		for _, c := range cs {
			out = append(out, fmt.Sprintf("%s>%s:%s", c.Source, c.Target, c.Class))
		}
		return out
	}
	for _, tt := range []struct {
		region string
		nodes  []string
		conns  []string
	}{
		{"INTERNET", nil, nil},
		{"eu-west-1", []string{"payments:danger"}, nil},
		{"unknown", []string{"reports:normal"}, nil},
		{
			"us-east-1",
			// postgres (virtual) is drawn where its caller is.
			[]string{"INTERNET:normal", "cart:normal", "checkout:normal", "frontend:warning", "postgres:normal"},
			// The self-call of checkout is left out; checkout -> payments
			// crosses regions.
			[]string{"INTERNET>frontend:warning", "checkout>postgres:normal", "frontend>cart:normal", "frontend>checkout:normal"},
		},
	} {
		r := regions[tt.region]
		if got := nodeNames(r); !slices.Equal(got, tt.nodes) {
			t.Errorf("region %s: nodes %v, want %v", tt.region, got, tt.nodes)
		}
		if got := connNames(r.Connections); !slices.Equal(got, tt.conns) {
			t.Errorf("region %s: connections %v, want %v", tt.region, got, tt.conns)
		}
		if r.Updated != testNow.UnixMilli() || r.Renderer != "region" {
			t.Errorf("region %s: updated %d, renderer %q", tt.region, r.Updated, r.Renderer)
		}
	}
	if got, want := connNames(doc.Connections), []string{"INTERNET>us-east-1:warning", "us-east-1>eu-west-1:danger"}; !slices.Equal(got, want) {
		t.Errorf("global connections %v, want %v", got, want)
	}
	if r := regions["eu-west-1"]; r.Class != "danger" {
		t.Errorf("eu-west-1 class %q, want danger (payments fails 10%%)", r.Class)
	}
	// frontend: 1200 requests in 60 s, 12 failed.
	in := doc.Connections[0].Metrics
	if in.Normal != 1188.0/60 || in.Danger != 12.0/60 {
		t.Errorf("INTERNET -> us-east-1 metrics %+v, want normal %v, danger %v", in, 1188.0/60, 12.0/60)
	}
	if doc.MaxVolume != 1200.0/60 {
		t.Errorf("global maxVolume %v, want %v", doc.MaxVolume, 1200.0/60)
	}
}

// TestFlowGraphValues checks rates, error rates and quantiles against the
// fixture's histograms.
func TestFlowGraphValues(t *testing.T) {
	svc := newTestService(newFakeStore())
	resp, err := svc.GetFlowGraph(t.Context(), &querypb.GetFlowGraphRequest{})
	if err != nil {
		t.Fatal(err)
	}
	g := fixtureGraph()
	if len(resp.Nodes) != len(g.Nodes) || len(resp.Edges) != len(g.Edges) {
		t.Fatalf("%d nodes and %d edges, want %d and %d", len(resp.Nodes), len(resp.Edges), len(g.Nodes), len(g.Edges))
	}
	wantSummary := func(h *hdr.PackedHistogram) *querypb.LatencySummary {
		d := hdr.New(fixtureLowest, fixtureHighest, fixtureDigits)
		h.MergeInto(d)
		return &querypb.LatencySummary{
			P50:        wrapperspb.Double(float64(d.ValueAtQuantile(50))),
			P90:        wrapperspb.Double(float64(d.ValueAtQuantile(90))),
			P99:        wrapperspb.Double(float64(d.ValueAtQuantile(99))),
			P999:       wrapperspb.Double(float64(d.ValueAtQuantile(99.9))),
			TimedCalls: float64(d.TotalCount()),
		}
	}
	for i, n := range resp.Nodes {
		gn := g.Nodes[i]
		if n.Id != gn.ID || n.Virtual != gn.Virtual || n.SpanCount != float64(gn.Spans) {
			t.Errorf("node %d = %v, want %s", i, n, gn.ID)
		}
		if want := float64(gn.Requests.Count) / 60; n.RequestRate != want {
			t.Errorf("node %s: requestRate %v, want %v", n.Id, n.RequestRate, want)
		}
		wantErr := 0.0
		if gn.Requests.Count > 0 {
			wantErr = float64(gn.Requests.Errors) / float64(gn.Requests.Count)
		}
		if n.ErrorRate != wantErr {
			t.Errorf("node %s: errorRate %v, want %v", n.Id, n.ErrorRate, wantErr)
		}
		if gn.Requests.Hist != nil {
			if want := wantSummary(gn.Requests.Hist); !equalSummary(n.Latency, want) {
				t.Errorf("node %s: latency %v, want %v", n.Id, n.Latency, want)
			}
		} else if !equalSummary(n.Latency, &querypb.LatencySummary{}) {
			t.Errorf("node %s without requests: latency %v", n.Id, n.Latency)
		}
	}
	for i, e := range resp.Edges {
		ge := g.Edges[i]
		if e.Source != ge.Source || e.Target != ge.Target || e.Virtual != ge.Virtual ||
			e.Calls != float64(ge.Calls.Count) || e.Errors != float64(ge.Calls.Errors) ||
			e.Rate != float64(ge.Calls.Count)/60 || e.ErrorRate != float64(ge.Calls.Errors)/float64(ge.Calls.Count) {
			t.Errorf("edge %d = %v, want %+v", i, e, ge)
		}
		if want := wantSummary(ge.Calls.Hist); !equalSummary(e.Latency, want) {
			t.Errorf("edge %s -> %s: latency %v, want %v", e.Source, e.Target, e.Latency, want)
		}
	}
}

func equalSummary(a, b *querypb.LatencySummary) bool {
	return proto.Equal(a, b)
}

// TestFlowGraphNoTime checks that a graph covering no time has zero rates
// rather than infinities.
func TestFlowGraphNoTime(t *testing.T) {
	g := fixtureGraph()
	g.Seconds = 0
	resp := flowGraphResponse(g)
	for _, n := range resp.Nodes {
		if n.RequestRate != 0 {
			t.Errorf("node %s: requestRate %v", n.Id, n.RequestRate)
		}
	}
	for _, e := range resp.Edges {
		if e.Rate != 0 {
			t.Errorf("edge %s -> %s: rate %v", e.Source, e.Target, e.Rate)
		}
	}
	if _, err := vizceralJSON(g, aggregate.LevelService, testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := vizceralJSON(&aggregate.Graph{}, aggregate.LevelZone, testNow); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayFlowGraphParameters checks what the REST parameters become in
// the store query.
func TestGatewayFlowGraphParameters(t *testing.T) {
	srv, st := newTestServer(t)
	var v map[string]any
	getJSON(t, srv.URL, srv.Client(), "/api/v1/flowgraph?level=zone&operation=GET+%2Fcart&start=1714557600000&end=2024-05-01T11:00:00Z", 200, &v)
	st.mu.Lock()
	q, start, end := st.lastGraph, st.lastStart, st.lastEnd
	st.mu.Unlock()
	if q != (aggregate.GraphQuery{Level: aggregate.LevelZone, Operation: "GET /cart"}) {
		t.Errorf("graph query %+v", q)
	}
	if !start.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) || !end.Equal(time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("range %v - %v", start, end)
	}

	for level, want := range map[string]aggregate.Level{
		"": aggregate.LevelService, "service": aggregate.LevelService, "instance": aggregate.LevelInstance,
		"zone": aggregate.LevelZone, "region": aggregate.LevelRegion, "namespace": aggregate.LevelNamespace,
	} {
		getJSON(t, srv.URL, srv.Client(), "/api/v1/flowgraph?level="+level, 200, &v)
		st.mu.Lock()
		got, start, end := st.lastGraph.Level, st.lastStart, st.lastEnd
		st.mu.Unlock()
		if got != want {
			t.Errorf("level=%s: store level %v, want %v", level, got, want)
		}
		if !end.Equal(testNow) || !start.Equal(testNow.Add(-DefaultRange)) {
			t.Errorf("level=%s: default range %v - %v", level, start, end)
		}
	}
}
