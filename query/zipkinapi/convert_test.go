package zipkinapi

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/zipkin"
)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intKV(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func boolKV(k string, v bool) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
}

// TestConvertSpan checks the OTLP → Zipkin mapping on single spans.
func TestConvertSpan(t *testing.T) {
	const start = uint64(1714564620000000000)
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "Svc"), str("env", "prod")}}
	otel := &commonpb.InstrumentationScope{Name: "lib", Version: "1"}
	zk := &commonpb.InstrumentationScope{Name: zipkin.ScopeName}
	base := func(kind tracepb.Span_SpanKind, attrs ...*commonpb.KeyValue) *tracepb.Span {
		return &tracepb.Span{TraceId: make16(1), SpanId: make8(2), Name: "Op", Kind: kind,
			StartTimeUnixNano: start, EndTimeUnixNano: start + 2_000_000, Attributes: attrs}
	}
	local := &endpoint{ServiceName: "svc"}
	otelTags := []tag{{"env", "prod"}, {"otel.scope.name", "lib"}, {"otel.scope.version", "1"}}
	for _, tt := range []struct {
		name  string
		scope *commonpb.InstrumentationScope
		span  *tracepb.Span
		check func(t *testing.T, z zspan)
	}{
		{"remote from service.peer.name over peer.service", otel,
			base(tracepb.Span_SPAN_KIND_CLIENT, str("service.peer.name", "A"), str("peer.service", "b"),
				str("network.peer.address", "::ffff:10.0.0.1"), intKV("net.peer.port", 81)),
			func(t *testing.T, z zspan) {
				want := &endpoint{ServiceName: "a", IPv4: "10.0.0.1", Port: 81}
				if !reflect.DeepEqual(z.Remote, want) {
					t.Errorf("remote %+v", z.Remote)
				}
				if v, ok := z.tagValue("peer.service"); !ok || v != "b" {
					t.Errorf("peer.service tag %q %v (the exporter keeps the one it did not use)", v, ok)
				}
			}},
		{"remote IPv6 with zone, no name", otel,
			base(tracepb.Span_SPAN_KIND_CLIENT, str("network.peer.address", "fe80::1%eth0")),
			func(t *testing.T, z zspan) {
				if want := (&endpoint{IPv6: "fe80::1"}); !reflect.DeepEqual(z.Remote, want) {
					t.Errorf("remote %+v", z.Remote)
				}
			}},
		{"bad remote address leaves no endpoint and no tag", otel,
			base(tracepb.Span_SPAN_KIND_CLIENT, str("network.peer.address", "not-an-ip"), str("net.peer.port", "x")),
			func(t *testing.T, z zspan) {
				if z.Remote != nil || !reflect.DeepEqual(z.Tags, otelTags) {
					t.Errorf("remote %+v tags %v", z.Remote, z.Tags)
				}
			}},
		{"server.address hostname stays a tag", otel,
			base(tracepb.Span_SPAN_KIND_CLIENT, str("server.address", "api.example.com"), intKV("server.port", 443)),
			func(t *testing.T, z zspan) {
				if z.Remote != nil {
					t.Errorf("remote %+v", z.Remote)
				}
				if v, _ := z.tagValue("server.address"); v != "api.example.com" {
					t.Errorf("tags %v", z.Tags)
				}
			}},
		{"client.address on a server span", otel,
			base(tracepb.Span_SPAN_KIND_SERVER, str("client.address", "10.9.9.9"), intKV("client.port", 5000)),
			func(t *testing.T, z zspan) {
				if want := (&endpoint{IPv4: "10.9.9.9", Port: 5000}); !reflect.DeepEqual(z.Remote, want) {
					t.Errorf("remote %+v", z.Remote)
				}
			}},
		{"local endpoint", otel,
			base(tracepb.Span_SPAN_KIND_SERVER, str("network.local.address", "2001:DB8::1"), intKV("net.host.port", 8080)),
			func(t *testing.T, z zspan) {
				if want := (&endpoint{ServiceName: "svc", IPv6: "2001:db8::1", Port: 8080}); !reflect.DeepEqual(z.Local, want) {
					t.Errorf("local %+v", z.Local)
				}
			}},
		{"status OK with message, error attribute dropped", otel,
			func() *tracepb.Span {
				s := base(tracepb.Span_SPAN_KIND_SERVER, str("error", "yes"))
				s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK, Message: "fine"}
				return s
			}(),
			func(t *testing.T, z zspan) {
				want := append(append([]tag{}, otelTags...), tag{"otel.status_code", "OK"}, tag{"otel.status_description", "fine"})
				if !reflect.DeepEqual(z.Tags, want) {
					t.Errorf("tags %v", z.Tags)
				}
			}},
		{"unspecified kind has no span.kind tag", otel, base(tracepb.Span_SPAN_KIND_UNSPECIFIED),
			func(t *testing.T, z zspan) {
				if z.Kind != "" || !reflect.DeepEqual(z.Tags, otelTags) {
					t.Errorf("kind %q tags %v", z.Kind, z.Tags)
				}
			}},
		{"events: sorted, duplicates and zero times dropped", otel,
			func() *tracepb.Span {
				s := base(tracepb.Span_SPAN_KIND_INTERNAL)
				s.Events = []*tracepb.Span_Event{
					{TimeUnixNano: start + 5000, Name: "b"}, {TimeUnixNano: start + 5000, Name: "a"},
					{TimeUnixNano: start + 1499, Name: "early"}, {TimeUnixNano: start + 5000, Name: "a"},
					{TimeUnixNano: 0, Name: "never"},
					{TimeUnixNano: start + 9000, Name: "x", DroppedAttributesCount: 2},
				}
				return s
			}(),
			func(t *testing.T, z zspan) {
				us := int64(start / 1000)
				want := []annotation{{us + 1, "early"}, {us + 5, "a"}, {us + 5, "b"}, {us + 9, "x|{}|2"}}
				if !reflect.DeepEqual(z.Annotations, want) {
					t.Errorf("annotations %v", z.Annotations)
				}
			}},
		{"durations round as zipkin-go", otel,
			func() *tracepb.Span {
				s := base(tracepb.Span_SPAN_KIND_INTERNAL)
				s.StartTimeUnixNano = start + 499
				s.EndTimeUnixNano = start + 499 + 1500
				return s
			}(),
			func(t *testing.T, z zspan) {
				if z.Timestamp != int64(start/1000) || z.Duration != 2 {
					t.Errorf("timestamp %d duration %d", z.Timestamp, z.Duration)
				}
			}},
		{"end before start: no duration", otel,
			func() *tracepb.Span {
				s := base(tracepb.Span_SPAN_KIND_INTERNAL)
				s.EndTimeUnixNano = start - 1
				return s
			}(),
			func(t *testing.T, z zspan) {
				if z.Duration != 0 {
					t.Errorf("duration %d", z.Duration)
				}
			}},
		{"zipkin scope: tags as sent, no exporter tags", zk,
			func() *tracepb.Span {
				s := base(tracepb.Span_SPAN_KIND_SERVER, str("error", ""), str("peer.service", "Caller"),
					str("client.address", "10.0.0.2"), intKV("client.port", 1234), boolKV(zipkin.AttrDurationUnknown, true),
					str("otel.status_code", "mine"))
				s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
				return s
			}(),
			func(t *testing.T, z zspan) {
				if want := []tag{{"env", "prod"}, {"error", ""}, {"otel.status_code", "mine"}}; !reflect.DeepEqual(z.Tags, want) {
					t.Errorf("tags %v", z.Tags)
				}
				if want := (&endpoint{ServiceName: "caller", IPv4: "10.0.0.2", Port: 1234}); !reflect.DeepEqual(z.Remote, want) {
					t.Errorf("remote %+v", z.Remote)
				}
				if !reflect.DeepEqual(z.Local, local) || z.Duration != 0 || z.Name != "op" {
					t.Errorf("local %+v duration %d name %q", z.Local, z.Duration, z.Name)
				}
			}},
		{"zipkin scope: port alone, addresses of the wrong side stay tags", zk,
			base(tracepb.Span_SPAN_KIND_CLIENT, intKV("server.port", 9411), str("client.address", "10.0.0.3")),
			func(t *testing.T, z zspan) {
				if want := (&endpoint{Port: 9411}); !reflect.DeepEqual(z.Remote, want) {
					t.Errorf("remote %+v", z.Remote)
				}
				if v, _ := z.tagValue("client.address"); v != "10.0.0.3" {
					t.Errorf("tags %v", z.Tags)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			z, ok := convertSpan(res, tt.scope, tt.span)
			if !ok {
				t.Fatal("not converted")
			}
			tt.check(t, z)
		})
	}
	if _, ok := convertSpan(res, otel, &tracepb.Span{TraceId: []byte{1}, SpanId: make8(1)}); ok {
		t.Error("a span with a short trace ID converted")
	}
}

func make16(b byte) []byte { id := make([]byte, 16); id[15] = b; return id }
func make8(b byte) []byte  { id := make([]byte, 8); id[7] = b; return id }

// TestAnyString checks attribute rendering against pdata's AsString.
func TestAnyString(t *testing.T) {
	f := func(v *commonpb.AnyValue, want string) {
		t.Helper()
		if got := anyString(v); got != want {
			t.Errorf("anyString(%v) = %q, want %q", v, got, want)
		}
	}
	dbl := func(d float64) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: d}}
	}
	f(nil, "")
	f(&commonpb.AnyValue{}, "")
	f(dbl(0.25), "0.25")
	f(dbl(200), "200")
	f(dbl(math.Copysign(0, -1)), "-0")
	f(dbl(1e21), "1e+21")
	f(dbl(123456789012345680000), "123456789012345680000")
	f(dbl(1e-7), "1e-7")
	f(dbl(0.000001), "0.000001")
	f(dbl(math.NaN()), "NaN")
	f(dbl(math.Inf(1)), "Infinity")
	f(dbl(math.Inf(-1)), "-Infinity")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -42}}, "-42")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}}, "false")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xff, 0}}}, "/wA=")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
		dbl(1.5), {Value: &commonpb.AnyValue_StringValue{StringValue: "<&>"}}, {}, dbl(math.NaN()),
	}}}}, "")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
		dbl(1.5), {Value: &commonpb.AnyValue_StringValue{StringValue: "<&>"}}, {},
	}}}}, `[1.5,"<&>",null]`)
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
		intKV("z", 1), boolKV("a", true), {Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte("hi")}}},
	}}}}, `{"a":true,"b":"aGk=","z":1}`)
}

// TestAppendString checks Zipkin's JSON string escaping and that every
// string, valid UTF-8 or not, comes out as a JSON string that decodes to
// it (invalid bytes as U+FFFD).
func TestAppendString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := string(appendString(nil, in)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
	}
	f("", `""`)
	f(`a"b\c`, `"a\"b\\c"`)
	f("\t\b\n\r\f\x00\x1f\x7f", `"\t\b\n\r\f\u0000\u001f`+"\x7f"+`"`)
	f("<&> é 日本 😀", `"<&> é 日本 😀"`)
	f("\u2028\u2029", `"\u2028\u2029"`)
	f("a\xffb", "\"a\ufffdb\"")
	for _, s := range []string{"plain", "x\u2028y\"z\\", "bad\xc3", "\x00\x01\u00e9\U0001F600"} {
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if back != string([]rune(s)) || !utf8.ValidString(back) {
			t.Errorf("%q decodes to %q", s, back)
		}
	}
}

// TestIndexable checks which key=value terms the store's index may
// narrow.
func TestIndexable(t *testing.T) {
	f := func(k, v string, want bool) {
		t.Helper()
		if got := indexable(k, v); got != want {
			t.Errorf("indexable(%q, %q) = %v, want %v", k, v, got, want)
		}
	}
	f("http.method", "GET", true)
	f("order.id", "o-123", true)
	f("code", "123", true) // the same text whether int or double
	f("code", "200", true)
	f("n", "1234567", false) // a double 1234567 is 1.234567e+06 in the index
	f("ratio", "0.25", true) // same in both formats
	f("n", "1e-7", false)
	f("n", "NaN", true)
	f("n", "Infinity", false) // +Inf in the index
	f("tags", `["a"]`, false)
	f("m", `{"a":1}`, false)
	f("b", "aGk=", false) // could be bytes
	f("b", "true", false) // decodes as base64 too
	f("error", "boom", false)
	f("otel.status_code", "ERROR", false)
	f("otlp.link.0", "x", false)
	f("http.status_code", "xyz", false)
	f("k", strings.Repeat("v", 257), false)
}
