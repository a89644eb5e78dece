package jaegerapi

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// This file translates OTLP spans to Jaeger's span model as Jaeger v2 does
// for its query API (the OpenTelemetry Collector's jaeger translator,
// ProtoFromTraces, plus Jaeger's v1adapter): one process per resource,
// instrumentation scope, kind and status as tags, events as logs, parent
// and links as references. adjust.go then applies the query service's
// adjusters, and ui.go renders the result.

// Tag keys Jaeger derives from OTLP fields.
const (
	tagSpanKind          = "span.kind"
	tagStatusCode        = "otel.status_code"
	tagError             = "error"
	tagStatusDescription = "otel.status_description"
	tagScopeName         = "otel.scope.name"
	tagScopeVersion      = "otel.scope.version"
	tagTraceState        = "w3c.tracestate"
	// logEventField is the log field holding an event's name.
	logEventField = "event"
	// warningsAttribute is the span attribute Jaeger moves to the span's
	// warnings (jptrace.WarningsAttribute).
	warningsAttribute = "@jaeger@warnings"
	// refTypeAttribute on a link names its reference type.
	refTypeAttribute = "opentracing.ref_type"
	// noServiceName is the service of a resource without attributes.
	noServiceName = "OTLPResourceNoServiceName"
)

// valueType is the type of a tag value, numbered as Jaeger's ValueType
// (the numbers order tags of one key).
type valueType uint8

const (
	typeString valueType = iota
	typeBool
	typeInt64
	typeFloat64
	typeBinary
)

var typeNames = [...]string{"string", "bool", "int64", "float64", "binary"}

// keyValue is a tag or log field.
type keyValue struct {
	key string
	typ valueType
	str string
	b   bool
	i   int64
	f   float64
	bin []byte
}

// traceID is a Jaeger trace ID: 128 bits as two halves.
type traceID struct{ high, low uint64 }

// String formats the ID as Jaeger does: 16 hex digits when the high half
// is zero, else 32.
func (t traceID) String() string {
	var b [32]byte
	if t.high == 0 {
		return string(appendHex64(b[:0], t.low))
	}
	return string(appendHex64(appendHex64(b[:0], t.high), t.low))
}

// appendHex64 appends v as 16 lowercase hex digits.
func appendHex64(b []byte, v uint64) []byte {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], v)
	return hex.AppendEncode(b, raw[:])
}

func traceIDFromBytes(b []byte) traceID {
	if len(b) != 16 {
		return traceID{}
	}
	return traceID{high: binary.BigEndian.Uint64(b[:8]), low: binary.BigEndian.Uint64(b[8:])}
}

func spanIDFromBytes(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func formatSpanID(id uint64) string {
	var b [16]byte
	return string(appendHex64(b[:0], id))
}

// refType is a reference type, numbered as Jaeger's SpanRefType.
type refType uint8

const (
	refChildOf refType = iota
	refFollowsFrom
)

func (r refType) String() string {
	if r == refFollowsFrom {
		return "FOLLOWS_FROM"
	}
	return "CHILD_OF"
}

// spanRef is a reference to another span.
type spanRef struct {
	traceID traceID
	spanID  uint64
	typ     refType
}

// logRecord is a span event.
type logRecord struct {
	ts     time.Time
	fields []keyValue
}

// process is a service and its resource attributes.
type process struct {
	service string
	tags    []keyValue
}

// span is a span in Jaeger's model.
type span struct {
	traceID  traceID
	spanID   uint64
	name     string
	refs     []spanRef
	start    time.Time
	duration time.Duration
	tags     []keyValue
	logs     []logRecord
	process  *process
	warnings []string
}

// fromOTLP translates the spans of td, in order. Each span gets its own
// copy of its resource's process (adjusters may change one span's).
//
// With sanitize, the spans are first changed as Jaeger's storage exporter
// changes every span it stores (its sanitizers): a resource without a
// usable service.name gets missing-service-name, empty-service-name or
// service-name-wrong-type, and a span that does not end after it starts
// ends 1ns after, with a warning. Jaeger answers /api/transform without
// them.
func fromOTLP(td *tracepb.TracesData, sanitize bool) []*span {
	var out []*span
	for _, rs := range td.GetResourceSpans() {
		proc := resourceProcess(rs.GetResource())
		if sanitize {
			proc.service = serviceName(rs.GetResource())
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := convertSpan(sp, ss.GetScope())
				if end := time.Unix(0, int64(sp.GetEndTimeUnixNano())).UTC(); sanitize && !s.start.Before(end) {
					s.duration = time.Nanosecond
					s.warnings = append(s.warnings, fmt.Sprintf(warningFmtNegativeDuration, end, s.start.Add(s.duration)))
				}
				p := &process{service: proc.service, tags: append([]keyValue(nil), proc.tags...)}
				s.process = p
				out = append(out, s)
			}
		}
	}
	return out
}

// Service names Jaeger's storage exporter gives a resource without a
// usable service.name.
const (
	missingServiceName   = "missing-service-name"
	emptyServiceName     = "empty-service-name"
	serviceNameWrongType = "service-name-wrong-type"
)

// warningFmtNegativeDuration is the warning of a span that does not end
// after it starts, with its original and its new end time.
const warningFmtNegativeDuration = "Negative duration detected, sanitizing end timestamp. Original end timestamp: %s, adjusted to: %s"

// serviceName is the service of a resource as Jaeger stores it: its
// service.name (the first), or what Jaeger puts instead of an absent,
// non-string or empty one.
func serviceName(res *resourcepb.Resource) string {
	for _, kv := range res.GetAttributes() {
		if kv.GetKey() != "service.name" {
			continue
		}
		v, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_StringValue)
		switch {
		case !ok:
			return serviceNameWrongType
		case v.StringValue == "":
			return emptyServiceName
		}
		return v.StringValue
	}
	return missingServiceName
}

// resourceProcess is the process of a resource: service.name (a string;
// "" when it has another type or is absent while other attributes are
// there; noServiceName for a resource without attributes) and the other
// attributes as tags, in order.
func resourceProcess(res *resourcepb.Resource) process {
	attrs := res.GetAttributes()
	if len(attrs) == 0 {
		return process{service: noServiceName}
	}
	var p process
	for _, kv := range attrs {
		if kv.GetKey() == "service.name" {
			p.service = kv.GetValue().GetStringValue()
			break
		}
	}
	for _, kv := range attrs {
		if kv.GetKey() != "service.name" {
			p.tags = append(p.tags, attributeTag(kv.GetKey(), kv.GetValue()))
		}
	}
	return p
}

// convertSpan translates one span with its instrumentation scope.
func convertSpan(sp *tracepb.Span, scope *commonpb.InstrumentationScope) *span {
	tid := traceIDFromBytes(sp.GetTraceId())
	start := time.Unix(0, int64(sp.GetStartTimeUnixNano())).UTC()
	end := time.Unix(0, int64(sp.GetEndTimeUnixNano())).UTC()
	s := &span{
		traceID:  tid,
		spanID:   spanIDFromBytes(sp.GetSpanId()),
		name:     sp.GetName(),
		refs:     references(sp.GetLinks(), spanIDFromBytes(sp.GetParentSpanId()), tid),
		start:    start,
		duration: end.Sub(start),
		tags:     spanTags(sp, scope),
		logs:     eventLogs(sp.GetEvents()),
	}
	for _, kv := range sp.GetAttributes() {
		if kv.GetKey() == warningsAttribute {
			s.warnings = append(s.warnings, warningsOf(kv.GetValue())...)
			break
		}
	}
	if s.warnings != nil {
		kept := s.tags[:0]
		for _, t := range s.tags {
			if t.key != warningsAttribute {
				kept = append(kept, t)
			}
		}
		s.tags = kept
	}
	return s
}

// warningsOf reads the warnings attribute: an array of strings (other
// elements read as ""), or one value in its text form.
func warningsOf(v *commonpb.AnyValue) []string {
	if arr, ok := v.GetValue().(*commonpb.AnyValue_ArrayValue); ok {
		out := []string{}
		for _, e := range arr.ArrayValue.GetValues() {
			out = append(out, e.GetStringValue())
		}
		return out
	}
	return []string{valueText(v)}
}

// spanTags lists the tags of a span in Jaeger's order: scope name and
// version, the attributes, then span.kind, otel.status_code, error,
// otel.status_description and w3c.tracestate.
func spanTags(sp *tracepb.Span, scope *commonpb.InstrumentationScope) []keyValue {
	tags := make([]keyValue, 0, len(sp.GetAttributes())+7)
	if n := scope.GetName(); n != "" {
		tags = append(tags, stringTag(tagScopeName, n))
	}
	if v := scope.GetVersion(); v != "" {
		tags = append(tags, stringTag(tagScopeVersion, v))
	}
	for _, kv := range sp.GetAttributes() {
		tags = append(tags, attributeTag(kv.GetKey(), kv.GetValue()))
	}
	if k := kindName(sp.GetKind()); k != "" {
		tags = append(tags, stringTag(tagSpanKind, k))
	}
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_ERROR:
		tags = append(tags, stringTag(tagStatusCode, "ERROR"), keyValue{key: tagError, typ: typeBool, b: true})
	case tracepb.Status_STATUS_CODE_OK:
		tags = append(tags, stringTag(tagStatusCode, "OK"))
	}
	if m := sp.GetStatus().GetMessage(); m != "" {
		tags = append(tags, stringTag(tagStatusDescription, m))
	}
	if ts := sp.GetTraceState(); ts != "" {
		tags = append(tags, stringTag(tagTraceState, ts))
	}
	return tags
}

// kindName is the span.kind tag value of an OTLP kind; "" for
// UNSPECIFIED (and unknown kinds), which get no tag.
func kindName(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	case tracepb.Span_SPAN_KIND_INTERNAL:
		return "internal"
	}
	return ""
}

// references builds a span's references: CHILD_OF the parent first, then
// one per link, FOLLOWS_FROM unless the link's opentracing.ref_type is
// "child_of". A link to the parent sets the parent reference's type
// instead of adding one.
func references(links []*tracepb.Span_Link, parent uint64, tid traceID) []spanRef {
	var refs []spanRef
	if parent != 0 {
		refs = append(refs, spanRef{traceID: tid, spanID: parent, typ: refChildOf})
	}
	for _, l := range links {
		typ := refFollowsFrom
		for _, kv := range l.GetAttributes() {
			if kv.GetKey() == refTypeAttribute {
				if kv.GetValue().GetStringValue() == "child_of" {
					typ = refChildOf
				}
				break
			}
		}
		lt, ls := traceIDFromBytes(l.GetTraceId()), spanIDFromBytes(l.GetSpanId())
		if parent != 0 && lt == tid && ls == parent {
			refs[0].typ = typ
			continue
		}
		refs = append(refs, spanRef{traceID: lt, spanID: ls, typ: typ})
	}
	return refs
}

// eventLogs turns events into logs: the event's name as field "event"
// (unless an attribute has that key), then its attributes.
func eventLogs(events []*tracepb.Span_Event) []logRecord {
	if len(events) == 0 {
		return nil
	}
	logs := make([]logRecord, 0, len(events))
	for _, e := range events {
		fields := make([]keyValue, 0, len(e.GetAttributes())+1)
		if e.GetName() != "" && !hasKey(e.GetAttributes(), logEventField) {
			fields = append(fields, stringTag(logEventField, e.GetName()))
		}
		for _, kv := range e.GetAttributes() {
			fields = append(fields, attributeTag(kv.GetKey(), kv.GetValue()))
		}
		logs = append(logs, logRecord{ts: time.Unix(0, int64(e.GetTimeUnixNano())).UTC(), fields: fields})
	}
	return logs
}

func hasKey(attrs []*commonpb.KeyValue, key string) bool {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return true
		}
	}
	return false
}

func stringTag(key, v string) keyValue { return keyValue{key: key, typ: typeString, str: v} }

// attributeTag converts an attribute: scalars keep their type, bytes are
// binary, arrays and maps are strings holding their JSON, and an empty
// value is an empty string.
func attributeTag(key string, v *commonpb.AnyValue) keyValue {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return stringTag(key, x.StringValue)
	case *commonpb.AnyValue_IntValue:
		return keyValue{key: key, typ: typeInt64, i: x.IntValue}
	case *commonpb.AnyValue_BoolValue:
		return keyValue{key: key, typ: typeBool, b: x.BoolValue}
	case *commonpb.AnyValue_DoubleValue:
		return keyValue{key: key, typ: typeFloat64, f: x.DoubleValue}
	case *commonpb.AnyValue_BytesValue:
		return keyValue{key: key, typ: typeBinary, bin: x.BytesValue}
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		return stringTag(key, valueText(v))
	}
	return stringTag(key, "")
}

// valueText is the text form of an OTLP value as the OpenTelemetry
// Collector's pcommon.Value.AsString gives it: arrays and maps as JSON
// (bytes inside as base64, doubles as JSON numbers), bytes as base64.
func valueText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return jsonFloat(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		b, err := json.Marshal(rawValue(v))
		if err != nil {
			return "" // a NaN or infinity inside: pcommon gives "" too
		}
		return string(b)
	}
	return ""
}

// jsonFloat formats f as encoding/json (and pcommon) do.
func jsonFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "json: unsupported value: " + strconv.FormatFloat(f, 'g', -1, 64)
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// rawValue is v as plain Go values for encoding/json, as pcommon's AsRaw:
// a map keeps the last of duplicate keys.
func rawValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, rawValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = rawValue(kv.GetValue())
		}
		return out
	}
	return nil
}
