// Package ingest holds what every receiver shares: the consumer interfaces that
// receivers hand decoded export requests to, and the result and error values
// that tell a receiver how to answer its client.
//
// # Acknowledgement
//
// A consumer returns only after the accepted part of a request is durably
// committed (or has definitely failed). A receiver therefore acknowledges a
// request to its client only after the consumer returned a nil error.
//
// # Errors
//
// Consumers classify failures with the sentinels below so that every receiver
// maps them to the same protocol answers:
//
//   - ErrOverloaded: the store cannot keep up; retry later
//     (HTTP 429 + Retry-After, gRPC RESOURCE_EXHAUSTED + RetryInfo).
//   - ErrUnavailable: the store is closing or failed; retry later
//     (HTTP 503 + Retry-After, gRPC UNAVAILABLE + RetryInfo).
//   - an error wrapping ErrInvalid: the payload could not be decoded
//     (HTTP 400, gRPC INVALID_ARGUMENT); never retried.
package ingest

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors returned (wrapped) by consumers.
var (
	// ErrOverloaded means the request was refused because the store's queue
	// is full. Nothing of the request was stored.
	ErrOverloaded = errors.New("store overloaded")
	// ErrUnavailable means the store is shutting down or has failed.
	// Nothing of the request was stored.
	ErrUnavailable = errors.New("store unavailable")
	// ErrInvalid means the payload itself cannot be decoded. Nothing was stored.
	ErrInvalid = errors.New("invalid payload")
)

// RetryAfter is the delay receivers suggest to clients refused with
// ErrOverloaded or ErrUnavailable.
const RetryAfter = 1 * time.Second

// Result tells how much of a decodable export request was refused item by
// item (OTLP partial success). A zero Result means everything was accepted.
type Result struct {
	// Rejected counts spans (for traces) or data points (for metrics) that
	// failed validation and were not stored.
	Rejected int64
	// Message names the first validation problem; empty when Rejected is 0.
	Message string
}

// TracesConsumer receives OTLP trace export requests.
type TracesConsumer interface {
	// ConsumeTraces stores the valid spans of req, a protobuf-encoded
	// opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest.
	// It returns after they are durably committed. The consumer does not
	// retain req after it returns.
	ConsumeTraces(ctx context.Context, req []byte) (Result, error)
}

// MetricsConsumer receives OTLP metrics export requests.
type MetricsConsumer interface {
	// ConsumeMetrics stores the valid data points of req, a protobuf-encoded
	// opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest.
	// It returns after they are durably committed. The consumer does not
	// retain req after it returns.
	ConsumeMetrics(ctx context.Context, req []byte) (Result, error)
}
