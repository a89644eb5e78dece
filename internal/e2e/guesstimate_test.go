package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestGuesstimateRoundTrip is the acceptance test of the Guesstimate
// export: for a unimodal, a bimodal and a heavy-tailed distribution sent
// through OTLP/gRPC as calls rt-caller → rt-<shape>, it downloads
// /api/v1/latency?format=guesstimate of the service rt-<shape> and of the
// edge (down-sampled to 2,000 samples), imports both files into the same
// collector through POST /api/v1/import (the importer `collector import
// --to` uses), and checks that the imported metric spigo.latency of
// service rt-<shape> has the p50, p90 and p99 of /api/v1/latency within
// 1 %.
func TestGuesstimateRoundTrip(t *testing.T) {
	s := startServer(t, "")
	conn, err := grpc.NewClient(s.addrs.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)

	r := rand.New(rand.NewPCG(16, 4))
	shapes := []struct {
		name string
		draw func() float64 // a call's duration, ns
	}{
		{"unimodal", func() float64 { return 20e6 * math.Exp(0.4*r.NormFloat64()) }},
		{"bimodal", func() float64 {
			if r.Float64() < 0.7 {
				return 1e6 * math.Exp(0.2*r.NormFloat64())
			}
			return 40e6 * math.Exp(0.2*r.NormFloat64())
		}},
		{"heavy-tailed", func() float64 { return min(2e6*math.Pow(1-r.Float64(), -1/1.2), 10e9) }},
	}
	const calls = 5000
	base := time.Now().Add(-2 * time.Minute)
	var n uint64
	for _, sh := range shapes {
		target := "rt-" + sh.name
		for batch := 0; batch < calls/500; batch++ {
			var clientSpans, serverSpans []*tracepb.Span
			for range 500 {
				n++
				d := uint64(sh.draw())
				st := uint64(base.Add(time.Duration(n) * time.Millisecond).UnixNano())
				clientSpans = append(clientSpans, &tracepb.Span{
					TraceId: otlptest.TraceID(n), SpanId: otlptest.SpanID(2 * n), Name: "GET /item",
					Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: st, EndTimeUnixNano: st + d,
				})
				serverSpans = append(serverSpans, &tracepb.Span{
					TraceId: otlptest.TraceID(n), SpanId: otlptest.SpanID(2*n + 1), ParentSpanId: otlptest.SpanID(2 * n),
					Name: "GET /item", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: st + d/20, EndTimeUnixNano: st + d - d/20,
				})
			}
			_, err := client.Export(context.Background(), &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
				{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", "rt-caller")}},
					ScopeSpans: []*tracepb.ScopeSpans{{Spans: clientSpans}}},
				{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", target)}},
					ScopeSpans: []*tracepb.ScopeSpans{{Spans: serverSpans}}},
			}})
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	rng := fmt.Sprintf("&start=%d", base.Add(-time.Minute).UnixMilli())
	type selection struct {
		name, query, pkg string // pkg: the imported spigo.package
	}
	for _, sh := range shapes {
		target := "rt-" + sh.name
		for _, sel := range []selection{
			{"service", "service=" + target, "flowscope"},
			{"edge", "source=rt-caller&target=" + target + "&samples=2000", "rt-caller->" + target},
		} {
			t.Run(sh.name+"/"+sel.name, func(t *testing.T) {
				// The API's quantiles, once every call is in (edges are
				// paired as their halves arrive).
				var lat struct {
					TimedCount any
					Quantiles  []struct{ Quantile, Value any }
				}
				deadline := time.Now().Add(20 * time.Second)
				for {
					s.getJSON(t, "/api/v1/latency?"+strings.Replace(sel.query, "&samples=2000", "", 1)+"&quantiles=0.5,0.9,0.99"+rng, &lat)
					if int(jsonNum(lat.TimedCount)) == calls || time.Now().After(deadline) {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				if got := int(jsonNum(lat.TimedCount)); got != calls {
					t.Fatalf("timedCount %d, want %d", got, calls)
				}

				resp, err := http.Get("http://" + s.addrs.HTTP + "/api/v1/latency?" + sel.query + "&format=guesstimate" + rng)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment; filename=") {
					t.Fatalf("export: %d %v %.200s", resp.StatusCode, resp.Header, doc)
				}

				name := url.QueryEscape(target + "-" + sel.name + ".guess")
				ir, err := http.Post("http://"+s.addrs.HTTP+"/api/v1/import?name="+name, "application/octet-stream", bytes.NewReader(doc))
				if err != nil {
					t.Fatal(err)
				}
				sum, _ := io.ReadAll(ir.Body)
				ir.Body.Close()
				if ir.StatusCode != 200 {
					t.Fatalf("import: %d %s", ir.StatusCode, sum)
				}

				var m struct {
					Series []struct {
						ResourceAttributes map[string]string
						Points             []struct {
							Count     any
							Quantiles []struct{ Quantile, Value any }
						}
					}
				}
				s.getJSON(t, "/api/v1/metrics/spigo.latency?quantiles=0.5,0.9,0.99&start="+fmt.Sprint(time.Now().Add(-time.Hour).UnixMilli()), &m)
				found := false
				for _, ser := range m.Series {
					ra := ser.ResourceAttributes
					if ra["service.name"] != target || ra["spigo.package"] != sel.pkg {
						continue
					}
					found = true
					if ra["service.namespace"] != "" || len(ser.Points) != 1 {
						t.Fatalf("imported series %+v", ser)
					}
					pt := ser.Points[0]
					if want := map[string]int{"service": calls, "edge": 2000}[sel.name]; int(jsonNum(pt.Count)) != want {
						t.Errorf("imported %v samples, want %d", pt.Count, want)
					}
					for i, q := range pt.Quantiles {
						got, want := jsonNum(q.Value), jsonNum(lat.Quantiles[i].Value)
						if rel := math.Abs(got-want) / want; !(rel <= 0.01) {
							t.Errorf("p%v: imported %.0f ns, latency API %.0f ns: relative error %.4f > 1%%", jsonNum(q.Quantile)*100, got, want, rel)
						}
					}
				}
				if !found {
					t.Fatalf("no imported series of %s with spigo.package %s in %+v", target, sel.pkg, m.Series)
				}
			})
		}
	}
}
