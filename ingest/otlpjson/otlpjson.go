package otlpjson

import (
	"strings"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var (
	// OTLP/JSON receivers must ignore unknown fields. protojson accepts
	// lowerCamelCase and proto field names, enum numbers and names, and
	// 64-bit integers as numbers or strings, as the spec asks of receivers.
	unmarshalOptions = protojson.UnmarshalOptions{DiscardUnknown: true}
	// OTLP/JSON senders must write enums as integers; protojson writes
	// lowerCamelCase keys and 64-bit integers as decimal strings.
	marshalOptions = protojson.MarshalOptions{UseEnumNumbers: true}
)

// Unmarshal decodes the OTLP/JSON document data into m, which must be an
// OTLP message (an export request, TracesData, a Span…): every member named
// traceId, spanId or parentSpanId (or trace_id, span_id, parent_span_id) is
// read as a hex ID, as OTLP/JSON requires of every OTLP message. m is reset
// first. data is not modified or retained.
//
// An ID that is not valid hex does not fail the decode: it becomes an ID of
// the wrong length (see the package documentation). Errors come from
// protojson without its "proto:" prefix, with the line and column where
// protojson gives them; callers add their own context.
func Unmarshal(data []byte, m proto.Message) error {
	src := rewriteIDs(data, hexToBase64, false, len(data)+1)
	if err := unmarshalOptions.Unmarshal(src, m); err != nil {
		return codecErr(err)
	}
	return nil
}

// Marshal encodes the OTLP message m as compact OTLP/JSON: lowerCamelCase
// keys, enums as integers, 64-bit integers as decimal strings, trace and
// span IDs as lowercase hex, AnyValue bytes as base64, and no whitespace
// outside strings. Fields are written in schema order, so the output is
// deterministic for a given message. m is not modified.
func Marshal(m proto.Message) ([]byte, error) {
	raw, err := marshalOptions.Marshal(m)
	if err != nil {
		return nil, codecErr(err)
	}
	// Hex IDs are a third longer than the base64 protojson wrote.
	return rewriteIDs(raw, base64ToHex, true, len(raw)+len(raw)/8), nil
}

// UnmarshalTraces decodes an OTLP/JSON ExportTraceServiceRequest, the body
// of an OTLP/HTTP POST /v1/traces with Content-Type application/json.
func UnmarshalTraces(data []byte) (*coltracepb.ExportTraceServiceRequest, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := Unmarshal(data, req); err != nil {
		return nil, err
	}
	return req, nil
}

// UnmarshalMetrics decodes an OTLP/JSON ExportMetricsServiceRequest, the
// body of an OTLP/HTTP POST /v1/metrics with Content-Type application/json.
func UnmarshalMetrics(data []byte) (*colmetricspb.ExportMetricsServiceRequest, error) {
	req := &colmetricspb.ExportMetricsServiceRequest{}
	if err := Unmarshal(data, req); err != nil {
		return nil, err
	}
	return req, nil
}

// UnmarshalTracesData decodes OTLP/JSON TracesData ({"resourceSpans":[…]}),
// the form of OTLP JSON files and of the query API's trace responses.
func UnmarshalTracesData(data []byte) (*tracepb.TracesData, error) {
	td := &tracepb.TracesData{}
	if err := Unmarshal(data, td); err != nil {
		return nil, err
	}
	return td, nil
}

// UnmarshalMetricsData decodes OTLP/JSON MetricsData
// ({"resourceMetrics":[…]}).
func UnmarshalMetricsData(data []byte) (*metricspb.MetricsData, error) {
	md := &metricspb.MetricsData{}
	if err := Unmarshal(data, md); err != nil {
		return nil, err
	}
	return md, nil
}

// MarshalTraces encodes an ExportTraceServiceRequest as OTLP/JSON (see Marshal).
func MarshalTraces(req *coltracepb.ExportTraceServiceRequest) ([]byte, error) {
	return Marshal(req)
}

// MarshalMetrics encodes an ExportMetricsServiceRequest as OTLP/JSON (see Marshal).
func MarshalMetrics(req *colmetricspb.ExportMetricsServiceRequest) ([]byte, error) {
	return Marshal(req)
}

// MarshalTracesData encodes TracesData as OTLP/JSON, {"resourceSpans":[…]}
// (see Marshal). The query API returns traces in this form.
func MarshalTracesData(td *tracepb.TracesData) ([]byte, error) {
	return Marshal(td)
}

// MarshalMetricsData encodes MetricsData as OTLP/JSON, {"resourceMetrics":[…]}
// (see Marshal).
func MarshalMetricsData(md *metricspb.MetricsData) ([]byte, error) {
	return Marshal(md)
}

// codecError is a protojson error without protojson's "proto: " prefix
// (which protojson varies on purpose between a regular and a non-breaking
// space).
type codecError struct {
	msg string
	err error
}

func (e *codecError) Error() string { return e.msg }
func (e *codecError) Unwrap() error { return e.err }

func codecErr(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "proto: ")
	msg = strings.TrimPrefix(msg, "proto:\u00a0")
	return &codecError{msg: msg, err: err}
}
