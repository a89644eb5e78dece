package otlphttp

import (
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// agree fails t when validate and proto.Unmarshal disagree about b, for
// either request type. It returns whether the trace request was valid.
func agree(t *testing.T, b []byte) bool {
	t.Helper()
	errV := validateTraces(b)
	errP := proto.Unmarshal(b, &coltracepb.ExportTraceServiceRequest{})
	if (errV == nil) != (errP == nil) {
		t.Errorf("traces: validate says %v, proto.Unmarshal says %v; input %x", errV, errP, b)
	}
	errVM := validateMetrics(b)
	errPM := proto.Unmarshal(b, &colmetricspb.ExportMetricsServiceRequest{})
	if (errVM == nil) != (errPM == nil) {
		t.Errorf("metrics: validate says %v, proto.Unmarshal says %v; input %x", errVM, errPM, b)
	}
	return errV == nil
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
		"sample traces":                mustProto(t, sampleTraces(3)),
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

// TestValidateDepth checks the recursion limit matches proto.Unmarshal's,
// with AnyValue arrays nested around the limit.
func TestValidateDepth(t *testing.T) {
	// ExportTraceServiceRequest → ResourceSpans → Resource → KeyValue →
	// AnyValue, then (ArrayValue → AnyValue) × k.
	nested := func(k int) []byte {
		// Sizes bottom-up (anyLen[0] is the empty innermost AnyValue), then
		// the headers top-down: linear, unlike wrapping k times.
		anyLen, arrLen := make([]int, k+1), make([]int, k+1)
		for i := 1; i <= k; i++ {
			arrLen[i] = 1 + protowire.SizeVarint(uint64(anyLen[i-1])) + anyLen[i-1]
			anyLen[i] = 1 + protowire.SizeVarint(uint64(arrLen[i])) + arrLen[i]
		}
		v := make(wire, 0, anyLen[k])
		for i := k; i >= 1; i-- {
			v = v.tag(5, protowire.BytesType).varint(uint64(arrLen[i]))
			v = v.tag(1, protowire.BytesType).varint(uint64(anyLen[i-1]))
		}
		kv := wire{}.tag(1, protowire.BytesType).bytes([]byte("k")).msg(2, v)
		return wire{}.msg(1, wire{}.msg(1, wire{}.msg(1, kv)))
	}
	valid, invalid := 0, 0
	for k := protowire.DefaultRecursionLimit/2 - 4; k <= protowire.DefaultRecursionLimit/2+1; k++ {
		if agree(t, nested(k)) {
			valid++
		} else {
			invalid++
		}
	}
	if valid == 0 || invalid == 0 {
		t.Errorf("depths tried: %d valid, %d invalid; want both around the limit", valid, invalid)
	}
}

// FuzzValidate checks the wire-format check accepts exactly what
// proto.Unmarshal accepts.
func FuzzValidate(f *testing.F) {
	f.Add(mustProto(f, sampleTraces(2)))
	f.Add(mustProto(f, sampleMetrics()))
	f.Add(span(wire{}.msg(9, wire{}.msg(2, wire{}.msg(5, wire{}.msg(1, wire{}.tag(1, protowire.BytesType).bytes([]byte("x"))))))))
	f.Add(histogramPoint(wire{}.tag(6, protowire.BytesType).bytes(make([]byte, 16))))
	f.Add(expHistogramPositive(wire{}.tag(2, protowire.BytesType).bytes([]byte{1, 0x80, 0x01})))
	f.Add([]byte(wire{}.tag(100, protowire.StartGroupType).tag(100, protowire.EndGroupType)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			t.Skip("input too large")
		}
		agree(t, b)
	})
}
