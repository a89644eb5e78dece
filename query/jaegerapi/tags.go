package jaegerapi

import (
	"encoding/hex"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/store"
)

// tagFilter returns the condition a span must meet for a search with
// tags: every key=value must be found on the span as Jaeger shows it (see
// matchesTag). Nil when there are no tags.
func tagFilter(tags map[string]string) func(store.SpanView) bool {
	if len(tags) == 0 {
		return nil
	}
	return func(v store.SpanView) bool {
		for k, val := range tags {
			if !matchesTag(v, k, val) {
				return false
			}
		}
		return true
	}
}

// matchesTag reports whether key=value is a tag of the span. It is if
// value is the text of:
//   - an attribute of the span, its resource (service.name included) or
//     its instrumentation scope, or of one of its events (a log field);
//   - a tag Jaeger derives: span.kind, otel.status_code, error (true for
//     status ERROR), otel.status_description, otel.scope.name,
//     otel.scope.version, w3c.tracestate, or the log field "event" (an
//     event's name).
//
// The text of a value is how Jaeger writes it: decimal ints, true/false,
// arrays and maps as JSON; a double may be given as a JSON number or in
// Jaeger's %.10g form, bytes in base64 or hex.
func matchesTag(v store.SpanView, key, value string) bool {
	sp := v.Span
	if attrsMatch(sp.GetAttributes(), key, value) ||
		attrsMatch(v.Resource.GetAttributes(), key, value) ||
		attrsMatch(v.Scope.GetAttributes(), key, value) {
		return true
	}
	for _, e := range sp.GetEvents() {
		if attrsMatch(e.GetAttributes(), key, value) {
			return true
		}
		if key == logEventField && e.GetName() == value && e.GetName() != "" && !hasKey(e.GetAttributes(), logEventField) {
			return true
		}
	}
	switch key {
	case "service.name": // as Jaeger stores it
		return serviceName(v.Resource) == value
	case tagSpanKind:
		return kindName(sp.GetKind()) == value && value != ""
	case tagStatusCode:
		switch sp.GetStatus().GetCode() {
		case tracepb.Status_STATUS_CODE_ERROR:
			return value == "ERROR"
		case tracepb.Status_STATUS_CODE_OK:
			return value == "OK"
		}
	case tagError:
		return value == "true" && sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR
	case tagStatusDescription:
		return value != "" && sp.GetStatus().GetMessage() == value
	case tagScopeName:
		return value != "" && v.Scope.GetName() == value
	case tagScopeVersion:
		return value != "" && v.Scope.GetVersion() == value
	case tagTraceState:
		return value != "" && sp.GetTraceState() == value
	}
	return false
}

// attrsMatch reports whether attrs has key with a value whose text is
// value.
func attrsMatch(attrs []*commonpb.KeyValue, key, value string) bool {
	for _, kv := range attrs {
		if kv.GetKey() == key && valueMatches(kv.GetValue(), value) {
			return true
		}
	}
	return false
}

func valueMatches(v *commonpb.AnyValue, text string) bool {
	if valueText(v) == text {
		return true
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', 10, 64) == text
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue) == text
	}
	return false
}
