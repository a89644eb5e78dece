package query

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func newTestService(st Store) *Service {
	return NewService(st, ServiceOptions{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return testNow },
	})
}

// newTestServer serves the gateway over a fake store on 127.0.0.1.
func newTestServer(t *testing.T) (*httptest.Server, *fakeStore) {
	t.Helper()
	st := newFakeStore()
	h, err := NewGatewayHandler(t.Context(), newTestService(st))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv, st
}

// TestGatewayGolden pins the JSON of every REST endpoint, errors included.
// Regenerate with: go test ./query -run TestGatewayGolden -update
func TestGatewayGolden(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		golden string
		method string // default GET
		path   string
		status int
	}{
		{"services", "", "/api/v1/services", 200},
		{"services_range", "", "/api/v1/services?start=2024-05-01T11:00:00Z&end=1714564800000", 200},
		{"services_bad_start", "", "/api/v1/services?start=yesterday", 400},
		{"services_end_before_start", "", "/api/v1/services?start=1714564800000&end=2024-05-01T11:00:00Z", 400},
		{"operations", "", "/api/v1/services/checkout/operations", 200},
		{"operations_unknown_service", "", "/api/v1/services/nobody/operations", 200},
		{"operations_store_error", "", "/api/v1/services/broken/operations", 500},
		{"trace", "", "/api/v1/traces/5b8efaf16e7d4c90a1b2c3d4e5f60718", 200},
		{"trace_64bit_id", "", "/api/v1/traces/463ac35c9f6413ad", 200},
		{"trace_not_found", "", "/api/v1/traces/ffffffffffffffffffffffffffffffff", 404},
		{"trace_bad_id", "", "/api/v1/traces/not-a-trace-id", 400},
		{"search", "", "/api/v1/traces?service=frontend&minDuration=1ms&maxDuration=2s&attr.http.route=%2Fcart&limit=5", 200},
		{"search_empty", "", "/api/v1/traces?service=nobody", 200},
		{"search_limit_too_big", "", "/api/v1/traces?limit=5000", 400},
		{"search_bad_limit", "", "/api/v1/traces?limit=many", 400},
		{"search_bad_duration", "", "/api/v1/traces?minDuration=100", 400},
		{"search_unknown_parameter", "", "/api/v1/traces?servce=frontend", 400},
		{"search_status_error", "", "/api/v1/traces?status=error", 200},
		{"search_status_ok", "", "/api/v1/traces?service=frontend&status=ok&limit=1", 200},
		{"search_bad_status", "", "/api/v1/traces?status=failed", 400},
		{"search_edge", "", "/api/v1/traces?source=frontend&target=checkout&operation=POST+%2Fcheckout&status=error", 200},
		{"search_edge_source_only", "", "/api/v1/traces?source=frontend", 400},
		{"search_edge_and_service", "", "/api/v1/traces?service=frontend&source=frontend&target=checkout", 400},
		{"correlation", "", "/api/v1/correlations/req-42", 200},
		{"correlation_empty", "", "/api/v1/correlations/req-0", 200},
		{"metrics", "", "/api/v1/metrics", 200},
		{"metric_gauge", "", "/api/v1/metrics/queue.size", 200},
		{"metric_sum", "", "/api/v1/metrics/requests", 200},
		{"metric_histogram", "", "/api/v1/metrics/http.server.request.duration", 200},
		{"metric_histogram_quantiles", "", "/api/v1/metrics/http.server.request.duration?quantiles=0.25,0.5", 200},
		{"metric_exponential_histogram", "", "/api/v1/metrics/rpc.latency", 200},
		{"metric_summary", "", "/api/v1/metrics/gc.pause", 200},
		{"metric_unknown", "", "/api/v1/metrics/no.such.metric", 200},
		{"metric_bad_quantile", "", "/api/v1/metrics/rpc.latency?quantiles=99", 400},
		{"flowgraph", "", "/api/v1/flowgraph", 200},
		{"policies_none", "", "/api/v1/policies", 200},
		{"lint", "", "/api/v1/lint", 200},
		{"lint_bad_level", "", "/api/v1/lint?level=planet", 400},
		{"flowgraph_vizceral", "", "/api/v1/flowgraph?format=vizceral", 200},
		{"flowgraph_region_vizceral", "", "/api/v1/flowgraph?level=region&format=vizceral", 200},
		{"flowgraph_bad_level", "", "/api/v1/flowgraph?level=planet", 400},
		{"flowgraph_bad_format", "", "/api/v1/flowgraph?format=dot", 400},
		{"flowgraph_compare", "", "/api/v1/flowgraph?compare=shop", 200},
		{"flowgraph_compare_region", "", "/api/v1/flowgraph?compare=shop&level=region", 200},
		{"flowgraph_compare_empty_arch", "", "/api/v1/flowgraph?compare=empty", 200},
		{"flowgraph_compare_unknown", "", "/api/v1/flowgraph?compare=nope", 404},
		{"flowgraph_compare_vizceral", "", "/api/v1/flowgraph?compare=shop&format=vizceral", 400},
		{"flowgraph_compare_store_error", "", "/api/v1/flowgraph?compare=broken", 500},
		{"architectures", "", "/api/v1/architectures", 200},
		{"latency", "", "/api/v1/latency?service=checkout", 200},
		{"latency_quantiles", "", "/api/v1/latency?service=checkout&quantiles=0.5,0.75", 200},
		{"latency_edge", "", "/api/v1/latency?source=frontend&target=checkout&quantiles=0.99", 200},
		{"latency_series", "", "/api/v1/latency?service=checkout&step=5m&quantiles=0.5,0.99", 200},
		{"latency_empty", "", "/api/v1/latency?service=nobody&step=5m", 200},
		{"latency_store_error", "", "/api/v1/latency?service=broken", 500},
		{"latency_missing_service", "", "/api/v1/latency", 400},
		{"latency_missing_target", "", "/api/v1/latency?source=frontend", 400},
		{"latency_service_and_edge", "", "/api/v1/latency?service=checkout&source=frontend&target=checkout", 400},
		{"latency_kind_with_edge", "", "/api/v1/latency?source=frontend&target=checkout&kind=client", 400},
		{"latency_level_with_service", "", "/api/v1/latency?service=checkout&level=zone", 400},
		{"latency_bad_kind", "", "/api/v1/latency?service=checkout&kind=server2", 400},
		{"latency_bad_step", "", "/api/v1/latency?service=checkout&step=15s", 400},
		{"latency_bad_quantile", "", "/api/v1/latency?service=checkout&quantiles=99", 400},
		{"latency_bad_format", "", "/api/v1/latency?service=checkout&format=csv", 400},
		{"unknown_path", "", "/api/v1/nothing", 404},
		{"wrong_method", http.MethodPost, "/api/v1/services", 405},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.status >= 400 {
				var eb errorBody
				if err := json.Unmarshal(body, &eb); err != nil || eb.Code != tt.status || eb.Message == "" {
					t.Errorf("error body %s: want {code: %d, message}", body, tt.status)
				}
			}
			checkGolden(t, filepath.Join("testdata", "golden", tt.golden+".json"), body)
		})
	}
}

// checkGolden compares JSON body, indented, with the golden file, or rewrites
// the file under -update. Indenting normalises protojson's deliberately
// unstable whitespace; member order and values must match exactly.
func checkGolden(t *testing.T, path string, body []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, body)
	}
	buf.WriteByte('\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./query -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s differs from the response:\n%s", path, buf.Bytes())
	}
}

// TestGatewayPassesParameters checks what the REST parameters become in the
// store query.
func TestGatewayPassesParameters(t *testing.T) {
	srv, st := newTestServer(t)
	get := func(path string) {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
	}

	get("/api/v1/traces?service=frontend&operation=GET+%2Fcart&start=1714557600000&end=2024-05-01T11:00:00Z" +
		"&minDuration=250us&max_duration=1.5s&attr.http.route=%2Fcart&attr.deployment.environment.name=prod&limit=7")
	want := store.TraceQuery{
		Service: "frontend", Operation: "GET /cart",
		Start: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), End: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC),
		MinDuration: 250 * time.Microsecond, MaxDuration: 1500 * time.Millisecond,
		Attributes: map[string]string{"http.route": "/cart", "deployment.environment.name": "prod"},
		Limit:      7,
	}
	st.mu.Lock()
	got := st.lastQuery
	st.mu.Unlock()
	if !equalQuery(got, want) {
		t.Errorf("store query = %+v\nwant %+v", got, want)
	}

	get("/api/v1/traces?source=shop%2Ffrontend&target=checkout&operation=POST+%2Fcheckout&minDuration=1ms")
	st.mu.Lock()
	got = st.lastQuery
	st.mu.Unlock()
	if got.Source != "shop/frontend" || got.Target != "checkout" || got.Service != "" || got.Operation != "POST /checkout" || got.MinDuration != time.Millisecond {
		t.Errorf("edge query = %+v", got)
	}

	get("/api/v1/traces")
	st.mu.Lock()
	got = st.lastQuery
	st.mu.Unlock()
	if got.Limit != store.DefaultSearchLimit || !got.End.Equal(testNow) || !got.Start.Equal(testNow.Add(-DefaultRange)) {
		t.Errorf("default query = %+v", got)
	}

	get("/api/v1/correlations/req-42?limit=1000")
	st.mu.Lock()
	limit := st.lastLimit
	st.mu.Unlock()
	if limit != 1000 {
		t.Errorf("correlation limit = %d, want 1000", limit)
	}

	// Escaped slashes stay inside a path segment; metric names may have
	// slashes either way.
	for path, want := range map[string]string{
		"/api/v1/services/a%2Fb/operations":         "a/b",
		"/api/v1/metrics/a%2Fb":                     "a/b",
		"/api/v1/metrics/a/b/c":                     "a/b/c",
		"/api/v1/metrics/a%252Fb":                   "a/b", // the documented ambiguity
		"/api/v1/services/%C3%A9t%C3%A9/operations": "été",
	} {
		get(path)
		st.mu.Lock()
		name := st.lastName
		st.mu.Unlock()
		if name != want {
			t.Errorf("GET %s: name %q, want %q", path, name, want)
		}
	}
}

// TestGRPCGetTrace calls GetTrace over a real gRPC connection on 127.0.0.1.
func TestGRPCGetTrace(t *testing.T) {
	st := newFakeStore()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	RegisterGRPC(s, newTestService(st))
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := querypb.NewQueryServiceClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	for _, id := range []string{"5b8efaf16e7d4c90a1b2c3d4e5f60718", "463ac35c9f6413ad"} {
		resp, err := client.GetTrace(ctx, &querypb.GetTraceRequest{TraceId: id})
		if err != nil {
			t.Fatalf("GetTrace(%s): %v", id, err)
		}
		var td tracepb.TracesData
		if err := proto.Unmarshal(resp.GetTracesData(), &td); err != nil {
			t.Fatal(err)
		}
		sid, _ := ParseTraceID(id)
		if !proto.Equal(&td, st.traces[sid]) {
			t.Errorf("GetTrace(%s) decoded to a different trace", id)
		}
	}

	for _, tt := range []struct {
		id   string
		code codes.Code
	}{
		{"ffffffffffffffffffffffffffffffff", codes.NotFound},
		{"xyz", codes.InvalidArgument},
	} {
		_, err := client.GetTrace(ctx, &querypb.GetTraceRequest{TraceId: tt.id})
		if status.Code(err) != tt.code {
			t.Errorf("GetTrace(%s) = %v, want %v", tt.id, err, tt.code)
		}
	}

	_, err = client.SearchTraces(ctx, &querypb.SearchTracesRequest{Limit: 1001})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "limit") {
		t.Errorf("SearchTraces(limit 1001) = %v, want InvalidArgument naming limit", err)
	}
}

// TestGatewayOtherPackages checks that the process-wide query parser leaves
// other messages to grpc-gateway's default parser: unknown keys ignored.
func TestGatewayOtherPackages(t *testing.T) {
	msg := &tracepb.Span{}
	if err := (queryParser{}).Parse(msg, map[string][]string{"name": {"x"}, "attr.k": {"v"}}, utilities.NewDoubleArray(nil)); err != nil {
		t.Fatal(err)
	}
	if msg.GetName() != "x" {
		t.Errorf("name = %q", msg.GetName())
	}
}
