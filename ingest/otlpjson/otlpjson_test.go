package otlpjson

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roundTripCases are the OTLP/JSON documents of testdata/ with the message
// type they hold.
var roundTripCases = []struct {
	file string
	msg  func() proto.Message
}{
	{"traces_checkout.json", func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} }},
	{"traces_lenient.json", func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} }},
	{"traces_lenient.canonical.json", func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} }},
	{"metrics_all_types.json", func() proto.Message { return &colmetricspb.ExportMetricsServiceRequest{} }},
}

// TestRoundTrip checks JSON → proto → JSON → proto is lossless, that
// marshalling is deterministic, and that the binary protobuf form agrees.
func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases {
		t.Run(tc.file, func(t *testing.T) {
			first := tc.msg()
			if err := Unmarshal(readTestdata(t, tc.file), first); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if proto.Size(first) == 0 {
				t.Fatal("decoded an empty message")
			}
			out, err := Marshal(first)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			second := tc.msg()
			if err := Unmarshal(out, second); err != nil {
				t.Fatalf("Unmarshal(Marshal): %v\n%s", err, out)
			}
			if !proto.Equal(first, second) {
				t.Fatalf("round trip changed the message\nfirst:  %v\nsecond: %v", first, second)
			}
			again, err := Marshal(second)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again) {
				t.Fatalf("Marshal is not deterministic:\n%s\n%s", out, again)
			}
			bin, err := proto.Marshal(first)
			if err != nil {
				t.Fatal(err)
			}
			third := tc.msg()
			if err := proto.Unmarshal(bin, third); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(first, third) {
				t.Fatal("binary round trip differs")
			}
		})
	}
}

// TestLenientInput checks that the forms receivers must also accept (proto
// field names, enum names, 64-bit integers as numbers, 32-bit integers as
// strings, upper- and mixed-case hex, escaped hex, unknown fields) decode to
// the same message as the canonical form.
func TestLenientInput(t *testing.T) {
	lenient, err := UnmarshalTraces(readTestdata(t, "traces_lenient.json"))
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := UnmarshalTraces(readTestdata(t, "traces_lenient.canonical.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(lenient, canonical) {
		t.Fatalf("lenient and canonical forms differ\nlenient:   %v\ncanonical: %v", lenient, canonical)
	}
}

// TestDecodedIDs checks every kind of ID field of the testdata documents
// decodes to its 16 or 8 bytes.
func TestDecodedIDs(t *testing.T) {
	traces, err := UnmarshalTraces(readTestdata(t, "traces_checkout.json"))
	if err != nil {
		t.Fatal(err)
	}
	root := traces.ResourceSpans[0].ScopeSpans[0].Spans[0]
	child := traces.ResourceSpans[0].ScopeSpans[0].Spans[1]
	checks := []struct {
		name string
		got  []byte
		want string
	}{
		{"span traceId", root.TraceId, "5b8efff798038103d269b633813fc60c"},
		{"span spanId", root.SpanId, "eee19b7ec3c1b174"},
		{"root parentSpanId", root.ParentSpanId, ""},
		{"child parentSpanId", child.ParentSpanId, "eee19b7ec3c1b174"},
		{"link traceId", root.Links[0].TraceId, "0af7651916cd43dd8448eb211c80319c"},
		{"link spanId", root.Links[0].SpanId, "b7ad6b7169203331"},
	}
	metrics, err := UnmarshalMetrics(readTestdata(t, "metrics_all_types.json"))
	if err != nil {
		t.Fatal(err)
	}
	ms := metrics.ResourceMetrics[0].ScopeMetrics[0].Metrics
	sumEx := ms[1].GetSum().DataPoints[0].Exemplars[0]
	histEx := ms[3].GetHistogram().DataPoints[0].Exemplars
	expEx := ms[4].GetExponentialHistogram().DataPoints[0].Exemplars[0]
	checks = append(checks, []struct {
		name string
		got  []byte
		want string
	}{
		{"sum exemplar traceId", sumEx.TraceId, "5b8efff798038103d269b633813fc60c"},
		{"sum exemplar spanId", sumEx.SpanId, "eee19b7ec3c1b174"},
		{"histogram exemplar traceId", histEx[0].TraceId, "0af7651916cd43dd8448eb211c80319c"},
		{"histogram exemplar spanId", histEx[0].SpanId, "00f067aa0ba902b7"},
		{"histogram exemplar without IDs", histEx[1].TraceId, ""},
		{"exponential exemplar traceId", expEx.TraceId, "5b8efff798038103d269b633813fc60c"},
		{"exponential exemplar spanId", expEx.SpanId, "a1b2c3d4e5f60718"},
	}...)
	for _, c := range checks {
		if !bytes.Equal(c.got, mustHex(t, c.want)) {
			t.Errorf("%s = %x, want %s", c.name, c.got, c.want)
		}
	}
	// AnyValue.bytesValue stays base64.
	var token []byte
	for _, kv := range root.Attributes {
		if kv.Key == "app.session.token" {
			token = kv.Value.GetBytesValue()
		}
	}
	if want := mustHex(t, "000102030405060708090a0b0c0d0e0f"); !bytes.Equal(token, want) {
		t.Errorf("bytesValue = %x, want %x", token, want)
	}
}

// spanDoc is a one-span request whose traceId member is the JSON value v.
func spanDoc(v string) []byte {
	return []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":` + v +
		`,"spanId":"0102030405060708","name":"op"}]}]}]}`)
}

func TestTraceIDForms(t *testing.T) {
	f := func(value string, want []byte) {
		t.Helper()
		req, err := UnmarshalTraces(spanDoc(value))
		if err != nil {
			t.Errorf("traceId %s: %v", value, err)
			return
		}
		span := req.ResourceSpans[0].ScopeSpans[0].Spans[0]
		if !bytes.Equal(span.TraceId, want) {
			t.Errorf("traceId %s decoded to %x, want %x", value, span.TraceId, want)
		}
		if !bytes.Equal(span.SpanId, []byte{1, 2, 3, 4, 5, 6, 7, 8}) || span.Name != "op" {
			t.Errorf("traceId %s: neighbouring fields damaged: %v", value, span)
		}
	}
	id := mustHex(t, "5b8efff798038103d269b633813fc60c")
	f(`"5b8efff798038103d269b633813fc60c"`, id)
	f(`"5B8EFFF798038103D269B633813FC60C"`, id)
	f(`"5b8EFFf798038103d269B633813fc60C"`, id)
	f(`"\u0035b8efff798038103d269b633813fc60c"`, id)
	f(`"5b8efff798038103d269b633813f\u0063\u0036\u0030\u0063"`, id)
	f(`""`, nil)
	f(`null`, nil)
	f(`"ab"`, []byte{0xab}) // valid hex of the wrong length is kept as is
	f(`"`+strings.Repeat("ab", 32)+`"`, bytes.Repeat([]byte{0xab}, 32))
	// Not hex: the one-byte invalid ID, whatever base64 would have made of it.
	for _, bad := range []string{
		"a",                                  // odd length
		"abc",                                // odd length
		"abcde",                              // length 1 mod 4: not even base64
		"5b8efff798038103d269b633813fc60",    // 31 digits
		"5b8efff798038103d269b633813fc60c0",  // 33 digits
		"zb8efff798038103d269b633813fc60c",   // a non-hex letter, 32 chars
		"ghijklmnopqrstuv",                   // 16 chars: base64 would give 12 bytes
		"gggggggggggggggggggggg",             // 22 chars: base64 would give 16 bytes
		"0x5b8efff798038103d269b633813fc60c", // prefix
		" 5b8efff798038103d269b633813fc60c",  // blank
		"5b8e-ff7_98038103d269b633813fc60c",  // base64url characters
		"!!!!",                               // outside base64
		"5b8efff798038103d269b633813fc6==",   // padding
		"é5",                                 // non-ASCII
	} {
		f(`"`+bad+`"`, invalidID)
	}
	f(`"\u00e95"`, invalidID)
}

// TestUnknownEnumName checks that an enum name this schema does not know is
// ignored like an unknown field (the span kind stays unspecified).
func TestUnknownEnumName(t *testing.T) {
	req, err := UnmarshalTraces([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_FROM_THE_FUTURE","name":"x"}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if span := req.ResourceSpans[0].ScopeSpans[0].Spans[0]; span.Kind != 0 || span.Name != "x" {
		t.Fatalf("span = %v", span)
	}
}

func TestDecodeErrors(t *testing.T) {
	f := func(doc, wantSubstr string) {
		t.Helper()
		_, err := UnmarshalTraces([]byte(doc))
		if err == nil {
			t.Errorf("%q: no error", doc)
			return
		}
		msg := err.Error()
		if strings.HasPrefix(msg, "proto:") {
			t.Errorf("%q: error keeps protojson's prefix: %q", doc, msg)
		}
		if !strings.Contains(msg, wantSubstr) {
			t.Errorf("%q: error %q does not contain %q", doc, msg, wantSubstr)
		}
	}
	f(``, "syntax error (line 1:1): unexpected token")
	f(`{`, "unexpected EOF")
	f(`[]`, "(line 1:1)")
	f(`{"resourceSpans":5}`, "(line 1:18)")
	f(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5}]}]}]}`, "invalid value for bytes field traceId")
	f(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":true}]}]}]}`, "invalid value for enum field kind")
	f(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-1"}]}]}]}`, "startTimeUnixNano")
	f(`{"resourceSpans":[],"resource_spans":[]}`, "duplicate field")
	// IDs that are not even valid JSON strings stay errors.
	f("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"ab\x01\"}]}]}]}", "invalid character")
	f("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"ab\xff\"}]}]}]}", "UTF-8")
	f(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab\q"}]}]}]}`, "invalid escape")
	f(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab`, "unexpected EOF")
}

// TestErrorPosition checks that error positions point into the caller's
// document although hex IDs were rewritten before protojson saw them.
func TestErrorPosition(t *testing.T) {
	for _, id := range []string{
		"5b8efff798038103d269b633813fc60c",
		"not hex at all, and long enough to matter",
		`\u0035b8efff798038103d269b633813fc60c`,
	} {
		doc := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"` + id +
			`","spanId":"0102030405060708","parentSpanId":"zz","name":5}]}]}]}`
		col := strings.Index(doc, `5}`) + 1
		_, err := UnmarshalTraces([]byte(doc))
		if err == nil {
			t.Fatal("no error")
		}
		if want := "(line 1:" + itoa(col) + ")"; !strings.Contains(err.Error(), want) {
			t.Errorf("id %q: error %q, want position %s", id, err, want)
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestMarshal(t *testing.T) {
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId:           mustHex(t, "5B8EFFF798038103D269B633813FC60C"),
			SpanId:            mustHex(t, "EEE19B7EC3C1B174"),
			ParentSpanId:      mustHex(t, "00f067aa0ba902b7"),
			Name:              "op",
			Kind:              tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: 1718000000000000000,
			Attributes: []*commonpb.KeyValue{
				{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xde, 0xad, 0xbe, 0xef}}}},
				{Key: "traceId", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "stays"}}},
			},
			Links:  []*tracepb.Span_Link{{TraceId: mustHex(t, "0af7651916cd43dd8448eb211c80319c"), SpanId: mustHex(t, "b7ad6b7169203331")}},
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR},
		}}}},
	}}}
	before := proto.Clone(td)
	out, err := MarshalTracesData(td)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(td, before) {
		t.Error("MarshalTracesData modified its input")
	}
	want := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",` +
		`"spanId":"eee19b7ec3c1b174","parentSpanId":"00f067aa0ba902b7","name":"op","kind":3,` +
		`"startTimeUnixNano":"1718000000000000000","attributes":[{"key":"b","value":{"bytesValue":"3q2+7w=="}},` +
		`{"key":"traceId","value":{"stringValue":"stays"}}],` +
		`"links":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331"}],"status":{"code":2}}]}]}]}`
	if string(out) != want {
		t.Errorf("MarshalTracesData:\n got %s\nwant %s", out, want)
	}

	// Empty and nil messages.
	for _, m := range []proto.Message{&tracepb.TracesData{}, (*tracepb.TracesData)(nil)} {
		out, err := Marshal(m)
		if err != nil || string(out) != "{}" {
			t.Errorf("Marshal(%#v) = %s, %v; want {}", m, out, err)
		}
	}
	// Invalid UTF-8 cannot be written as JSON.
	bad := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{SchemaUrl: "\xff"}}}
	if _, err := Marshal(bad); err == nil || strings.HasPrefix(err.Error(), "proto:") {
		t.Errorf("Marshal(invalid UTF-8) error = %v", err)
	}
}

// TestMarshalIDLengths covers IDs of every length up to 40 bytes, including
// ones no valid OTLP ID has, so that whatever the store holds can be shown.
func TestMarshalIDLengths(t *testing.T) {
	for n := 0; n <= 40; n++ {
		id := make([]byte, n)
		for i := range id {
			id[i] = byte(0xf0 + i)
		}
		span := &tracepb.Span{TraceId: id, SpanId: id, ParentSpanId: id}
		out, err := Marshal(span)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && !bytes.Contains(out, []byte(`"traceId":"`+hex.EncodeToString(id)+`"`)) {
			t.Errorf("n=%d: %s", n, out)
		}
		back := &tracepb.Span{}
		if err := Unmarshal(out, back); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !proto.Equal(span, back) {
			t.Errorf("n=%d: round trip %x → %s → %x", n, id, out, back.TraceId)
		}
	}
}

// TestUnmarshalDoesNotModifyInput guards the copy made before rewriting IDs.
func TestUnmarshalDoesNotModifyInput(t *testing.T) {
	data := readTestdata(t, "traces_checkout.json")
	orig := bytes.Clone(data)
	if _, err := UnmarshalTraces(data); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, orig) {
		t.Fatal("UnmarshalTraces modified its input")
	}
}

// TestRoundTripFromProto starts from messages built in Go, with the values
// the JSON mapping treats specially: non-finite doubles, 64-bit extremes,
// empty and non-ASCII strings, IDs of unusual lengths.
func TestRoundTripFromProto(t *testing.T) {
	dbl := func(v float64) *metricspb.NumberDataPoint {
		return &metricspb.NumberDataPoint{TimeUnixNano: math.MaxUint64, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: v}}
	}
	req := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: "special", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{
				dbl(math.Inf(1)), dbl(math.Inf(-1)), dbl(math.NaN()), dbl(math.Copysign(0, -1)), dbl(math.SmallestNonzeroFloat64),
				{Value: &metricspb.NumberDataPoint_AsInt{AsInt: math.MinInt64}},
				{Value: &metricspb.NumberDataPoint_AsInt{AsInt: math.MaxInt64}},
			}}}},
			{Name: "ünïcödé 中文 🚀", Unit: "", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
				DataPoints: []*metricspb.HistogramDataPoint{{
					Count: math.MaxUint64, BucketCounts: []uint64{0, math.MaxUint64}, ExplicitBounds: []float64{math.Inf(-1)},
					Exemplars: []*metricspb.Exemplar{
						{TraceId: []byte{1, 2, 3}, SpanId: bytes.Repeat([]byte{0xff}, 33)},
						{TraceId: bytes.Repeat([]byte{0}, 16), SpanId: bytes.Repeat([]byte{0}, 8)},
					},
				}},
			}}},
		}}},
	}}}
	out, err := MarshalMetrics(req)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalMetrics(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !proto.Equal(req, back) {
		t.Fatalf("round trip changed the message\nbefore: %v\nafter:  %v\njson: %s", req, back, out)
	}
	for _, want := range []string{`"asDouble":"Infinity"`, `"asDouble":"NaN"`, `"asInt":"-9223372036854775808"`,
		`"traceId":"010203"`, `"traceId":"00000000000000000000000000000000"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}
