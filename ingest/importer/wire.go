package importer

import (
	"encoding/binary"
	"errors"
	"fmt"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the OTLP trace messages walked here
// (opentelemetry/proto collector/trace/v1, trace/v1, resource/v1,
// common/v1).
const (
	fReqResourceSpans = 1 // ExportTraceServiceRequest.resource_spans
	fRSResource       = 1 // ResourceSpans.resource
	fRSScopeSpans     = 2 // ResourceSpans.scope_spans
	fResAttributes    = 1 // Resource.attributes
	fKVKey            = 1 // KeyValue.key
	fKVValue          = 2 // KeyValue.value
	fAnyString        = 1 // AnyValue.string_value
	fSSSpans          = 2 // ScopeSpans.spans
	fSpanTraceID      = 1 // Span.trace_id
	fSpanStart        = 7 // Span.start_time_unix_nano (fixed64)
	fSpanEnd          = 8 // Span.end_time_unix_nano (fixed64)
	fSpanEvents       = 11
	fEventTime        = 1 // Span.Event.time_unix_nano (fixed64)
)

// attrServiceName is the resource attribute naming a span's service.
const attrServiceName = "service.name"

// traceVisitor receives what walkTraces finds.
type traceVisitor struct {
	// span is called for every span with its resource's service.name
	// (nil when absent) and its trace ID. Both alias the request.
	span func(service, traceID []byte)
	// time is called with the 8 little-endian bytes of every non-zero
	// time (span start and end, event times), which it may rewrite in
	// place.
	time func(b []byte)
}

// walkTraces walks a protobuf-encoded ExportTraceServiceRequest without
// unmarshalling it.
func walkTraces(req []byte, v *traceVisitor) error {
	return fields(req, func(num protowire.Number, typ protowire.Type, rs []byte) error {
		if num != fReqResourceSpans || typ != protowire.BytesType {
			return nil
		}
		var service []byte
		err := fields(rs, func(num protowire.Number, typ protowire.Type, b []byte) error {
			if num == fRSResource && typ == protowire.BytesType {
				s, err := resourceService(b)
				service = s
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
		return fields(rs, func(num protowire.Number, typ protowire.Type, ss []byte) error {
			if num != fRSScopeSpans || typ != protowire.BytesType {
				return nil
			}
			return fields(ss, func(num protowire.Number, typ protowire.Type, span []byte) error {
				if num != fSSSpans || typ != protowire.BytesType {
					return nil
				}
				return walkSpan(span, service, v)
			})
		})
	})
}

// walkSpan walks one encoded Span.
func walkSpan(span, service []byte, v *traceVisitor) error {
	var traceID []byte
	err := fields(span, func(num protowire.Number, typ protowire.Type, b []byte) error {
		switch {
		case num == fSpanTraceID && typ == protowire.BytesType:
			traceID = b
		case (num == fSpanStart || num == fSpanEnd) && typ == protowire.Fixed64Type:
			timeField(b, v)
		case num == fSpanEvents && typ == protowire.BytesType:
			return fields(b, func(num protowire.Number, typ protowire.Type, b []byte) error {
				if num == fEventTime && typ == protowire.Fixed64Type {
					timeField(b, v)
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && v.span != nil {
		v.span(service, traceID)
	}
	return err
}

func timeField(b []byte, v *traceVisitor) {
	if v.time != nil && binary.LittleEndian.Uint64(b) != 0 {
		v.time(b)
	}
}

// resourceService returns the string value of the service.name attribute
// of an encoded Resource, or nil.
func resourceService(res []byte) ([]byte, error) {
	var service []byte
	var valueErr error
	err := resourceAttrs(res, func(key, value []byte) {
		if string(key) != attrServiceName {
			return
		}
		service = nil
		valueErr = fields(value, func(num protowire.Number, typ protowire.Type, b []byte) error {
			if num == fAnyString && typ == protowire.BytesType {
				service = b
			}
			return nil
		})
	})
	if err == nil {
		err = valueErr
	}
	return service, err
}

// resourceAttrs calls f with the key and the encoded AnyValue of every
// attribute of an encoded Resource.
func resourceAttrs(res []byte, f func(key, value []byte)) error {
	return fields(res, func(num protowire.Number, typ protowire.Type, kv []byte) error {
		if num != fResAttributes || typ != protowire.BytesType {
			return nil
		}
		var key, val []byte
		err := fields(kv, func(num protowire.Number, typ protowire.Type, b []byte) error {
			switch {
			case num == fKVKey && typ == protowire.BytesType:
				key = b
			case num == fKVValue && typ == protowire.BytesType:
				val = b
			}
			return nil
		})
		if err == nil {
			f(key, val)
		}
		return err
	})
}

// errMalformed is returned for a request that is not valid protobuf; the
// requests walked here are built by this module, so it means a bug.
var errMalformed = errors.New("malformed OTLP protobuf")

// fields calls f for every field of the encoded message b with its value:
// the contents of a length-delimited field, the 8 or 4 bytes of a fixed
// field, the encoded varint otherwise. Values alias b.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, val []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", errMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("%w: field %d: %v", errMalformed, num, protowire.ParseError(m))
		}
		val := b[:m]
		if typ == protowire.BytesType {
			_, k := protowire.ConsumeVarint(val)
			val = val[k:]
		}
		if err := f(num, typ, val); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

// shiftTraces adds delta nanoseconds to every non-zero time of the
// encoded ExportTraceServiceRequest req, in place.
func shiftTraces(req []byte, delta int64) error {
	return walkTraces(req, &traceVisitor{time: func(b []byte) {
		binary.LittleEndian.PutUint64(b, uint64(int64(binary.LittleEndian.Uint64(b))+delta))
	}})
}

// metricTimes calls f with a pointer to every non-zero time of req's data
// points (start and point times, exemplar times) and returns the number of
// data points.
func metricTimes(req *colmetricspb.ExportMetricsServiceRequest, f func(t *uint64)) int64 {
	visit := func(ts ...*uint64) {
		for _, t := range ts {
			if *t != 0 && f != nil {
				f(t)
			}
		}
	}
	var points int64
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				for _, p := range m.GetGauge().GetDataPoints() {
					points++
					visit(&p.StartTimeUnixNano, &p.TimeUnixNano)
					for _, e := range p.Exemplars {
						visit(&e.TimeUnixNano)
					}
				}
				for _, p := range m.GetSum().GetDataPoints() {
					points++
					visit(&p.StartTimeUnixNano, &p.TimeUnixNano)
					for _, e := range p.Exemplars {
						visit(&e.TimeUnixNano)
					}
				}
				for _, p := range m.GetHistogram().GetDataPoints() {
					points++
					visit(&p.StartTimeUnixNano, &p.TimeUnixNano)
					for _, e := range p.Exemplars {
						visit(&e.TimeUnixNano)
					}
				}
				for _, p := range m.GetExponentialHistogram().GetDataPoints() {
					points++
					visit(&p.StartTimeUnixNano, &p.TimeUnixNano)
					for _, e := range p.Exemplars {
						visit(&e.TimeUnixNano)
					}
				}
				for _, p := range m.GetSummary().GetDataPoints() {
					points++
					visit(&p.StartTimeUnixNano, &p.TimeUnixNano)
				}
			}
		}
	}
	return points
}
