package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/ingest/zipkin"
)

// spigoDir holds the simulator samples and their reference answers
// (testdata/spigo/README.md, "Reference answers").
const spigoDir = "../../testdata/spigo/"

// spigoReference is the part of reference/*.reference.json the tests use.
type spigoReference struct {
	Flow struct {
		Spans                           int
		Traces                          int
		Services                        []string
		AnnotationsWithEmptyServiceName int   `json:"annotations_with_empty_serviceName"`
		TimestampUsMin                  int64 `json:"timestamp_us_min"`
		TimestampUsMax                  int64 `json:"timestamp_us_max"`
		Edges                           []struct {
			Caller, Callee string
			Calls          int
		}
		LatencyUs struct {
			Server map[string]refLatency `json:"server_ss_minus_sr"`
			Client map[string]refLatency `json:"client_cr_minus_cs"`
		} `json:"latency_us"`
	}
}

type refLatency struct {
	Count       int
	NearestRank map[string]float64 `json:"nearest_rank"`
}

func loadSpigoReference(t *testing.T, name string) spigoReference {
	t.Helper()
	b, err := os.ReadFile(spigoDir + "reference/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ref spigoReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if ref.Flow.Spans == 0 || len(ref.Flow.Edges) == 0 || len(ref.Flow.LatencyUs.Server) == 0 {
		t.Fatalf("%s: reference not understood: %+v", name, ref.Flow)
	}
	return ref
}

// spigoSamples are the flow files with their reference answers and their
// architecture, the service.namespace of their spans: the flow graph names
// their services arch/service.
var spigoSamples = []struct{ flow, ref, arch string }{
	{"json_metrics/lamp_flow.json", "lamp_sample.reference.json", "lamp"},
	{"json_metrics/storage_flow.json", "storage_sample.reference.json", "storage"},
}

// getJSON fetches an API path and decodes its JSON body into v.
func (s *server) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	code, body := s.get(t, path)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode %s: %v", path, body, err)
	}
}

// checkSpigoReference checks what the collector serves for an imported
// spigo flow file of architecture arch against the file's reference
// answers. shift is how far the import moved the file's times (0 without
// --rebase).
func checkSpigoReference(t *testing.T, s *server, ref spigoReference, arch string, shift time.Duration) {
	t.Helper()
	from := time.UnixMicro(ref.Flow.TimestampUsMin).Add(shift - time.Minute).UTC()
	to := time.UnixMicro(ref.Flow.TimestampUsMax).Add(shift + time.Minute).UTC()
	rng := "start=" + from.Format(time.RFC3339Nano) + "&end=" + to.Format(time.RFC3339Nano)

	// Traces, and spans: the OTLP spans of each trace less the halves the
	// converter split off shared Zipkin v1 spans (they have IDs derived
	// from the file's trace ID, which an import keeps in spigo.trace_id).
	var found struct {
		Traces []struct{ TraceID string }
	}
	s.getJSON(t, "/api/v1/traces?limit=1000&"+rng, &found)
	if len(found.Traces) != ref.Flow.Traces {
		t.Errorf("traces: %d, want %d", len(found.Traces), ref.Flow.Traces)
	}
	spans := 0
	for _, tr := range found.Traces {
		code, body := s.get(t, "/api/v1/traces/"+tr.TraceID)
		if code != 200 {
			t.Fatalf("trace %s: %d %s", tr.TraceID, code, body)
		}
		td, err := otlpjson.UnmarshalTracesData(body)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[[8]byte]bool{}
		var traceID [16]byte
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					copy(traceID[:], sp.TraceId)
					ids[[8]byte(sp.SpanId)] = true
					for _, kv := range sp.Attributes {
						if kv.Key == "spigo.trace_id" {
							traceID = spigoFileTraceID(kv.Value.GetIntValue())
						}
					}
				}
			}
		}
		derived := map[[8]byte]bool{}
		for id := range ids {
			for hop := 1; hop <= 4; hop++ {
				derived[zipkin.DerivedSpanID(traceID, id, hop)] = true
			}
		}
		for id := range ids {
			if !derived[id] {
				spans++
			}
		}
	}
	if spans != ref.Flow.Spans {
		t.Errorf("spans: %d Zipkin spans, want %d", spans, ref.Flow.Spans)
	}

	// Services: the named ones; spans whose endpoint has an empty
	// serviceName go to unknown_service (OTel's name for a missing one).
	var svcs struct{ Services []struct{ Name string } }
	s.getJSON(t, "/api/v1/services?"+rng, &svcs)
	var names []string
	unknown := false
	for _, sv := range svcs.Services {
		if sv.Name == "unknown_service" {
			unknown = true
			continue
		}
		names = append(names, sv.Name)
	}
	if !slices.Equal(names, ref.Flow.Services) {
		t.Errorf("services %q, want %q", names, ref.Flow.Services)
	}
	if unknown != (ref.Flow.AnnotationsWithEmptyServiceName > 0) {
		t.Errorf("unknown_service listed: %v, but %d annotations have an empty serviceName", unknown, ref.Flow.AnnotationsWithEmptyServiceName)
	}

	// Edges with exact call counts, between the architecture's services.
	g := getFlowGraph(t, s, "level=service&"+rng)
	got := map[string]float64{}
	for _, e := range g.Edges {
		got[e.Source+" -> "+e.Target] = e.Calls
	}
	want := referenceEdges(ref, arch)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("edges:\n got %v\nwant %v", got, want)
	}

	// Server and client latency per service: the number of measured
	// durations, and nearest-rank quantiles within 1%.
	check := func(kind string, refs map[string]refLatency) {
		for svc, rl := range refs {
			var lat struct {
				Count     float64
				Quantiles []struct{ Quantile, Value float64 }
				Buckets   []struct{ Count float64 }
			}
			s.getJSON(t, "/api/v1/latency?quantiles=0.5,0.9,0.99,0.999&kind="+kind+"&service="+url.QueryEscape(arch+"/"+svc)+"&"+rng, &lat)
			var timed float64
			for _, b := range lat.Buckets {
				timed += b.Count
			}
			if timed != float64(rl.Count) {
				t.Errorf("%s %s: %v durations measured, want %d", svc, kind, timed, rl.Count)
			}
			for i, q := range []string{"p50", "p90", "p99", "p99.9"} {
				want := rl.NearestRank[q] * 1000
				if i >= len(lat.Quantiles) {
					t.Fatalf("%s %s: quantiles %+v", svc, kind, lat.Quantiles)
				}
				if got := lat.Quantiles[i].Value; math.Abs(got-want) > 0.01*want {
					t.Errorf("%s %s %s: %v ns, want %v ns ±1%%", svc, kind, q, got, want)
				}
			}
		}
	}
	check("server", ref.Flow.LatencyUs.Server)
	check("client", ref.Flow.LatencyUs.Client)
}

// TestSpigoSamplesThroughZipkinReceiver posts each spigo flow file, as
// spigo's users would, to the Zipkin v1 endpoint and checks every
// reference answer.
func TestSpigoSamplesThroughZipkinReceiver(t *testing.T) {
	for _, sample := range spigoSamples {
		t.Run(sample.flow, func(t *testing.T) {
			ref := loadSpigoReference(t, sample.ref)
			s := startServer(t, "")
			body, err := os.ReadFile(spigoDir + sample.flow)
			if err != nil {
				t.Fatal(err)
			}
			code, _, resp := post(t, "http://"+s.addrs.Zipkin+"/api/v1/spans", "application/json", "", bytes.NewReader(body))
			if code != 202 {
				t.Fatalf("POST /api/v1/spans: %d %s", code, resp)
			}
			checkSpigoReference(t, s, ref, sample.arch, 0)
		})
	}
}

// referenceEdges returns the edges of a reference answer, by flow-graph
// node IDs (arch/service), with their calls.
func referenceEdges(ref spigoReference, arch string) map[string]float64 {
	want := map[string]float64{}
	for _, e := range ref.Flow.Edges {
		want[arch+"/"+e.Caller+" -> "+arch+"/"+e.Callee] = float64(e.Calls)
	}
	return want
}

// spigoFileTraceID is the trace ID a spigo flow file gives trace number n
// (fmt "%016d", read as hex and left-padded).
func spigoFileTraceID(n int64) [16]byte {
	var id [16]byte
	for i := 15; i >= 8; i-- {
		id[i] = byte(n%10) | byte(n/10%10)<<4
		n /= 100
	}
	return id
}
