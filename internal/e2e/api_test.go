package e2e

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/query/querypb"
)

// TestSearchAPI seeds a generated data set over OTLP/gRPC and checks that the
// REST search, correlation, services and operations endpoints return exactly
// what a brute-force oracle computes from the same data.
func TestSearchAPI(t *testing.T) {
	s := startServer(t, "")
	start := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	ds := otlptest.Generate(otlptest.Options{Traces: 200, Services: 5, SpansPerTrace: 3, Start: start, Step: 50 * time.Millisecond, Seed: 3})
	conn, err := grpc.NewClient(s.addrs.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	for i := 0; i < len(ds.Requests); i += 8 {
		req := &coltracepb.ExportTraceServiceRequest{}
		for _, td := range ds.Requests[i:min(i+8, len(ds.Requests))] {
			req.ResourceSpans = append(req.ResourceSpans, td.ResourceSpans...)
		}
		resp, err := client.Export(context.Background(), req)
		if err != nil || resp.PartialSuccess != nil {
			t.Fatalf("export: %v %v", err, resp)
		}
	}
	ms := func(d time.Duration) string { return d.String() }
	cases := []struct {
		name  string
		query url.Values
		keep  func(otlptest.Span) bool
	}{
		{"service", url.Values{"service": {"svc-01"}}, func(s otlptest.Span) bool { return s.Service == "svc-01" }},
		{"service and operation", url.Values{"service": {"svc-02"}, "operation": {"op-3"}},
			func(s otlptest.Span) bool { return s.Service == "svc-02" && s.Span.Name == "op-3" }},
		{"attribute with dots", url.Values{"attr.http.status_code": {"200"}, "attr.customer": {"c5"}},
			func(s otlptest.Span) bool { return s.Attrs["customer"] == "c5" }},
		{"duration range", url.Values{"minDuration": {ms(100 * time.Millisecond)}, "maxDuration": {ms(120 * time.Millisecond)}},
			func(s otlptest.Span) bool {
				d := time.Duration(s.Span.EndTimeUnixNano - s.Span.StartTimeUnixNano)
				return d >= 100*time.Millisecond && d <= 120*time.Millisecond
			}},
		{"time range in unix ms", url.Values{"start": {fmt.Sprint(start.Add(2 * time.Second).UnixMilli())}, "end": {fmt.Sprint(start.Add(4 * time.Second).UnixMilli())}},
			func(s otlptest.Span) bool {
				st := time.Unix(0, int64(s.Span.StartTimeUnixNano))
				return !st.Before(start.Add(2*time.Second)) && !st.After(start.Add(4*time.Second))
			}},
		{"time range in RFC 3339 with resource attribute", url.Values{"start": {start.Format(time.RFC3339Nano)}, "end": {start.Add(3 * time.Second).Format(time.RFC3339Nano)}, "attr.tier": {"gold"}},
			func(s otlptest.Span) bool {
				st := time.Unix(0, int64(s.Span.StartTimeUnixNano))
				return !st.After(start.Add(3*time.Second)) && s.Attrs["tier"] == "gold"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.query
			q.Set("limit", "1000")
			if q.Get("start") == "" {
				q.Set("start", fmt.Sprint(start.Add(-time.Minute).UnixMilli()))
			}
			code, body := s.get(t, "/api/v1/traces?"+q.Encode())
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			var resp querypb.SearchTracesResponse
			if err := protojson.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tr := range resp.Traces {
				got = append(got, tr.TraceId)
			}
			slices.Sort(got)
			want := ds.TraceIDsWhere(tc.keep)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("got %d traces, want %d\n got %v\nwant %v", len(got), len(want), got, want)
			}
		})
	}

	// Default limit is 20, newest first.
	code, body := s.get(t, "/api/v1/traces?start="+fmt.Sprint(start.Add(-time.Minute).UnixMilli()))
	var resp querypb.SearchTracesResponse
	if code != 200 || protojson.Unmarshal(body, &resp) != nil || len(resp.Traces) != 20 {
		t.Fatalf("default limit: %d %d %s", code, len(resp.Traces), body)
	}
	for i := 1; i < len(resp.Traces); i++ {
		if resp.Traces[i].StartTimeUnixNano > resp.Traces[i-1].StartTimeUnixNano {
			t.Fatalf("not newest first")
		}
	}

	// Correlation ID shared by two traces.
	code, body = s.get(t, "/api/v1/correlations/corr-7")
	var corr querypb.GetCorrelationResponse
	if code != 200 || protojson.Unmarshal(body, &corr) != nil {
		t.Fatalf("correlation: %d %s", code, body)
	}
	want := ds.TraceIDsWhere(func(s otlptest.Span) bool { return s.Attrs["correlation.id"] == "corr-7" })
	var got []string
	for _, tr := range corr.Traces {
		got = append(got, tr.TraceId)
	}
	slices.Sort(got)
	if len(want) != 2 || !slices.Equal(got, want) {
		t.Fatalf("correlation got %v want %v", got, want)
	}

	// Services with counts over the seeded window, and operations.
	code, body = s.get(t, "/api/v1/services?start="+fmt.Sprint(start.Add(-time.Minute).UnixMilli()))
	var svcs querypb.ListServicesResponse
	if code != 200 || protojson.Unmarshal(body, &svcs) != nil || len(svcs.Services) != 5 {
		t.Fatalf("services: %d %s", code, body)
	}
	var total int64
	for _, sv := range svcs.Services {
		total += sv.SpanCount
	}
	if total != int64(len(ds.Spans)) {
		t.Fatalf("service span counts sum to %d, want %d", total, len(ds.Spans))
	}
	code, body = s.get(t, "/api/v1/services/svc-00/operations")
	if code != 200 || !strings.Contains(string(body), `"op-0"`) || !strings.Contains(string(body), "SPAN_KIND_SERVER") {
		t.Fatalf("operations: %d %s", code, body)
	}

	// Errors: unknown trace 404, malformed ID and time 400 naming the parameter.
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/api/v1/traces/0123456789abcdef0123456789abcdef", "", 404},
		{"/api/v1/traces/xyz", "trace", 400},
		{"/api/v1/traces?start=yesterday", "start", 400},
		{"/api/v1/traces?limit=5000", "limit", 400},
		{"/api/v1/traces?minDuration=fast", "minDuration", 400},
	} {
		code, body := s.get(t, tc.path)
		if code != tc.code || !strings.Contains(strings.ToLower(string(body)), strings.ToLower(tc.want)) || !strings.Contains(string(body), `"message"`) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.path, code, body, tc.code, tc.want)
		}
	}

	// Self-metrics.
	code, body = s.get(t, "/metrics")
	for _, m := range []string{
		`flowscope_store_items_total{outcome="accepted",signal="traces"} 600`,
		"flowscope_store_commit_duration_seconds_bucket", "flowscope_store_commit_batch_requests_bucket",
		"flowscope_store_size_bytes", `flowscope_receiver_requests_total{outcome="ok",receiver="otlp_grpc",signal="traces"} 25`,
	} {
		if code != 200 || !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _ := s.get(t, p); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
}
