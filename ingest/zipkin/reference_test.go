package zipkin

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// reference is the part of testdata/spigo/reference/*.reference.json this
// test compares with (README §7 defines the numbers).
type reference struct {
	Flow struct {
		Spans    int64    `json:"spans"`
		Traces   int64    `json:"traces"`
		Services []string `json:"services"`
		Edges    []struct {
			Caller, Callee string
			Calls          int
		} `json:"edges"`
		Unanswered map[string]int `json:"unanswered_client_sends"`
		Latency    struct {
			Server map[string]refLatency `json:"server_ss_minus_sr"`
			Client map[string]refLatency `json:"client_cr_minus_cs"`
		} `json:"latency_us"`
	} `json:"flow"`
}

type refLatency struct {
	Count       int              `json:"count"`
	NearestRank map[string]int64 `json:"nearest_rank"`
}

// TestSpigoReference decodes the spigo sample flow files and recomputes,
// from the emitted OTLP alone, the reference answers of
// testdata/spigo/README.md §7: span and trace counts, the service set,
// the call edges (a CLIENT span with a SERVER child in another service is
// one call), the client sends never answered, and the server (ss−sr) and
// client (cr−cs) latencies per service with nearest-rank quantiles, taken
// only from spans whose duration is known.
func TestSpigoReference(t *testing.T) {
	for _, name := range []string{"lamp", "storage"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "spigo")
			input, err := os.ReadFile(filepath.Join(dir, "json_metrics", name+"_flow.json"))
			if err != nil {
				t.Fatal(err)
			}
			refJSON, err := os.ReadFile(filepath.Join(dir, "reference", name+"_sample.reference.json"))
			if err != nil {
				t.Fatal(err)
			}
			var ref reference
			if err := json.Unmarshal(refJSON, &ref); err != nil {
				t.Fatal(err)
			}
			// Small batches, so that parents are also resolved across
			// batches (traces are never cut, so nothing is lost).
			reqs, stats, err := decodeAll(t, input, V1, Options{BatchSpans: 16})
			if err != nil {
				t.Fatal(err)
			}
			if len(reqs) < 2 {
				t.Fatalf("want several requests with BatchSpans 16, got %d", len(reqs))
			}
			spans := flatten(reqs...)
			got := computeReference(t, spans)

			if stats.Spans != ref.Flow.Spans {
				t.Errorf("Stats.Spans = %d, reference %d", stats.Spans, ref.Flow.Spans)
			}
			if stats.Traces != ref.Flow.Traces || got.traces != ref.Flow.Traces {
				t.Errorf("traces: Stats %d, distinct in OTLP %d, reference %d", stats.Traces, got.traces, ref.Flow.Traces)
			}
			if !slices.Equal(got.services, ref.Flow.Services) {
				t.Errorf("services %v, reference %v", got.services, ref.Flow.Services)
			}
			wantEdges := map[string]int{}
			for _, e := range ref.Flow.Edges {
				wantEdges[e.Caller+" -> "+e.Callee] = e.Calls
			}
			if fmt.Sprint(got.edges) != fmt.Sprint(wantEdges) {
				t.Errorf("edges %v, reference %v", got.edges, wantEdges)
			}
			if fmt.Sprint(got.unanswered) != fmt.Sprint(ref.Flow.Unanswered) {
				t.Errorf("unanswered client sends %v, reference %v", got.unanswered, ref.Flow.Unanswered)
			}
			compareLatency(t, "server", got.server, ref.Flow.Latency.Server)
			compareLatency(t, "client", got.client, ref.Flow.Latency.Client)
			if stats.ParentsUnresolved != 0 {
				t.Errorf("%d parents were guessed; every parent is in the file", stats.ParentsUnresolved)
			}
		})
	}
}

type computed struct {
	traces         int64
	services       []string
	edges          map[string]int
	unanswered     map[string]int
	server, client map[string][]int64
}

func computeReference(t *testing.T, spans []flatSpan) computed {
	c := computed{edges: map[string]int{}, unanswered: map[string]int{},
		server: map[string][]int64{}, client: map[string][]int64{}}
	type key struct{ trace, span string }
	byID := map[key]flatSpan{}
	traces := map[string]bool{}
	services := map[string]bool{}
	for _, f := range spans {
		k := key{string(f.span.TraceId), string(f.span.SpanId)}
		if _, dup := byID[k]; dup {
			t.Errorf("span ID %x emitted twice", f.span.SpanId)
		}
		byID[k] = f
		traces[string(f.span.TraceId)] = true
		if f.hasService {
			services[f.service] = true
		}
	}
	answered := map[key]bool{}
	for _, f := range spans {
		sp := f.span
		if len(sp.ParentSpanId) > 0 {
			p, ok := byID[key{string(sp.TraceId), string(sp.ParentSpanId)}]
			if !ok {
				t.Errorf("span %x: parent %x not emitted", sp.SpanId, sp.ParentSpanId)
			}
			if sp.Kind == tracepb.Span_SPAN_KIND_SERVER && p.span.Kind == tracepb.Span_SPAN_KIND_CLIENT {
				answered[key{string(p.span.TraceId), string(p.span.SpanId)}] = true
				if p.service != f.service {
					c.edges[p.service+" -> "+f.service]++
				}
			}
		}
		if durationUnknown(sp) {
			continue
		}
		us := int64(sp.EndTimeUnixNano-sp.StartTimeUnixNano) / 1000
		switch sp.Kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			c.server[f.service] = append(c.server[f.service], us)
		case tracepb.Span_SPAN_KIND_CLIENT:
			c.client[f.service] = append(c.client[f.service], us)
		}
	}
	for _, f := range spans {
		if f.span.Kind == tracepb.Span_SPAN_KIND_CLIENT && !answered[key{string(f.span.TraceId), string(f.span.SpanId)}] {
			c.unanswered[f.service]++
		}
	}
	c.traces = int64(len(traces))
	for s := range services {
		c.services = append(c.services, s)
	}
	slices.Sort(c.services)
	return c
}

func compareLatency(t *testing.T, side string, got map[string][]int64, want map[string]refLatency) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s latency for services %v, reference %v", side, keys(got), keys(want))
	}
	for svc, w := range want {
		vals := slices.Sorted(slices.Values(got[svc]))
		if len(vals) != w.Count {
			t.Errorf("%s %s: %d values, reference %d", side, svc, len(vals), w.Count)
			continue
		}
		for q, wv := range w.NearestRank {
			var f float64
			fmt.Sscanf(q, "p%g", &f)
			rank := int(math.Ceil(f / 100 * float64(len(vals))))
			if gv := vals[rank-1]; gv != wv {
				t.Errorf("%s %s %s = %d µs, reference %d", side, svc, q, gv, wv)
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}
