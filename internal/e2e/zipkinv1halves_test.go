package e2e

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// v1HalvesCall is the tree every trace of TestZipkinV1HalvesThroughStore
// must show: each span as "KIND service name", under its parent's.
var v1HalvesCall = []string{
	`SERVER frontend "get /" <- -`,
	`CLIENT frontend "get" <- SERVER frontend "get /"`,
	`SERVER backend "get" <- CLIENT frontend "get"`,
}

// v1HalvesChildren is v1HalvesCall plus the backend's own spans: a local
// span and a call to db, reported by the backend with the shared span ID
// as parent.
var v1HalvesChildren = append(slices.Clone(v1HalvesCall),
	`INTERNAL backend "render" <- SERVER backend "get"`,
	`CLIENT backend "select" <- SERVER backend "get"`,
	`SERVER db "select" <- CLIENT backend "select"`,
)

// v1HalvesObjects returns, for one trace, the Zipkin v1 objects
// zipkin-js reports with B3 (see ingest/zipkin/testdata/v1_halves_*.json):
// the backend's server half of the call, the frontend's client half, the
// frontend's root server span, and with children the backend's local span
// and its call to db (client and server halves).
func v1HalvesObjects(trace uint64, start time.Time, children bool) []string {
	tr := fmt.Sprintf("%016x", trace)
	call := fmt.Sprintf("%016x", trace+1)
	t := start.UnixMicro()
	ep := func(s string) string { return `{"serviceName":"` + s + `","ipv4":"127.0.0.1"}` }
	ann := func(v string, at int64, svc string) string {
		return fmt.Sprintf(`{"value":%q,"timestamp":%d,"endpoint":%s}`, v, t+at, ep(svc))
	}
	objs := []string{
		fmt.Sprintf(`{"traceId":%q,"parentId":%q,"id":%q,"name":"get","annotations":[%s,%s]}`,
			tr, tr, call, ann("sr", 200, "backend"), ann("ss", 500, "backend")),
		fmt.Sprintf(`{"traceId":%q,"parentId":%q,"id":%q,"name":"get","timestamp":%d,"duration":500,"annotations":[%s,%s],`+
			`"binaryAnnotations":[{"key":"sa","value":true,"endpoint":{"serviceName":"backend"}}]}`,
			tr, tr, call, t+100, ann("cs", 100, "frontend"), ann("cr", 600, "frontend")),
		fmt.Sprintf(`{"traceId":%q,"id":%q,"name":"get /","timestamp":%d,"duration":900,"annotations":[%s,%s]}`,
			tr, tr, t, ann("sr", 0, "frontend"), ann("ss", 900, "frontend")),
	}
	if children {
		db := fmt.Sprintf("%016x", trace+2)
		objs = append(objs,
			fmt.Sprintf(`{"traceId":%q,"parentId":%q,"id":"%016x","name":"render","timestamp":%d,"duration":30,`+
				`"binaryAnnotations":[{"key":"lc","value":"templates","endpoint":%s}]}`, tr, call, trace+3, t+220, ep("backend")),
			fmt.Sprintf(`{"traceId":%q,"parentId":%q,"id":%q,"name":"select","timestamp":%d,"duration":100,"annotations":[%s,%s]}`,
				tr, call, db, t+300, ann("cs", 300, "backend"), ann("cr", 400, "backend")),
			fmt.Sprintf(`{"traceId":%q,"parentId":%q,"id":%q,"name":"select","annotations":[%s,%s]}`,
				tr, call, db, ann("sr", 310, "db"), ann("ss", 390, "db")),
		)
	}
	return objs
}

// TestZipkinV1HalvesThroughStore posts the Zipkin v1 halves of calls to
// the collector's /api/v1/spans in every order and split (all objects in
// one request, one request each, the two halves together), and requires
// each trace to read back with every span under the right parent and both
// services, and the flow graph to count every call exactly once.
func TestZipkinV1HalvesThroughStore(t *testing.T) {
	s := startServer(t, "", func(c *config.Config) { c.Aggregation.EdgeWait = time.Second })
	url := "http://" + s.addrs.Zipkin + "/api/v1/spans"
	post := func(objs ...string) {
		t.Helper()
		resp, err := http.Post(url, "application/json", strings.NewReader("["+strings.Join(objs, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /api/v1/spans: %s", resp.Status)
		}
	}
	type sent struct {
		trace uint64
		want  []string
		how   string
	}
	var traces []sent
	next := uint64(0x1000)
	start := time.Now().Add(-time.Minute)
	for _, children := range []bool{false, true} {
		n := 3
		if children {
			n = 6
		}
		want := v1HalvesCall
		if children {
			want = v1HalvesChildren
		}
		for k, perm := range permute(n) {
			if children && k%24 != 0 && k != len(permute(n))-1 {
				continue // 30 of the 720 orders of 6 objects, the reverse of the input included
			}
			objs := v1HalvesObjects(next, start, children)
			ordered := make([]string, n)
			for i, j := range perm {
				ordered[i] = objs[j]
			}
			post(ordered...) // one request
			traces = append(traces, sent{next, want, fmt.Sprintf("one request %v", perm)})
			next += 0x10
			objs = v1HalvesObjects(next, start, children)
			for _, j := range perm { // one request per object
				post(objs[j])
			}
			traces = append(traces, sent{next, want, fmt.Sprintf("one request each %v", perm)})
			next += 0x10
		}
	}
	for _, tr := range traces {
		id := fmt.Sprintf("%032x", tr.trace)
		got := readTree(t, s, id, len(tr.want))
		if !slices.Equal(got, tr.want) {
			t.Errorf("trace %s (%s):\n%s\nwant\n%s", id, tr.how, strings.Join(got, "\n"), strings.Join(tr.want, "\n"))
		}
	}
	withChildren := (len(permute(6))/24 + 1) * 2
	checkEdges(t, s, map[string]float64{
		"frontend → backend": float64(len(traces)),
		"backend → db":       float64(withChildren),
	})
}

// permute returns every order of 0..n-1.
func permute(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permute(n - 1) {
		for i := 0; i <= len(p); i++ {
			out = append(out, slices.Insert(slices.Clone(p), i, n-1))
		}
	}
	return out
}

// readTree reads trace id (waiting up to 10 s for want spans) and renders
// each span as "KIND service name <- parent's KIND service name", sorted;
// a parent that is not in the trace shows as "?" and its ID.
func readTree(t *testing.T, s *server, id string, want int) []string {
	t.Helper()
	var td *tracepb.TracesData
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, body := s.get(t, "/api/v1/traces/"+id)
		if code == 200 {
			var err error
			if td, err = otlpjson.UnmarshalTracesData(body); err != nil {
				t.Fatal(err)
			}
			if otlptest.CountSpans(td) >= want {
				break
			}
		}
		if time.Now().After(deadline) {
			if td == nil {
				t.Fatalf("trace %s: %d %s", id, code, body)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	byID := map[string]string{}
	type item struct{ label, parent string }
	var items []item
	for _, rs := range td.ResourceSpans {
		svc := attrString(rs.Resource.GetAttributes(), "service.name")
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				label := fmt.Sprintf("%s %s %q", strings.TrimPrefix(sp.Kind.String(), "SPAN_KIND_"), svc, sp.Name)
				byID[string(sp.SpanId)] = label
				items = append(items, item{label, string(sp.ParentSpanId)})
			}
		}
	}
	var out []string
	for _, it := range items {
		p := "-"
		if it.parent != "" {
			var ok bool
			if p, ok = byID[it.parent]; !ok {
				p = "? " + hex.EncodeToString([]byte(it.parent))
			}
		}
		out = append(out, it.label+" <- "+p)
	}
	slices.Sort(out)
	return sortLike(out)
}

// sortLike orders rendered spans as the want lists are: by the order of
// their kinds and names in a call (root first).
func sortLike(lines []string) []string {
	rank := func(l string) int {
		for i, w := range v1HalvesChildren {
			if l == w {
				return i
			}
		}
		return len(v1HalvesChildren)
	}
	slices.SortStableFunc(lines, func(a, b string) int { return rank(a) - rank(b) })
	return lines
}

// checkEdges requires the flow graph to hold exactly the edges want
// (source → target: calls) once the edge wait has passed (waitEdges).
func checkEdges(t *testing.T, s *server, want map[string]float64) {
	t.Helper()
	if got := waitEdges(t, s, want); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("flow graph edges %v, want %v", got, want)
	}
}

// waitEdges waits up to 15 s for the flow graph to hold the edges want
// (source → target: calls), then past the edge wait (1 s) and an Expire,
// so that a call counted twice or left as a virtual edge shows, and
// returns the edges it then holds.
func waitEdges(t *testing.T, s *server, want map[string]float64) map[string]float64 {
	t.Helper()
	edges := func() map[string]float64 {
		got := map[string]float64{}
		for _, e := range getFlowGraph(t, s, "level=service").Edges {
			got[e.Source+" → "+e.Target] += e.Calls
		}
		return got
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if fmt.Sprint(edges()) == fmt.Sprint(want) {
			break
		}
	}
	time.Sleep(2500 * time.Millisecond)
	return edges()
}
