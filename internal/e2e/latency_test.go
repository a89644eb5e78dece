package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// mode is one latency mode of a multi-modal distribution.
type mode struct {
	center time.Duration
	share  float64
}

// sample draws a duration: a mode chosen by share, then ±20% around its center.
func sample(r *rand.Rand, modes []mode) int64 {
	x := r.Float64()
	for _, m := range modes {
		if x < m.share {
			return int64(float64(m.center) * (0.8 + 0.4*r.Float64()))
		}
		x -= m.share
	}
	m := modes[len(modes)-1]
	return int64(float64(m.center) * (0.8 + 0.4*r.Float64()))
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

// jsonNum reads a JSON number that may be encoded as a string (int64 in protojson).
func jsonNum(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, _ := strconv.ParseFloat(x, 64)
		return f
	}
	return math.NaN()
}

// TestLatencyQuantileAccuracy feeds multi-modal latency distributions
// (cache hit ≈ 1 ms, miss ≈ 5 ms, disk ≈ 50 ms, with varied hit rates)
// through OTLP/gRPC ingest and checks p50, p90, p99 and p99.9 from
// /api/v1/latency against the exact quantiles: relative error ≤ 1%, also
// after a restart (persisted windows merged with replayed ones).
func TestLatencyQuantileAccuracy(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	cases := []struct {
		name  string
		modes []mode
	}{
		{"hit-heavy", []mode{{time.Millisecond, 0.90}, {5 * time.Millisecond, 0.08}, {50 * time.Millisecond, 0.02}}},
		{"balanced", []mode{{time.Millisecond, 0.50}, {5 * time.Millisecond, 0.30}, {50 * time.Millisecond, 0.20}}},
		{"rare-disk", []mode{{time.Millisecond, 0.985}, {5 * time.Millisecond, 0.010}, {50 * time.Millisecond, 0.005}}},
		{"sub-ms-and-seconds", []mode{{300 * time.Microsecond, 0.6}, {20 * time.Millisecond, 0.3}, {2 * time.Second, 0.1}}},
	}
	conn, err := grpc.NewClient(s.addrs.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	r := rand.New(rand.NewPCG(42, 7))
	exact := map[string][]int64{}
	base := time.Now().Add(-2 * time.Minute)
	var spanN uint64
	for _, tc := range cases {
		svc := "acc-" + tc.name
		const n = 20000
		durs := make([]int64, 0, n)
		for batch := 0; batch < n/1000; batch++ {
			ss := &tracepb.ScopeSpans{}
			for i := 0; i < 1000; i++ {
				spanN++
				d := sample(r, tc.modes)
				durs = append(durs, d)
				st := uint64(base.Add(time.Duration(spanN) * time.Millisecond).UnixNano())
				ss.Spans = append(ss.Spans, &tracepb.Span{
					TraceId: otlptest.TraceID(spanN), SpanId: otlptest.SpanID(spanN), Name: "GET /item",
					Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: st, EndTimeUnixNano: st + uint64(d),
				})
			}
			_, err := client.Export(context.Background(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
				Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", svc)}},
				ScopeSpans: []*tracepb.ScopeSpans{ss},
			}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(durs)
		exact[svc] = durs
	}
	check := func(s *server, phase string) {
		for svc, durs := range exact {
			path := fmt.Sprintf("/api/v1/latency?service=%s&quantiles=0.5,0.9,0.99,0.999&start=%d", svc, base.Add(-time.Minute).UnixMilli())
			code, body := s.get(t, path)
			if code != 200 {
				t.Fatalf("%s: %s: %d %s", phase, path, code, body)
			}
			var resp struct {
				Count     any
				Quantiles []struct{ Quantile, Value, ErrorBound any }
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			if int(jsonNum(resp.Count)) != len(durs) {
				t.Fatalf("%s: %s: count %v, want %d", phase, svc, resp.Count, len(durs))
			}
			if len(resp.Quantiles) != 4 {
				t.Fatalf("%s: quantiles %s", phase, body)
			}
			for _, q := range resp.Quantiles {
				want := float64(exactQuantile(durs, jsonNum(q.Quantile)))
				got := jsonNum(q.Value)
				if rel := math.Abs(got-want) / want; rel > 0.01 {
					t.Errorf("%s: %s p%v = %.0f ns, exact %.0f ns: relative error %.4f > 1%%", phase, svc, jsonNum(q.Quantile)*100, got, want, rel)
				}
				if b := jsonNum(q.ErrorBound); !(b >= 0) || b > 0.01*got {
					t.Errorf("%s: %s error bound %v of value %v", phase, svc, b, got)
				}
			}
		}
	}
	check(s, "live")
	s.stop(t)
	s2 := startServer(t, dir)
	check(s2, "after restart")
}
