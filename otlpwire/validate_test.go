package otlpwire

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// depthLimited decodes like the validator: proto.Unmarshal with the
// recursion limit lowered to MaxDepth.
var depthLimited = proto.UnmarshalOptions{RecursionLimit: MaxDepth}

// agree fails t when the validator and proto.Unmarshal (with RecursionLimit
// MaxDepth) disagree about b, for either request type, or when the
// validator accepts what the default proto.Unmarshal refuses (it may be
// stricter only on depth). It returns whether the trace request was valid.
func agree(t *testing.T, b []byte) bool {
	t.Helper()
	check := func(signal string, errV error, m func() proto.Message) {
		t.Helper()
		errP := depthLimited.Unmarshal(b, m())
		if (errV == nil) != (errP == nil) {
			t.Errorf("%s: validate says %v, proto.Unmarshal (depth %d) says %v; input %.256x", signal, errV, MaxDepth, errP, b)
		}
		if errV == nil {
			if err := proto.Unmarshal(b, m()); err != nil {
				t.Errorf("%s: validate accepts what proto.Unmarshal refuses: %v; input %.256x", signal, err, b)
			}
		}
	}
	errV := ValidateTraces(b)
	check("traces", errV, func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} })
	check("metrics", ValidateMetrics(b), func() proto.Message { return &colmetricspb.ExportMetricsServiceRequest{} })
	return errV == nil
}

func sampleTraces() *coltracepb.ExportTraceServiceRequest {
	return otlptest.TelemetrygenRequest(rand.New(rand.NewPCG(1, 2)), 3, time.Unix(1_700_000_000, 0))
}

func sampleMetrics() *colmetricspb.ExportMetricsServiceRequest {
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", "checkout")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{
			Name: "queue.depth",
			Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{
				TimeUnixNano: 1718000000000000000,
				Value:        &metricspb.NumberDataPoint_AsInt{AsInt: 7},
			}}}},
		}}}},
	}}}
}

// wire builds protobuf bytes field by field.
type wire []byte

func (w wire) tag(num protowire.Number, typ protowire.Type) wire {
	return protowire.AppendTag(w, num, typ)
}
func (w wire) varint(v uint64) wire { return protowire.AppendVarint(w, v) }
func (w wire) bytes(b []byte) wire  { return protowire.AppendBytes(w, b) }
func (w wire) msg(num protowire.Number, inner wire) wire {
	return w.tag(num, protowire.BytesType).bytes(inner)
}

// span wraps the encoded Span fields in a one-span ExportTraceServiceRequest.
func span(fields wire) []byte {
	return wire{}.msg(1, wire{}.msg(2, wire{}.msg(2, fields)))
}

// histogramPoint wraps HistogramDataPoint fields in a metrics request.
func histogramPoint(fields wire) []byte {
	metric := wire{}.msg(9, wire{}.msg(1, fields)) // Metric.histogram.data_points
	return wire{}.msg(1, wire{}.msg(2, wire{}.msg(2, metric)))
}

// expHistogramPositive wraps Buckets fields in a metrics request.
func expHistogramPositive(fields wire) []byte {
	point := wire{}.msg(8, fields) // ExponentialHistogramDataPoint.positive
	metric := wire{}.msg(10, wire{}.msg(1, point))
	return wire{}.msg(1, wire{}.msg(2, wire{}.msg(2, metric)))
}

func TestValidateAgreesWithUnmarshal(t *testing.T) {
	cases := map[string][]byte{
		"sample traces":                mustProto(t, sampleTraces()),
		"sample metrics":               mustProto(t, sampleMetrics()),
		"empty":                        nil,
		"field number 0":               {0x00},
		"truncated tag":                {0x80},
		"truncated length":             {0x0a},
		"length past the end":          {0x0a, 0x05, 0x00},
		"end group at top level":       wire{}.tag(1, protowire.EndGroupType),
		"unknown group":                wire{}.tag(100, protowire.StartGroupType).tag(1, protowire.VarintType).varint(1).tag(100, protowire.EndGroupType),
		"unknown group, wrong end":     wire{}.tag(100, protowire.StartGroupType).tag(101, protowire.EndGroupType),
		"unterminated group":           wire{}.tag(100, protowire.StartGroupType),
		"wire type 6":                  {0x0e},
		"wire type 7":                  {0x0f},
		"max field number":             wire{}.tag(protowire.MaxValidNumber, protowire.VarintType).varint(1),
		"field number past max":        protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3),
		"varint overflow":              {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		"message field as varint":      wire{}.tag(1, protowire.VarintType).varint(7),
		"message field as fixed32":     wire{}.tag(1, protowire.Fixed32Type),
		"message field as fixed32 ok":  append(wire{}.tag(1, protowire.Fixed32Type), 1, 2, 3, 4),
		"span name invalid UTF-8":      span(wire{}.tag(5, protowire.BytesType).bytes([]byte{0xff, 0xfe})),
		"span name valid":              span(wire{}.tag(5, protowire.BytesType).bytes([]byte("GET /"))),
		"span name as varint":          span(wire{}.tag(5, protowire.VarintType).varint(3)),
		"span id any bytes":            span(wire{}.tag(2, protowire.BytesType).bytes([]byte{0xff, 0x00})),
		"unknown field invalid UTF-8":  span(wire{}.tag(99, protowire.BytesType).bytes([]byte{0xff})),
		"span kind packed":             span(wire{}.tag(6, protowire.BytesType).bytes([]byte{1, 2})),
		"span kind huge":               span(wire{}.tag(6, protowire.VarintType).varint(1 << 63)),
		"span start as varint":         span(wire{}.tag(7, protowire.VarintType).varint(5)),
		"span start truncated":         span(append(wire{}.tag(7, protowire.Fixed64Type), 1, 2, 3)),
		"span flags fixed32":           span(append(wire{}.tag(16, protowire.Fixed32Type), 1, 0, 0, 0)),
		"attribute key invalid UTF-8":  span(wire{}.msg(9, wire{}.tag(1, protowire.BytesType).bytes([]byte{0xc3}))),
		"nested any value bad UTF-8":   span(wire{}.msg(9, wire{}.msg(2, wire{}.msg(5, wire{}.msg(1, wire{}.tag(1, protowire.BytesType).bytes([]byte{0xe2, 0x82})))))),
		"bucket counts packed ok":      histogramPoint(wire{}.tag(6, protowire.BytesType).bytes(make([]byte, 16))),
		"bucket counts packed short":   histogramPoint(wire{}.tag(6, protowire.BytesType).bytes(make([]byte, 15))),
		"bucket counts unpacked":       histogramPoint(append(wire{}.tag(6, protowire.Fixed64Type), make([]byte, 8)...)),
		"bucket counts as varint":      histogramPoint(wire{}.tag(6, protowire.VarintType).varint(1)),
		"explicit bounds packed empty": histogramPoint(wire{}.tag(7, protowire.BytesType).bytes(nil)),
		"exp buckets packed ok":        expHistogramPositive(wire{}.tag(2, protowire.BytesType).bytes([]byte{1, 0x80, 0x01})),
		"exp buckets packed truncated": expHistogramPositive(wire{}.tag(2, protowire.BytesType).bytes([]byte{1, 0x80})),
		"exp buckets unpacked":         expHistogramPositive(wire{}.tag(2, protowire.VarintType).varint(9)),
		"exp offset sint32":            expHistogramPositive(wire{}.tag(1, protowire.VarintType).varint(3)),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) { agree(t, b) })
	}
}

// nestedKVList is a one-span request whose attribute value is k kvlists
// nested in each other: 6 + 3k messages deep.
func nestedKVList(k int) []byte {
	// Sizes bottom-up (anyLen[0] is the empty innermost AnyValue), then the
	// headers top-down: linear, unlike wrapping k times.
	anyLen, listLen, kvLen := make([]int, k+1), make([]int, k+1), make([]int, k+1)
	for i := 1; i <= k; i++ {
		kvLen[i] = 3 + 1 + protowire.SizeBytes(anyLen[i-1]) // key "k", then the value
		listLen[i] = 1 + protowire.SizeBytes(kvLen[i])
		anyLen[i] = 1 + protowire.SizeBytes(listLen[i])
	}
	v := make(wire, 0, anyLen[k]+64)
	for i := k; i >= 1; i-- {
		v = v.tag(6, protowire.BytesType).varint(uint64(listLen[i]))  // AnyValue.kvlist_value
		v = v.tag(1, protowire.BytesType).varint(uint64(kvLen[i]))    // KeyValueList.values
		v = v.tag(1, protowire.BytesType).bytes([]byte("k"))          // KeyValue.key
		v = v.tag(2, protowire.BytesType).varint(uint64(anyLen[i-1])) // KeyValue.value
	}
	kv := wire{}.tag(1, protowire.BytesType).bytes([]byte("k")).msg(2, v)
	return span(wire{}.msg(9, kv))
}

// nestedArray is a request whose resource attribute value is k AnyValue
// arrays nested in each other: 5 + 2k messages deep.
func nestedArray(k int) []byte {
	anyLen, arrLen := make([]int, k+1), make([]int, k+1)
	for i := 1; i <= k; i++ {
		arrLen[i] = 1 + protowire.SizeBytes(anyLen[i-1])
		anyLen[i] = 1 + protowire.SizeBytes(arrLen[i])
	}
	v := make(wire, 0, anyLen[k])
	for i := k; i >= 1; i-- {
		v = v.tag(5, protowire.BytesType).varint(uint64(arrLen[i]))
		v = v.tag(1, protowire.BytesType).varint(uint64(anyLen[i-1]))
	}
	kv := wire{}.tag(1, protowire.BytesType).bytes([]byte("k")).msg(2, v)
	// ExportTraceServiceRequest → ResourceSpans → Resource → KeyValue → AnyValue.
	return wire{}.msg(1, wire{}.msg(1, wire{}.msg(1, kv)))
}

// TestValidateDepth checks the validator's depth limit against
// proto.Unmarshal's with the same limit, with AnyValue arrays and kvlists
// nested around MaxDepth, and that deeper nesting is refused even where
// the default proto.Unmarshal accepts it.
func TestValidateDepth(t *testing.T) {
	for _, nested := range []struct {
		name  string
		build func(int) []byte
		step  int // messages per nesting
		outer int // messages around the first nesting
	}{
		{"arrays", nestedArray, 2, 5},
		{"kvlists", nestedKVList, 3, 6},
	} {
		t.Run(nested.name, func(t *testing.T) {
			limit := (MaxDepth - nested.outer) / nested.step // deepest accepted
			for k := limit - 2; k <= limit+2; k++ {
				if got, want := agree(t, nested.build(k)), k <= limit; got != want {
					t.Errorf("%d nestings: valid = %v, want %v", k, got, want)
				}
			}
			deep := nested.build(1000)
			err := ValidateTraces(deep)
			if err == nil || !strings.Contains(err.Error(), "nested more than 64 deep") {
				t.Errorf("1000 nestings: %v", err)
			}
			if err := proto.Unmarshal(deep, &coltracepb.ExportTraceServiceRequest{}); err != nil {
				t.Errorf("the default proto.Unmarshal should accept it: %v", err)
			}
		})
	}
	// 10,000 nested kvlists (30,000 messages): refused quickly, at depth 64.
	if err := ValidateTraces(nestedKVList(10_000)); err == nil {
		t.Error("10,000 nested kvlists accepted")
	}
}

// TestValidateAllocs checks the validator allocates nothing on valid input.
func TestValidateAllocs(t *testing.T) {
	traces, metrics := mustProto(t, sampleTraces()), mustProto(t, sampleMetrics())
	if n := testing.AllocsPerRun(100, func() {
		if ValidateTraces(traces) != nil || ValidateMetrics(metrics) != nil {
			t.Fatal("invalid")
		}
	}); n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}

// FuzzValidate checks the validator accepts exactly what proto.Unmarshal
// with RecursionLimit MaxDepth accepts, and nothing the default
// proto.Unmarshal refuses.
func FuzzValidate(f *testing.F) {
	f.Add(mustProto(f, sampleTraces()))
	f.Add(mustProto(f, sampleMetrics()))
	f.Add(span(wire{}.msg(9, wire{}.msg(2, wire{}.msg(5, wire{}.msg(1, wire{}.tag(1, protowire.BytesType).bytes([]byte("x"))))))))
	f.Add(histogramPoint(wire{}.tag(6, protowire.BytesType).bytes(make([]byte, 16))))
	f.Add(expHistogramPositive(wire{}.tag(2, protowire.BytesType).bytes([]byte{1, 0x80, 0x01})))
	f.Add([]byte(wire{}.tag(100, protowire.StartGroupType).tag(100, protowire.EndGroupType)))
	f.Add(nestedKVList(19))
	f.Add(nestedArray(30))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			t.Skip("input too large")
		}
		agree(t, b)
	})
}

// BenchmarkValidate measures the wire check of a telemetrygen-like request
// of 512 spans, which every protobuf export pays before it is parsed.
// Compare runs with:
//
//	go test -run=^$ -bench=Validate -count=6 ./otlpwire | benchstat -
func BenchmarkValidate(b *testing.B) {
	raw, _ := proto.Marshal(otlptest.TelemetrygenRequest(rand.New(rand.NewPCG(1, 2)), 512, time.Unix(1, 0)))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateTraces(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/span")
}
