package main

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// template is one pre-encoded ExportTraceServiceRequest together with the
// byte offsets of its IDs and timestamps, so that a sender can make a fresh
// request from it with a copy and a few XORs instead of a protobuf encode.
type template struct {
	raw      []byte
	spans    int
	traceIDs []int // offsets of 16-byte trace_id values
	spanIDs  []int // offsets of 8-byte span_id and parent_span_id values
	times    []int // offsets of fixed64 start/end timestamps
	// reqIDs are the offsets of the 32-hex-digit values of the
	// app.request_id attributes (realistic shape), reqBase the 16 bytes
	// each encodes in the template.
	reqIDs   []int
	reqBase  [][16]byte
	genNanos uint64
}

// buildShapeTemplates encodes n distinct requests of the given shape
// (shapeSmall or shapeRealistic).
func buildShapeTemplates(shape string, n, spansPerRequest int, seed uint64) ([]*template, error) {
	switch shape {
	case shapeSmall, "":
		return buildTemplates(n, spansPerRequest, seed)
	case shapeRealistic:
		return buildRealisticTemplates(n, spansPerRequest, seed)
	}
	return nil, fmt.Errorf("unknown shape %q: want %s or %s", shape, shapeSmall, shapeRealistic)
}

// bytesPerSpan is the average encoded size of a span over the templates,
// the request's own framing included.
func bytesPerSpan(tps []*template) float64 {
	var b, n int
	for _, tp := range tps {
		b += len(tp.raw)
		n += tp.spans
	}
	if n == 0 {
		return 0
	}
	return float64(b) / float64(n)
}

// spanDuration is the duration of telemetrygen's spans (its default
// --span-duration).
const spanDuration = 123 * time.Microsecond

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// buildTemplates encodes n distinct telemetrygen-shaped requests of
// spansPerRequest spans each (rounded up to an even number: every trace is a
// CLIENT parent "lets-go" with one SERVER child "okey-dokey-N").
func buildTemplates(n, spansPerRequest int, seed uint64) ([]*template, error) {
	if spansPerRequest < 2 {
		spansPerRequest = 2
	}
	traces := (spansPerRequest + 1) / 2
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]*template, 0, n)
	now := time.Now()
	for i := 0; i < n; i++ {
		ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "telemetrygen"}}
		for t := 0; t < traces; t++ {
			tid := randID(r, 16)
			pid := randID(r, 8)
			cid := randID(r, 8)
			start := now.Add(-time.Duration(traces-t) * time.Millisecond)
			st := uint64(start.UnixNano())
			en := uint64(start.Add(spanDuration).UnixNano())
			worker := (i*traces + t) % 8
			ss.Spans = append(ss.Spans,
				&tracepb.Span{
					TraceId: tid, SpanId: pid, Name: "lets-go", Kind: tracepb.Span_SPAN_KIND_CLIENT,
					StartTimeUnixNano: st, EndTimeUnixNano: en,
					Attributes: []*commonpb.KeyValue{str("net.peer.ip", "1.2.3.4"), str("peer.service", "telemetrygen-server")},
					Status:     &tracepb.Status{},
				},
				&tracepb.Span{
					TraceId: tid, SpanId: cid, ParentSpanId: pid, Name: fmt.Sprintf("okey-dokey-%d", worker),
					Kind:              tracepb.Span_SPAN_KIND_SERVER,
					StartTimeUnixNano: st, EndTimeUnixNano: en,
					Attributes: []*commonpb.KeyValue{str("net.peer.ip", "1.2.3.4"), str("peer.service", "telemetrygen-client")},
					Status:     &tracepb.Status{},
				})
		}
		req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "telemetrygen")}},
			ScopeSpans: []*tracepb.ScopeSpans{ss},
			SchemaUrl:  "https://opentelemetry.io/schemas/1.4.0",
		}}}
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
		if err != nil {
			return nil, err
		}
		tp := &template{raw: raw, genNanos: uint64(now.UnixNano())}
		if err := tp.locate(); err != nil {
			return nil, err
		}
		if tp.spans != 2*traces || len(tp.traceIDs) != 2*traces || len(tp.spanIDs) != 3*traces || len(tp.times) != 4*traces {
			return nil, fmt.Errorf("template %d: located %d spans, %d trace IDs, %d span IDs, %d times; want %d spans",
				i, tp.spans, len(tp.traceIDs), len(tp.spanIDs), len(tp.times), 2*traces)
		}
		out = append(out, tp)
	}
	return out, nil
}

func randID(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for {
		for i := 0; i < n; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		for _, c := range b {
			if c != 0 {
				return b
			}
		}
	}
}

// locate walks the encoded request and records where the IDs, timestamps
// and app.request_id values of every span are.
func (tp *template) locate() error {
	return walk(tp.raw, 0, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
		// ExportTraceServiceRequest.resource_spans = 1
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		return walk(val, off, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
			// ResourceSpans.scope_spans = 2
			if num != 2 || typ != protowire.BytesType {
				return nil
			}
			return walk(val, off, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
				// ScopeSpans.spans = 2
				if num != 2 || typ != protowire.BytesType {
					return nil
				}
				tp.spans++
				return walk(val, off, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
					switch {
					case num == 1 && typ == protowire.BytesType && len(val) == 16:
						tp.traceIDs = append(tp.traceIDs, off)
					case (num == 2 || num == 4) && typ == protowire.BytesType && len(val) == 8:
						tp.spanIDs = append(tp.spanIDs, off)
					case (num == 7 || num == 8) && typ == protowire.Fixed64Type:
						tp.times = append(tp.times, off)
					case num == 9 && typ == protowire.BytesType: // Span.attributes
						return tp.locateRequestID(val, off)
					}
					return nil
				})
			})
		})
	})
}

// locateRequestID records the value of the attribute kv (a KeyValue at
// offset base) if its key is app.request_id and its value 32 hex digits.
func (tp *template) locateRequestID(kv []byte, base int) error {
	var key bool
	return walk(kv, base, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType: // KeyValue.key
			key = string(val) == requestIDKey
		case num == 2 && typ == protowire.BytesType && key: // KeyValue.value
			return walk(val, off, func(num protowire.Number, typ protowire.Type, off int, val []byte) error {
				if num != 1 || typ != protowire.BytesType || len(val) != 32 { // AnyValue.string_value
					return nil
				}
				var b [16]byte
				if _, err := hex.Decode(b[:], val); err != nil {
					return fmt.Errorf("%s %q: %w", requestIDKey, val, err)
				}
				tp.reqIDs = append(tp.reqIDs, off)
				tp.reqBase = append(tp.reqBase, b)
				return nil
			})
		}
		return nil
	})
}

// walk calls fn for every field of the message b, which starts at offset
// base of the whole request; off is the absolute offset of the field's value
// (for length-delimited fields, of its payload).
func walk(b []byte, base int, fn func(num protowire.Number, typ protowire.Type, off int, val []byte) error) error {
	pos := 0
	for pos < len(b) {
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return protowire.ParseError(n)
		}
		pos += n
		var val []byte
		start := pos
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(b[pos:])
			if m < 0 {
				return protowire.ParseError(m)
			}
			start = pos + m - len(v)
			val = v
			pos += m
		default:
			m := protowire.ConsumeFieldValue(num, typ, b[pos:])
			if m < 0 {
				return protowire.ParseError(m)
			}
			val = b[pos : pos+m]
			pos += m
		}
		if err := fn(num, typ, base+start, val); err != nil {
			return err
		}
	}
	return nil
}

// render writes into dst (grown as needed) a copy of the template whose IDs
// are XORed with keys derived from seq, and whose timestamps are shifted so
// that the spans end at about now. XOR keeps every parent/child link intact
// (a parent_span_id gets the same key as the span_id it names), and distinct
// seq values give distinct IDs with overwhelming probability. Each
// app.request_id becomes the hex digits of its template value XORed with
// the trace ID key, so it too differs on every send.
func (tp *template) render(dst []byte, seq uint64, now time.Time) []byte {
	dst = append(dst[:0], tp.raw...)
	var tk [16]byte
	binary.LittleEndian.PutUint64(tk[0:], mix(seq))
	binary.LittleEndian.PutUint64(tk[8:], mix(seq^0xa5a5a5a5a5a5a5a5))
	sk := mix(seq ^ 0x5a5a5a5a5a5a5a5a)
	if sk == 0 {
		sk = 1
	}
	for _, off := range tp.traceIDs {
		v0 := binary.LittleEndian.Uint64(dst[off:]) ^ binary.LittleEndian.Uint64(tk[0:])
		v1 := binary.LittleEndian.Uint64(dst[off+8:]) ^ binary.LittleEndian.Uint64(tk[8:])
		binary.LittleEndian.PutUint64(dst[off:], v0)
		binary.LittleEndian.PutUint64(dst[off+8:], v1)
	}
	for _, off := range tp.spanIDs {
		binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])^sk)
	}
	for i, off := range tp.reqIDs {
		var v [16]byte
		b := &tp.reqBase[i]
		binary.LittleEndian.PutUint64(v[0:], binary.LittleEndian.Uint64(b[0:])^binary.LittleEndian.Uint64(tk[0:]))
		binary.LittleEndian.PutUint64(v[8:], binary.LittleEndian.Uint64(b[8:])^binary.LittleEndian.Uint64(tk[8:]))
		hex.Encode(dst[off:off+32], v[:])
	}
	if shift := uint64(now.UnixNano()) - tp.genNanos; int64(shift) > 0 {
		for _, off := range tp.times {
			binary.LittleEndian.PutUint64(dst[off:], binary.LittleEndian.Uint64(dst[off:])+shift)
		}
	}
	return dst
}

// mix is splitmix64's finaliser: a bijection on uint64, so distinct
// sequence numbers give distinct keys.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
