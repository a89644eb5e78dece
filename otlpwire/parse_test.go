package otlpwire

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"

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
				if over := overLimits(rs, want); over != "" && got.Invalid == "" {
					t.Fatalf("span %d is valid, but %s", i, over)
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
				wantAttrs, wantElems := expectAttrs(want.Attributes)
				if g := attrStrings(got.Attrs); !slices.Equal(g, wantAttrs) {
					t.Fatalf("span %d: attributes %q, want %q", i, g, wantAttrs)
				}
				if g := attrStrings(got.Elems); !slices.Equal(g, wantElems) {
					t.Fatalf("span %d: array elements %q, want %q", i, g, wantElems)
				}
				if res.Invalid == "" {
					wantAttrs, wantElems := expectAttrs(rs.Resource.GetAttributes())
					if g := attrStrings(res.Attrs); !slices.Equal(g, wantAttrs) {
						t.Fatalf("resource attributes %q, want %q", g, wantAttrs)
					}
					if g := attrStrings(res.Elems); !slices.Equal(g, wantElems) {
						t.Fatalf("resource array elements %q, want %q", g, wantElems)
					}
				}
			}
		}
	}
	if i != len(tr.Spans) {
		t.Fatalf("parsed %d spans, want %d", len(tr.Spans), i)
	}
}

// renderProto renders a scalar value as Parse does; ok is false for other
// values.
func renderProto(v *commonpb.AnyValue) (string, bool) {
	switch v := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return v.StringValue, true
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(v.IntValue, 10), true
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(v.BoolValue), true
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(v.DoubleValue, 'g', -1, 64), true
	}
	return "", false
}

// expectAttrs computes, from the protobuf library's decoding, the
// attributes and array elements Parse collects from kvs (of a span or
// resource within the limits), as "key=value" strings.
func expectAttrs(kvs []*commonpb.KeyValue) (attrs, elems []string) {
	for _, kv := range kvs {
		if s, ok := renderProto(kv.Value); ok {
			attrs = append(attrs, kv.Key+"="+s)
			continue
		}
		n := 0
		for _, e := range kv.Value.GetArrayValue().GetValues() {
			if n == MaxArrayElements || len(elems) == MaxAttributes {
				break
			}
			if s, ok := renderProto(e); ok {
				elems = append(elems, kv.Key+"="+s)
				n++
			}
		}
	}
	return attrs, elems
}

func attrStrings(attrs []Attr) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, string(a.Key)+"="+string(a.Value))
	}
	return out
}

// overLimits names the limit the span want of rs exceeds, computed from
// the protobuf library's decoding; "" if none.
func overLimits(rs *tracepb.ResourceSpans, want *tracepb.Span) string {
	var service string
	for _, kv := range rs.GetResource().GetAttributes() {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			if kv.Key == "service.name" {
				service = v.StringValue
			}
		case *commonpb.AnyValue_IntValue, *commonpb.AnyValue_BoolValue, *commonpb.AnyValue_DoubleValue:
			if kv.Key == "service.name" {
				service = "" // rendered short
			}
		}
	}
	longKey := func(kvs []*commonpb.KeyValue) bool {
		return slices.ContainsFunc(kvs, func(kv *commonpb.KeyValue) bool { return len(kv.Key) > MaxAttrKeyBytes })
	}
	switch res := rs.GetResource().GetAttributes(); {
	case len(want.Name) > MaxNameBytes:
		return "its name is too long"
	case len(want.Attributes) > MaxAttributes:
		return "it has too many attributes"
	case longKey(want.Attributes):
		return "it has a long attribute key"
	case len(service) > MaxNameBytes:
		return "its service.name is too long"
	case len(res) > MaxAttributes:
		return "its resource has too many attributes"
	case longKey(res):
		return "its resource has a long attribute key"
	}
	return ""
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
		{"name at the limit", func(s *tracepb.Span) { s.Name = strings.Repeat("n", MaxNameBytes) }, ""},
		{"name over the limit", func(s *tracepb.Span) { s.Name = strings.Repeat("n", 40000) }, "name is 40000 bytes, the limit is 4096"},
		{"attribute key at the limit", func(s *tracepb.Span) { s.Attributes = attrs(1, MaxAttrKeyBytes) }, ""},
		{"attribute key over the limit", func(s *tracepb.Span) { s.Attributes = attrs(3, 64<<10) }, "attribute key is 65536 bytes, the limit is 1024"},
		{"non-scalar attribute key over the limit", func(s *tracepb.Span) {
			s.Attributes = []*commonpb.KeyValue{{Key: strings.Repeat("k", MaxAttrKeyBytes+1), Value: &commonpb.AnyValue{
				Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{}}}}}
		}, "attribute key is 1025 bytes"},
		{"attributes at the limit", func(s *tracepb.Span) { s.Attributes = attrs(MaxAttributes, 8) }, ""},
		{"attributes over the limit", func(s *tracepb.Span) { s.Attributes = attrs(MaxAttributes+1, 8) }, "has 1025 attributes, the limit is 1024"},
		{"long key past the attribute limit", func(s *tracepb.Span) {
			s.Attributes = append(attrs(MaxAttributes+5, 8), otlptest.Str(strings.Repeat("k", 2000), "v"))
		}, "has 1030 attributes, the limit is 1024"},
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
				t.Fatalf("Invalid = %.300q, want %q", got, tc.want)
			}
			if len(got) > 300 {
				t.Fatalf("message of %d bytes: names must be cut", len(got))
			}
			if len(tr.Spans[0].Attrs) > MaxAttributes {
				t.Fatalf("%d attributes collected", len(tr.Spans[0].Attrs))
			}
			if (got != "") != (tr.Invalid == 1) {
				t.Fatalf("Invalid count %d", tr.Invalid)
			}
		})
	}
}

// attrs returns n string attributes with distinct keys of keyLen bytes.
func attrs(n, keyLen int) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, n)
	for i := range out {
		key := fmt.Sprintf("%0*d", keyLen, i)
		out[i] = otlptest.Str(key[len(key)-keyLen:], "v")
	}
	return out
}

// TestResourceLimits checks that a resource beyond a limit refuses all its
// spans and keeps nothing an index could use, while another resource of
// the same request is unaffected.
func TestResourceLimits(t *testing.T) {
	cases := []struct {
		name  string
		attrs []*commonpb.KeyValue
		want  string // substring of the spans' Invalid; "" = valid
	}{
		{"valid", []*commonpb.KeyValue{otlptest.Str("service.name", "svc")}, ""},
		{"service.name at the limit", []*commonpb.KeyValue{otlptest.Str("service.name", strings.Repeat("s", MaxNameBytes))}, ""},
		{"service.name over the limit", []*commonpb.KeyValue{otlptest.Str("service.name", strings.Repeat("s", 40000))},
			"resource service.name is 40000 bytes, the limit is 4096"},
		{"attribute key over the limit", append(attrs(2, 8), otlptest.Str(strings.Repeat("k", 64<<10), "v")),
			"resource attribute key is 65536 bytes, the limit is 1024"},
		{"attributes at the limit", attrs(MaxAttributes, 4), ""},
		{"attributes over the limit", attrs(MaxAttributes+1, 4), "resource has 1025 attributes, the limit is 1024"},
	}
	span := func(i uint64) *tracepb.Span {
		return &tracepb.Span{TraceId: otlptest.TraceID(i), SpanId: otlptest.SpanID(i), Name: "op", StartTimeUnixNano: 10, EndTimeUnixNano: 20}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
				{
					Resource:   &resourcepb.Resource{Attributes: tc.attrs},
					ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span(1), span(2)}}, {Spans: []*tracepb.Span{span(3)}}},
				},
				{
					Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", "innocent")}},
					ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span(4)}}},
				},
			}}
			raw := mustProto(t, req)
			// The same request with each ResourceSpans' resource field
			// after its scope_spans: the order of fields must not matter.
			var reordered []byte
			for _, rs := range req.ResourceSpans {
				b := mustProto(t, &tracepb.ResourceSpans{ScopeSpans: rs.ScopeSpans})
				b = protowire.AppendTag(b, 1, protowire.BytesType)
				b = protowire.AppendBytes(b, mustProto(t, rs.Resource))
				reordered = protowire.AppendTag(reordered, 1, protowire.BytesType)
				reordered = protowire.AppendBytes(reordered, b)
			}
			for _, b := range [][]byte{raw, reordered} {
				var tr Traces
				if err := Parse(&tr, b); err != nil {
					t.Fatal(err)
				}
				for i, s := range tr.Spans[:3] {
					if (tc.want == "") != (s.Invalid == "") || !strings.Contains(s.Invalid, tc.want) {
						t.Fatalf("span %d: Invalid = %q, want %q", i, s.Invalid, tc.want)
					}
				}
				if s := tr.Spans[3]; s.Invalid != "" {
					t.Fatalf("the other resource's span is invalid: %q", s.Invalid)
				}
				res := &tr.Resources[0]
				if (tc.want == "") != (res.Invalid == "") {
					t.Fatalf("resource Invalid = %q", res.Invalid)
				}
				if res.Invalid != "" && (len(res.Attrs) != 0 || len(res.Service) != 0) {
					t.Fatalf("refused resource kept %d attributes, service %.20q", len(res.Attrs), res.Service)
				}
				if want := map[bool]int{true: 0, false: 3}[tc.want == ""]; tr.Invalid != want {
					t.Fatalf("Invalid count %d, want %d", tr.Invalid, want)
				}
				if string(tr.Resources[1].Service) != "innocent" {
					t.Fatalf("other service %q", tr.Resources[1].Service)
				}
			}
		})
	}
}

// millionAttributesRequest is a request with a span "big" of n string
// attributes, then a span "small" of 3, built on the wire (building n
// KeyValue messages first is slow under the race detector).
func millionAttributesRequest(n int) []byte {
	small := &tracepb.Span{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(2), Name: "small", StartTimeUnixNano: 10, EndTimeUnixNano: 20,
		Attributes: attrs(3, 8)}
	big, _ := proto.Marshal(&tracepb.Span{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(1), Name: "big", StartTimeUnixNano: 10, EndTimeUnixNano: 20})
	big = slices.Grow(big, n*18)
	key := []byte("k0000000")
	for i := range n {
		for j, v := len(key)-1, i; j > 0; j, v = j-1, v/10 {
			key[j] = byte('0' + v%10)
		}
		// Span.attributes { key, value { string_value: "v" } }
		big = append(big, 0x4a, 15, 0x0a, 8)
		big = append(big, key...)
		big = append(big, 0x12, 3, 0x0a, 1, 'v')
	}
	scope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), big)
	scope = protowire.AppendBytes(protowire.AppendTag(scope, 2, protowire.BytesType), mustProtoSpan(small))
	rs := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), scope)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)
}

func mustProtoSpan(s *tracepb.Span) []byte {
	b, err := proto.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestMillionAttributes checks that a span with 1,000,000 attributes is
// refused without collecting them, next to a valid span.
func TestMillionAttributes(t *testing.T) {
	raw := millionAttributesRequest(1_000_000)
	var tr Traces
	if err := Parse(&tr, raw); err != nil {
		t.Fatal(err)
	}
	if got := tr.Spans[0].Invalid; !strings.Contains(got, `span "big": has 1000000 attributes, the limit is 1024`) {
		t.Fatalf("big span: Invalid = %q", got)
	}
	if len(tr.Spans[0].Attrs) > MaxAttributes {
		t.Fatalf("%d attributes collected", len(tr.Spans[0].Attrs))
	}
	if s := tr.Spans[1]; s.Invalid != "" || len(s.Attrs) != 3 {
		t.Fatalf("small span: %q, %d attributes", s.Invalid, len(s.Attrs))
	}
	// The wire building above agrees with the protobuf library.
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(millionAttributesRequest(3), &req); err != nil {
		t.Fatal(err)
	}
	if a := req.ResourceSpans[0].ScopeSpans[0].Spans[0].Attributes; len(a) != 3 || a[2].Key != "k0000002" || a[2].Value.GetStringValue() != "v" {
		t.Fatalf("attributes %v", a)
	}
}

func mustProto(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	// Around the limits.
	limited := &tracepb.Span{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(1), Name: strings.Repeat("n", MaxNameBytes),
		StartTimeUnixNano: 1, EndTimeUnixNano: 2, Attributes: attrs(MaxAttributes, 4)}
	raw, _ = proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: append(attrs(3, MaxAttrKeyBytes), otlptest.Str("service.name", strings.Repeat("s", MaxNameBytes)))},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{limited}}}}}})
	f.Add(raw)
	// Array attributes: header arrays, the element bound, mixed elements.
	f.Add(mustProto(f, headerRequest(3)))
	raw, _ = proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{arr("host.ip", sv("10.0.0.1"), iv(3))}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(1), Name: "a",
			StartTimeUnixNano: 1, EndTimeUnixNano: 2, Attributes: []*commonpb.KeyValue{arr("big", strs(MaxArrayElements+1)...),
				arr("m", sv("x"), &commonpb.AnyValue{}, &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{}}})}}}}}}}})
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
//	go test -run=^$ -bench=Parse -count=6 ./otlpwire | benchstat -
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

// BenchmarkParseMillionAttributes measures the refusal of a span with
// 1,000,000 attributes (about 15 MB): past MaxAttributes they are only
// skipped, so the cost is a scan of the bytes.
func BenchmarkParseMillionAttributes(b *testing.B) {
	raw := millionAttributesRequest(1_000_000)
	var tr Traces
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(&tr, raw); err != nil || tr.Invalid != 1 {
			b.Fatal(err, tr.Invalid)
		}
	}
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

// arr returns an attribute whose value is an array of vs.
func arr(key string, vs ...*commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: key, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}}
}

func sv(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func iv(i int64) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}
}

// strs returns n string values "v0", "v1", ….
func strs(n int) []*commonpb.AnyValue {
	out := make([]*commonpb.AnyValue, n)
	for i := range out {
		out[i] = sv("v" + strconv.Itoa(i))
	}
	return out
}

// kvWire encodes a KeyValue with the given key and one value field per
// AnyValue, so that a repeated value field can be tested.
func kvWire(t *testing.T, key string, values ...*commonpb.AnyValue) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	for _, v := range values {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, mustProto(t, v))
	}
	return b
}

// TestParseArrays checks how array attributes are collected: scalar
// elements in Elems under the array's key, never in Attrs, within the
// bounds, and merged like protobuf does.
func TestParseArrays(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := []struct {
		name      string
		attrs     []*commonpb.KeyValue
		raw       [][]byte // extra span attributes, encoded KeyValues
		resAttrs  []*commonpb.KeyValue
		wantAttrs []string
		wantElems []string
		wantRes   []string // resource elements
		invalid   string
	}{
		{name: "string array", attrs: []*commonpb.KeyValue{arr("http.request.header.x-request-id", sv("rid-123"))},
			wantElems: []string{"http.request.header.x-request-id=rid-123"}},
		{name: "baggage header", attrs: []*commonpb.KeyValue{
			otlptest.Str("http.method", "GET"),
			arr("http.request.header.baggage", sv("correlation_id=corr-r2-3,other=x%20y")),
		}, wantAttrs: []string{"http.method=GET"}, wantElems: []string{"http.request.header.baggage=correlation_id=corr-r2-3,other=x%20y"}},
		{name: "int array", attrs: []*commonpb.KeyValue{arr("codes", iv(1), iv(-2), iv(300))},
			wantElems: []string{"codes=1", "codes=-2", "codes=300"}},
		{name: "mixed", attrs: []*commonpb.KeyValue{arr("m",
			sv("a"), iv(7),
			&commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}},
			&commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}},
			&commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte("b")}},
			&commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{otlptest.Str("k", "v")}}}},
			&commonpb.AnyValue{},
			sv(""), sv(long),
		)}, wantElems: []string{"m=a", "m=7", "m=true", "m=0.25", "m=", "m=" + long}},
		{name: "empty array", attrs: []*commonpb.KeyValue{arr("e"), otlptest.Str("s", "1")}, wantAttrs: []string{"s=1"}},
		{name: "nested arrays ignored", attrs: []*commonpb.KeyValue{arr("n",
			&commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{sv("inner")}}}},
			sv("outer"))}, wantElems: []string{"n=outer"}},
		{name: "over the element bound", attrs: []*commonpb.KeyValue{arr("big", strs(MaxArrayElements+36)...)},
			wantElems: func() []string {
				var out []string
				for i := range MaxArrayElements {
					out = append(out, "big=v"+strconv.Itoa(i))
				}
				return out
			}()},
		{name: "total bound per span", attrs: func() []*commonpb.KeyValue {
			var out []*commonpb.KeyValue
			for i := range 20 {
				out = append(out, arr("a"+strconv.Itoa(i), strs(MaxArrayElements)...))
			}
			return out
		}(), wantElems: func() []string {
			var out []string
			for i := range MaxAttributes {
				out = append(out, "a"+strconv.Itoa(i/MaxArrayElements)+"=v"+strconv.Itoa(i%MaxArrayElements))
			}
			return out
		}()},
		{name: "arrays count once against MaxAttributes", attrs: func() []*commonpb.KeyValue {
			out := attrs(MaxAttributes-1, 8)
			return append(out, arr("last", strs(3)...))
		}(), wantAttrs: func() []string {
			out := attrStrings(nil)
			for _, kv := range attrs(MaxAttributes-1, 8) {
				out = append(out, kv.Key+"=v")
			}
			return out
		}(), wantElems: []string{"last=v0", "last=v1", "last=v2"}},
		{name: "array key over the limit", attrs: []*commonpb.KeyValue{arr(strings.Repeat("k", MaxAttrKeyBytes+1), sv("v"))},
			invalid: "attribute key is 1025 bytes"},
		{name: "array value fields merge", raw: [][]byte{
			kvWire(t, "merged", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{sv("a")}}}},
				&commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{sv("b")}}}}),
			kvWire(t, "replaced", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{sv("a")}}}},
				sv("scalar")),
			kvWire(t, "kept", sv("scalar"), &commonpb.AnyValue{}),
			kvWire(t, "rearrayed", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{sv("a")}}}},
				sv("scalar"), &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{sv("c")}}}}),
		}, wantAttrs: []string{"replaced=scalar", "kept=scalar"}, wantElems: []string{"merged=a", "merged=b", "rearrayed=c"}},
		{name: "scalars beside arrays", attrs: []*commonpb.KeyValue{otlptest.Str("long", long), arr("a", sv("x")), otlptest.Str("short", "s")},
			raw:       [][]byte{append(kvWire(t, "unknown field kept", sv("v")), 0x12, 2, 0x50, 1)}, // value { field 10: 1 }
			wantAttrs: []string{"long=" + long, "short=s", "unknown field kept=v"}, wantElems: []string{"a=x"}},
		{name: "resource array", resAttrs: []*commonpb.KeyValue{otlptest.Str("service.name", "svc"), arr("host.ip", sv("10.0.0.1"), sv("fe80::1"))},
			wantRes: []string{"host.ip=10.0.0.1", "host.ip=fe80::1"}},
		{name: "service.name array is no service", resAttrs: []*commonpb.KeyValue{arr("service.name", sv("svc"))},
			wantRes: []string{"service.name=svc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			span := mustProto(t, &tracepb.Span{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(1), Name: "op",
				StartTimeUnixNano: 10, EndTimeUnixNano: 20, Attributes: tc.attrs})
			for _, kv := range tc.raw {
				span = protowire.AppendTag(span, 9, protowire.BytesType)
				span = protowire.AppendBytes(span, kv)
			}
			scope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), span)
			rs := mustProto(t, &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: tc.resAttrs}})
			rs = protowire.AppendBytes(protowire.AppendTag(rs, 2, protowire.BytesType), scope)
			raw := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)

			var req coltracepb.ExportTraceServiceRequest
			if err := proto.Unmarshal(raw, &req); err != nil {
				t.Fatal(err)
			}
			var tr Traces
			// Twice: the second parse reuses the slices of the first.
			for range 2 {
				if err := Parse(&tr, raw); err != nil {
					t.Fatal(err)
				}
				s := &tr.Spans[0]
				if tc.invalid != "" || s.Invalid != "" {
					if !strings.Contains(s.Invalid, tc.invalid) || tc.invalid == "" {
						t.Fatalf("Invalid = %q, want %q", s.Invalid, tc.invalid)
					}
					continue
				}
				if g := attrStrings(s.Attrs); !slices.Equal(g, tc.wantAttrs) {
					t.Fatalf("attributes %q, want %q", g, tc.wantAttrs)
				}
				if g := attrStrings(s.Elems); !slices.Equal(g, tc.wantElems) {
					t.Fatalf("elements %q, want %q", g, tc.wantElems)
				}
				res := &tr.Resources[0]
				if g := attrStrings(res.Elems); !slices.Equal(g, tc.wantRes) {
					t.Fatalf("resource elements %q, want %q", g, tc.wantRes)
				}
				if len(res.Service) != 0 && string(res.Service) != "svc" {
					t.Fatalf("service %q", res.Service)
				}
				if tc.name == "service.name array is no service" && len(res.Service) != 0 {
					t.Fatalf("an array element became the service name: %q", res.Service)
				}
				// The protobuf library's decoding agrees.
				checkAgainstProto(t, &tr, &req)
			}
		})
	}
}

// TestParseArraysMalformed checks that an array whose contents do not
// decode is ignored rather than failing the request, as before elements
// were collected.
func TestParseArraysMalformed(t *testing.T) {
	// KeyValue{key: "bad", value: AnyValue{array_value: <truncated>}}
	badArray := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), []byte{0x0a, 0x05, 0x0a})
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "bad")
	kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), badArray)
	span := mustProto(t, &tracepb.Span{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(1), Name: "op",
		StartTimeUnixNano: 10, EndTimeUnixNano: 20, Attributes: []*commonpb.KeyValue{arr("good", sv("g"))}})
	span = protowire.AppendBytes(protowire.AppendTag(span, 9, protowire.BytesType), kv)
	scope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), span)
	rs := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), scope)
	raw := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)
	var tr Traces
	if err := Parse(&tr, raw); err != nil {
		t.Fatal(err)
	}
	if s := &tr.Spans[0]; s.Invalid != "" || !slices.Equal(attrStrings(s.Elems), []string{"good=g"}) {
		t.Fatalf("span %q, elements %q", s.Invalid, attrStrings(s.Elems))
	}
}

// headerRequest is a request of n spans, each with the two header arrays
// OTel HTTP instrumentations record (x-request-id and baggage), an int
// array and a few scalar attributes.
func headerRequest(n int) *coltracepb.ExportTraceServiceRequest {
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		spans[i] = &tracepb.Span{TraceId: otlptest.TraceID(uint64(i/8 + 1)), SpanId: otlptest.SpanID(uint64(i + 1)), Name: "GET /api",
			Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 10, EndTimeUnixNano: 20, Attributes: []*commonpb.KeyValue{
				otlptest.Str("http.request.method", "GET"),
				otlptest.Int("http.response.status_code", 200),
				arr("http.request.header.x-request-id", sv("rid-"+strconv.Itoa(i))),
				arr("http.request.header.baggage", sv("correlation_id=corr-"+strconv.Itoa(i)+",other=x%20y")),
				arr("ports", iv(80), iv(443)),
			}}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", "api")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}}
}

// TestParseArraysNoAllocs checks that parsing array attributes allocates
// nothing once a Traces value has grown.
func TestParseArraysNoAllocs(t *testing.T) {
	raw := mustProto(t, headerRequest(64))
	var tr Traces
	if err := Parse(&tr, raw); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _ = Parse(&tr, raw) }); n != 0 {
		t.Fatalf("%v allocations per Parse", n)
	}
	if got := len(tr.Spans[63].Elems); got != 4 {
		t.Fatalf("%d elements", got)
	}
}

// BenchmarkParseArrays measures the wire walk of 512 spans that carry
// request headers as string arrays (headerRequest). Compare runs with:
//
//	go test -run=^$ -bench=ParseArrays -count=6 ./otlpwire | benchstat -
func BenchmarkParseArrays(b *testing.B) {
	raw := mustProto(b, headerRequest(512))
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
