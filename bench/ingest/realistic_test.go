package main

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// decoded is one rendered request, decoded, with each span's service.
type decoded struct {
	req     *coltracepb.ExportTraceServiceRequest
	spans   []*tracepb.Span
	service map[*tracepb.Span]string
	byID    map[string]*tracepb.Span // span ID → span
}

// decode decodes a rendered request and indexes its spans.
func decode(t *testing.T, b []byte) decoded {
	t.Helper()
	d := decoded{req: &coltracepb.ExportTraceServiceRequest{}, service: map[*tracepb.Span]string{}, byID: map[string]*tracepb.Span{}}
	if err := proto.Unmarshal(b, d.req); err != nil {
		t.Fatal(err)
	}
	for _, rs := range d.req.ResourceSpans {
		svc := attr(rs.GetResource().GetAttributes(), "service.name").GetStringValue()
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				d.spans = append(d.spans, s)
				d.service[s] = svc
				d.byID[string(s.SpanId)] = s
			}
		}
	}
	return d
}

// attr is the value of the attribute key in kvs, nil when absent.
func attr(kvs []*commonpb.KeyValue, key string) *commonpb.AnyValue {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

// TestRealisticShape checks the realistic templates: the attribute counts,
// the 20 services and the databases, the call trees (CLIENT → SERVER
// across resources, database calls without a server half, nesting in time,
// depth and fan-out), the error rate, the average size, and that render
// keeps the parent links and changes every app.request_id (high
// cardinality) or none (low).
func TestRealisticShape(t *testing.T) {
	for _, card := range []string{cardinalityHigh, cardinalityLow} {
		t.Run(card, func(t *testing.T) {
			if err := setCardinality(card); err != nil {
				t.Fatal(err)
			}
			defer setCardinality(cardinalityLow)
			const pool, spans = 16, 1000
			tps, err := buildRealisticTemplates(pool, spans, 42)
			if err != nil {
				t.Fatal(err)
			}
			if b := bytesPerSpan(tps); b < 380 || b > 470 {
				t.Errorf("%.1f bytes/span encoded, want 380–470 (about 424)", b)
			} else {
				t.Logf("%.1f bytes/span encoded", b)
			}
			services := map[string]bool{}
			dbSystems := map[string]bool{}
			var httpServer, errors5xx, dbCalls int
			maxDepth, maxFan := 0, 0
			now := time.Now().Add(time.Hour)
			for i, tp := range tps {
				a := decode(t, tp.render(nil, 1, now))
				b := decode(t, tp.render(nil, 2, now))
				if len(a.spans) != spans || tp.spans != spans {
					t.Fatalf("template %d: %d spans (template says %d), want %d", i, len(a.spans), tp.spans, spans)
				}
				seen := map[string]bool{}
				for _, rs := range a.req.ResourceSpans {
					ra := rs.GetResource().GetAttributes()
					if len(ra) != realisticResourceAttrs {
						t.Fatalf("template %d: resource with %d attributes, want 7", i, len(ra))
					}
					for _, k := range []string{"service.name", "service.version", "service.instance.id", "host.name",
						"deployment.environment.name", "cloud.region", "k8s.pod.name"} {
						if attr(ra, k).GetStringValue() == "" {
							t.Fatalf("template %d: resource without %s", i, k)
						}
					}
					svc := attr(ra, "service.name").GetStringValue()
					if seen[svc] {
						t.Fatalf("template %d: two resources of %s", i, svc)
					}
					seen[svc] = true
					services[svc] = true
				}
				children := map[string][]*tracepb.Span{}
				for _, s := range a.spans {
					children[string(s.ParentSpanId)] = append(children[string(s.ParentSpanId)], s)
				}
				for j, s := range a.spans {
					if n := len(s.Attributes); n != realisticSpanAttrs {
						t.Fatalf("template %d span %q: %d attributes, want 10", i, s.Name, n)
					}
					// app.request_id: 32 lowercase hex digits, different in the
					// second render.
					ra, rb := attr(s.Attributes, requestIDKey).GetStringValue(), attr(b.spans[j].Attributes, requestIDKey).GetStringValue()
					if _, err := hex.DecodeString(ra); err != nil || len(ra) != 32 || ra != string(bytes.ToLower([]byte(ra))) {
						t.Fatalf("app.request_id %q", ra)
					}
					if rewriteRequestIDs && ra == rb {
						t.Fatalf("template %d span %d: app.request_id %s the same in two renders", i, j, ra)
					}
					if !rewriteRequestIDs && ra != rb {
						t.Fatalf("template %d span %d: app.request_id %s rewritten (%s) with low cardinality", i, j, ra, rb)
					}
					if s.EndTimeUnixNano < s.StartTimeUnixNano {
						t.Fatalf("span ends before it starts")
					}
					// Parent links and nesting in time, after render.
					if len(s.ParentSpanId) > 0 {
						p := a.byID[string(s.ParentSpanId)]
						if p == nil || !bytes.Equal(p.TraceId, s.TraceId) {
							t.Fatalf("template %d span %q: parent missing or in another trace", i, s.Name)
						}
						if s.StartTimeUnixNano < p.StartTimeUnixNano || s.EndTimeUnixNano > p.EndTimeUnixNano {
							t.Fatalf("template %d span %q: not inside its parent %q", i, s.Name, p.Name)
						}
					}
					code := attr(s.Attributes, "http.response.status_code")
					switch {
					case s.Kind == tracepb.Span_SPAN_KIND_CLIENT && attr(s.Attributes, "db.system.name") != nil:
						dbCalls++
						dbSystems[attr(s.Attributes, "db.system.name").GetStringValue()] = true
						for _, k := range []string{"db.namespace", "db.operation.name", "db.query.text", "server.address"} {
							if attr(s.Attributes, k).GetStringValue() == "" {
								t.Fatalf("database call without %s", k)
							}
						}
						if attr(s.Attributes, "server.port").GetIntValue() == 0 || len(children[string(s.SpanId)]) != 0 {
							t.Fatalf("database call without server.port, or with a server half")
						}
					case s.Kind == tracepb.Span_SPAN_KIND_CLIENT:
						k := children[string(s.SpanId)]
						if len(k) != 1 || k[0].Kind != tracepb.Span_SPAN_KIND_SERVER || a.service[k[0]] == a.service[s] ||
							a.service[k[0]] != attr(s.Attributes, "server.address").GetStringValue() {
							t.Fatalf("HTTP client span %q of %s without its SERVER child in the callee's resource", s.Name, a.service[s])
						}
					case s.Kind == tracepb.Span_SPAN_KIND_SERVER:
						httpServer++
						for _, k := range []string{"http.request.method", "url.path", "http.route", "server.address",
							"network.peer.address", "user_agent.original", "enduser.id"} {
							if attr(s.Attributes, k).GetStringValue() == "" {
								t.Fatalf("HTTP span without %s", k)
							}
						}
						if code.GetIntValue() == 0 || attr(s.Attributes, "server.port").GetIntValue() == 0 {
							t.Fatalf("HTTP span without an int status code or port")
						}
						isErr := s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR
						if (code.GetIntValue() >= 500) != isErr {
							t.Fatalf("status %d with span status %v", code.GetIntValue(), s.GetStatus())
						}
						if isErr {
							errors5xx++
						}
						// Depth: the services from the root down to here; fan-out:
						// the services this one calls.
						depth := 1
						for p := s; len(p.ParentSpanId) > 0; p = a.byID[string(p.ParentSpanId)] {
							if p.Kind == tracepb.Span_SPAN_KIND_SERVER && len(p.ParentSpanId) > 0 {
								depth++
							}
						}
						maxDepth = max(maxDepth, depth)
						fan := 0
						for _, c := range children[string(s.SpanId)] {
							if attr(c.Attributes, "db.system.name") == nil {
								fan++
							}
						}
						maxFan = max(maxFan, fan)
					default:
						t.Fatalf("span of kind %v", s.Kind)
					}
				}
			}
			if len(services) != len(realisticServices) || len(services) != 20 {
				t.Errorf("%d services reached over the pool, want 20: %v", len(services), services)
			}
			if dbCalls == 0 || len(dbSystems) != 3 {
				t.Errorf("%d database calls, systems %v; want postgresql, redis and mongodb", dbCalls, dbSystems)
			}
			if f := float64(errors5xx) / float64(httpServer); f < 0.003 || f > 0.025 {
				t.Errorf("%d of %d HTTP requests answered 5xx (%.2f %%), want about 1 %%", errors5xx, httpServer, 100*f)
			}
			if maxDepth < 5 || maxDepth > 6 || maxFan < 3 || maxFan > 4 {
				t.Errorf("deepest trace %d services, widest fan-out %d; want depth up to 6 and fan-out up to 4", maxDepth, maxFan)
			}
			t.Logf("%d HTTP requests (%d 5xx), %d database calls, depth ≤ %d, fan-out ≤ %d", httpServer, errors5xx, dbCalls, maxDepth, maxFan)
		})
	}
}

// TestRenderAllocs checks that render allocates nothing once its buffer
// is big enough, for both shapes.
func TestRenderAllocs(t *testing.T) {
	for _, shape := range []string{shapeSmall, shapeRealistic} {
		t.Run(shape, func(t *testing.T) {
			tps, err := buildShapeTemplates(shape, 2, 1000, 7)
			if err != nil {
				t.Fatal(err)
			}
			buf := tps[0].render(nil, 1, time.Now())
			seq := uint64(1)
			now := time.Now()
			if n := testing.AllocsPerRun(100, func() {
				seq++
				buf = tps[seq%2].render(buf, seq, now)
			}); n != 0 {
				t.Errorf("render allocates %.1f times per call", n)
			}
		})
	}
}

// BenchmarkRender measures render per request of 1000 spans.
func BenchmarkRender(b *testing.B) {
	for _, shape := range []string{shapeSmall, shapeRealistic} {
		b.Run(shape, func(b *testing.B) {
			tps, err := buildShapeTemplates(shape, 4, 1000, 7)
			if err != nil {
				b.Fatal(err)
			}
			buf := tps[0].render(nil, 1, time.Now())
			now := time.Now()
			b.SetBytes(int64(len(tps[0].raw)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				buf = tps[i%4].render(buf, uint64(i), now)
			}
		})
	}
}
