package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flowscope/flowscope/query/querypb"
)

// TestOTelSDKMetrics exports every metric type the SDK produces (sum,
// non-monotonic sum, gauge, explicit and exponential histograms) with the
// real otlpmetricgrpc and otlpmetrichttp exporters, plus a summary as raw
// OTLP/JSON, and reads them back through the metrics API.
func TestOTelSDKMetrics(t *testing.T) {
	s := startServer(t, "")
	for _, proto := range []string{"grpc", "http"} {
		t.Run(proto, func(t *testing.T) {
			ctx := context.Background()
			var exp sdkmetric.Exporter
			var err error
			if proto == "grpc" {
				exp, err = otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(s.addrs.OTLPGRPC), otlpmetricgrpc.WithInsecure())
			} else {
				exp, err = otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(s.addrs.OTLPHTTP), otlpmetrichttp.WithInsecure())
			}
			if err != nil {
				t.Fatal(err)
			}
			reader := sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))
			mp := sdkmetric.NewMeterProvider(
				sdkmetric.WithReader(reader),
				sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "metrics-"+proto))),
				sdkmetric.WithView(sdkmetric.NewView(sdkmetric.Instrument{Name: proto + ".size"},
					sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 20}})),
			)
			m := mp.Meter("e2e")
			route := metric.WithAttributes(attribute.String("route", "/a"))
			counter, _ := m.Int64Counter(proto + ".requests")
			counter.Add(ctx, 5, route)
			updown, _ := m.Int64UpDownCounter(proto + ".inflight")
			updown.Add(ctx, 3, route)
			updown.Add(ctx, -1, route)
			gauge, _ := m.Float64Gauge(proto + ".temperature")
			gauge.Record(ctx, 21.5)
			hist, _ := m.Float64Histogram(proto+".latency", metric.WithUnit("ms"), metric.WithExplicitBucketBoundaries(1, 10, 100))
			for _, v := range []float64{0.5, 5, 5, 50} {
				hist.Record(ctx, v, route)
			}
			size, _ := m.Int64Histogram(proto + ".size")
			for _, v := range []int64{100, 200, 400, 800} {
				size.Record(ctx, v)
			}
			if err := mp.Shutdown(ctx); err != nil {
				t.Fatalf("export metrics: %v", err)
			}
			want := map[string]string{
				proto + ".requests": "sum", proto + ".inflight": "sum", proto + ".temperature": "gauge",
				proto + ".latency": "histogram", proto + ".size": "exponential_histogram",
			}
			checkMetricList(t, s, want)
			p := onePoint(t, s, proto+".requests")
			if p.GetValue() != 5 {
				t.Errorf("requests = %v, want 5", p.GetValue())
			}
			if p := onePoint(t, s, proto+".inflight"); p.GetValue() != 2 {
				t.Errorf("inflight = %v, want 2", p.GetValue())
			}
			if p := onePoint(t, s, proto+".temperature"); p.GetValue() != 21.5 {
				t.Errorf("temperature = %v", p.GetValue())
			}
			h := onePoint(t, s, proto+".latency")
			if h.GetCount() != 4 || h.GetSum() != 60.5 || h.GetMin() != 0.5 || h.GetMax() != 50 || len(h.Quantiles) == 0 {
				t.Errorf("latency histogram %v", h)
			}
			e := onePoint(t, s, proto+".size")
			if e.GetCount() != 4 || e.GetSum() != 1500 || len(e.Buckets) == 0 || len(e.Quantiles) == 0 {
				t.Errorf("size histogram %v", e)
			}
		})
	}
	t.Run("summary-json", func(t *testing.T) {
		now := time.Now().UnixNano()
		body := fmt.Sprintf(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"legacy"}}]},
 "scopeMetrics":[{"metrics":[{"name":"rpc.latency","unit":"ms","summary":{"dataPoints":[{"timeUnixNano":"%d","count":"10","sum":123.5,
 "quantileValues":[{"quantile":0.5,"value":9},{"quantile":0.99,"value":40}]}]}}]}]}]}`, now)
		resp, err := http.Post("http://"+s.addrs.OTLPHTTP+"/v1/metrics", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST summary: %d", resp.StatusCode)
		}
		checkMetricList(t, s, map[string]string{"rpc.latency": "summary"})
		p := onePoint(t, s, "rpc.latency")
		if p.GetCount() != 10 || p.GetSum() != 123.5 || len(p.Quantiles) != 2 || p.Quantiles[1].Value != 40 {
			t.Errorf("summary point %v", p)
		}
	})
}

func checkMetricList(t *testing.T, s *server, want map[string]string) {
	t.Helper()
	code, body := s.get(t, "/api/v1/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	var list querypb.ListMetricsResponse
	if err := protojson.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range list.Metrics {
		got[m.Name] = m.Type
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("metric %s: type %q, want %q (list %s)", name, got[name], typ, body)
		}
	}
}

func onePoint(t *testing.T, s *server, name string) *querypb.Point {
	t.Helper()
	code, body := s.get(t, "/api/v1/metrics/"+name)
	if code != 200 {
		t.Fatalf("GET metric %s: %d %s", name, code, body)
	}
	var resp querypb.GetMetricResponse
	if err := protojson.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Series) != 1 || len(resp.Series[0].Points) != 1 {
		t.Fatalf("metric %s: want one series with one point, got %s", name, body)
	}
	return resp.Series[0].Points[0]
}
