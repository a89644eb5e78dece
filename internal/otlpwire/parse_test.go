package otlpwire

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestParseTestdata parses the OTLP/JSON requests in testdata/*.json
// (converted to protobuf) and checks every span against the proto decoding.
func TestParseTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			req, err := otlpjson.UnmarshalTraces(data)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			var tr Traces
			if err := Parse(&tr, raw); err != nil {
				t.Fatal(err)
			}
			checkAgainstProto(t, &tr, req)
		})
	}
}

func checkAgainstProto(t *testing.T, tr *Traces, req *coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	i := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, want := range ss.Spans {
				if i >= len(tr.Spans) {
					t.Fatalf("parsed %d spans, want more", len(tr.Spans))
				}
				got := &tr.Spans[i]
				i++
				var sp tracepb.Span
				if err := proto.Unmarshal(got.Raw, &sp); err != nil || !proto.Equal(&sp, want) {
					t.Fatalf("span %d raw bytes do not decode to the sent span: %v", i, err)
				}
				if got.Invalid != "" {
					continue
				}
				if string(got.TraceID[:]) != string(want.TraceId) || string(got.SpanID[:]) != string(want.SpanId) ||
					string(got.Name) != want.Name || got.Kind != int32(want.Kind) || got.Start != want.StartTimeUnixNano ||
					got.End != want.EndTimeUnixNano || got.Status != int32(want.Status.GetCode()) {
					t.Fatalf("span %d fields differ: %+v", i, got)
				}
				scope := &tr.Scopes[got.Scope]
				res := &tr.Resources[scope.Resource]
				if string(res.SchemaURL) != rs.SchemaUrl || string(scope.SchemaURL) != ss.SchemaUrl {
					t.Fatalf("schema URLs differ")
				}
				for _, kv := range rs.Resource.GetAttributes() {
					if kv.Key == "service.name" && string(res.Service) != kv.Value.GetStringValue() {
						t.Fatalf("service %q", res.Service)
					}
				}
				nScalar := 0
				for _, kv := range want.Attributes {
					switch kv.Value.GetValue().(type) {
					case *commonpb.AnyValue_StringValue, *commonpb.AnyValue_IntValue, *commonpb.AnyValue_BoolValue, *commonpb.AnyValue_DoubleValue:
						nScalar++
					}
				}
				if len(got.Attrs) != nScalar {
					t.Fatalf("span %d: %d scalar attributes, want %d", i, len(got.Attrs), nScalar)
				}
			}
		}
	}
	if i != len(tr.Spans) {
		t.Fatalf("parsed %d spans, want %d", len(tr.Spans), i)
	}
}

func TestValidation(t *testing.T) {
	base := func() *tracepb.Span {
		return &tracepb.Span{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(1), Name: "x", StartTimeUnixNano: 10, EndTimeUnixNano: 20}
	}
	cases := []struct {
		name   string
		mutate func(*tracepb.Span)
		want   string // substring of Invalid; "" = valid
	}{
		{"valid", func(*tracepb.Span) {}, ""},
		{"valid with parent", func(s *tracepb.Span) { s.ParentSpanId = otlptest.SpanID(2) }, ""},
		{"zero-length span", func(s *tracepb.Span) { s.EndTimeUnixNano = s.StartTimeUnixNano }, ""},
		{"missing trace ID", func(s *tracepb.Span) { s.TraceId = nil }, "trace ID must be 16 bytes"},
		{"short trace ID", func(s *tracepb.Span) { s.TraceId = s.TraceId[:8] }, "trace ID must be 16 bytes, got 8"},
		{"zero trace ID", func(s *tracepb.Span) { s.TraceId = make([]byte, 16) }, "trace ID is all zero"},
		{"long span ID", func(s *tracepb.Span) { s.SpanId = make([]byte, 9) }, "span ID must be 8 bytes"},
		{"zero span ID", func(s *tracepb.Span) { s.SpanId = make([]byte, 8) }, "span ID is all zero"},
		{"bad parent", func(s *tracepb.Span) { s.ParentSpanId = []byte{1, 2} }, "parent span ID"},
		{"no name", func(s *tracepb.Span) { s.Name = "" }, "name is missing"},
		{"no start", func(s *tracepb.Span) { s.StartTimeUnixNano = 0 }, "start time is missing"},
		{"end before start", func(s *tracepb.Span) { s.EndTimeUnixNano = 5 }, "end time is before start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			tc.mutate(s)
			raw, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
				ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{s}}}}}})
			var tr Traces
			if err := Parse(&tr, raw); err != nil {
				t.Fatal(err)
			}
			got := tr.Spans[0].Invalid
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Fatalf("Invalid = %q, want %q", got, tc.want)
			}
			if (got != "") != (tr.Invalid == 1) {
				t.Fatalf("Invalid count %d", tr.Invalid)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	good, _ := proto.Marshal(otlptest.TelemetrygenRequest(rand.New(rand.NewPCG(1, 2)), 4, time.Unix(1, 0)))
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"truncated", good[:len(good)-3]},
		{"bad tag", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"length past end", []byte{0x0a, 0x10, 0x01}},
		{"bad wire type", []byte{0x0f}},
	} {
		var tr Traces
		if err := Parse(&tr, tc.b); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// agrees with the protobuf library's decoding.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		if req, err := otlpjson.UnmarshalTraces(data); err == nil {
			raw, _ := proto.Marshal(req)
			f.Add(raw)
		}
	}
	raw, _ := proto.Marshal(otlptest.TelemetrygenRequest(rand.New(rand.NewPCG(1, 2)), 6, time.Unix(1, 0)))
	f.Add(raw)
	var tr Traces
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return
		}
		if err := Parse(&tr, b); err != nil {
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			// The walker skips fields it does not need and does not check
			// UTF-8, so it may accept what the proto library refuses.
			return
		}
		checkAgainstProto(t, &tr, &req)
	})
}

// BenchmarkParse measures the wire walk of a telemetrygen-like request of
// 512 spans. Compare runs with:
//
//	go test -run=^$ -bench=Parse -count=6 ./internal/otlpwire | benchstat -
func BenchmarkParse(b *testing.B) {
	raw, _ := proto.Marshal(otlptest.TelemetrygenRequest(rand.New(rand.NewPCG(1, 2)), 512, time.Unix(1, 0)))
	var tr Traces
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(&tr, raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
}

// BenchmarkProtoUnmarshal is the baseline: the protobuf library decoding the
// same request into Go structs.
func BenchmarkProtoUnmarshal(b *testing.B) {
	raw, _ := proto.Marshal(otlptest.TelemetrygenRequest(rand.New(rand.NewPCG(1, 2)), 512, time.Unix(1, 0)))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
}
