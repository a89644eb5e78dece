// Package otlpwire walks protobuf-encoded OTLP trace export requests without
// unmarshalling them into Go structs.
//
// The ingest hot path needs only a few fields of every span (IDs, name, kind,
// times, status, string-like attributes) plus the exact bytes of each span,
// resource and scope, which the store keeps verbatim so that a trace is
// returned exactly as it was sent. Parse fills a reusable Traces value with
// sub-slices of the input; it allocates only when its slices grow, so a pooled
// Traces reaches zero allocations per request in steady state.
//
// # Ownership
//
// Every []byte in a parsed Traces aliases the input buffer. It is valid only
// as long as the caller keeps that buffer unchanged.
//
// # Validation
//
// Parse reports undecodable input as an error. Spans that decode but are
// invalid (IDs of the wrong length or all zero, missing name or start time,
// end before start) are marked with Span.Invalid and a reason, so that the
// caller can store the rest and answer with an OTLP partial success.
package otlpwire
