// Package otlphttp is the OTLP/HTTP receiver (default port 4318): an
// http.Handler that accepts OpenTelemetry export requests on
// POST /v1/traces and POST /v1/metrics, in binary protobuf
// (Content-Type: application/x-protobuf) or OTLP/JSON
// (Content-Type: application/json), optionally compressed
// (Content-Encoding: gzip or deflate), and hands each one, as protobuf
// bytes, to an ingest.TracesConsumer or ingest.MetricsConsumer. It answers
// only after the consumer returned, that is after the accepted data is
// durably committed.
//
// # Request path
//
//  1. Route, method and Content-Type are checked.
//  2. The body is read into a pooled buffer, decompressed, and limited to
//     Options.MaxBodyBytes both as sent and after decompression: a
//     Content-Length over the limit is refused before reading, and reading
//     stops one byte past the limit, so a decompression bomb costs at most
//     that much memory. With Options.Budget the buffer grows only as bytes
//     arrive, each growth reserved from the process's memory budget first
//     (the declared Content-Length never sizes an allocation); a body that
//     does not fit is refused with 429 before or while it is read.
//  3. A protobuf body is checked to decode, without building the message
//     (otlpwire.ValidateTraces and ValidateMetrics walk the wire format
//     against the OTLP descriptors and accept exactly what proto.Unmarshal
//     accepts with messages nested at most otlpwire.MaxDepth deep, about
//     ten times faster), and passed on as is. A JSON body is decoded by
//     ingest/otlpjson (hex trace and span IDs), re-encoded as protobuf and
//     checked the same way (for its depth). A body that does not decode
//     never reaches the consumer. The OTLP/gRPC receiver applies the same
//     check.
//  4. The consumer's Result and error decide the answer.
//
// Success responses are an ExportTraceServiceResponse or
// ExportMetricsServiceResponse, and error responses a google.rpc.Status,
// both in the request's encoding with the same Content-Type (protobuf when
// the request's Content-Type is missing or unsupported). The Status message
// names the problem, for example
// "decode OTLP/JSON traces: syntax error (line 1:18): unexpected token 5"
// or "request body exceeds 16777216 bytes after decompression"; its code is
// the matching google.rpc.Code, which OTLP clients may log but do not act
// on.
//
// # Status codes
//
//	situation                                        HTTP                      outcome counted
//	all accepted                                     200                       ok
//	some items rejected (Result.Rejected > 0)        200 with partial_success  partial
//	unknown path, or signal without a consumer       404                       unsupported
//	method other than POST                           405 with Allow: POST      unsupported
//	Content-Type not protobuf or JSON                415                       unsupported
//	Content-Encoding not gzip, deflate or none       415                       unsupported
//	body over MaxBodyBytes (sent or decompressed)    413                       too_large
//	memory budget cannot take the body (Budget)      429 with Retry-After      overloaded
//	malformed compression, undecodable body          400                       invalid
//	consumer error wrapping ingest.ErrInvalid        400                       invalid
//	consumer error wrapping ingest.ErrOverloaded     429 with Retry-After      overloaded
//	consumer error wrapping ingest.ErrUnavailable    503 with Retry-After      unavailable
//	any other consumer error                         500                       error
//
// Retry-After is ingest.RetryAfter in whole seconds. OTLP clients retry
// 429, 502, 503 and 504 and drop the data on any other 4xx or 5xx, so only
// overload and unavailability are answered retryably; partial success is
// never retried either. Every request is counted once in
// Options.RequestMetrics with receiver "otlp_http", signal "traces" or
// "metrics" ("unknown" for paths that are neither) and the outcome above.
//
// # Resources
//
// Request bodies are read into buffers from a sync.Pool (the consumer does
// not retain the body after it returns); gzip readers are pooled too. The
// handler sets no timeouts: the http.Server that serves it should set
// ReadHeaderTimeout and ReadTimeout, so that slow clients cannot hold
// buffers.
package otlphttp
