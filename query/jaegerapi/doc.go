// Package jaegerapi serves Jaeger's query API, the JSON API of the Jaeger
// UI and of Grafana's Jaeger data source, over Flowscope's store, answering
// as Jaeger v2 (v1.75.0, its jaeger_query extension) answers: the same
// paths, parameters, defaults, JSON documents, status codes and error
// messages. The collector mounts it at /jaeger/api/ on its HTTP port (the
// handler sees Jaeger's own paths, /api/...).
//
// # Endpoints
//
//	GET  /api/services                        every service (data: null when none)
//	GET  /api/services/{service}/operations   its span names (null when none)
//	GET  /api/operations?service=&spanKind=   [{name, spanKind}]; spanKind "" is UNSPECIFIED
//	GET  /api/traces?service=&operation=&tags=&tag=&minDuration=&maxDuration=&start=&end=&limit=&raw=
//	GET  /api/traces?traceID=…&traceID=…     those traces; unknown ones as error entries
//	GET  /api/traces/{traceID}?raw=           one trace, 404 "trace not found"
//	GET  /api/dependencies?endTs=&lookback=&service=
//	POST /api/transform                       OTLP/JSON body to Jaeger traces (the UI opens files with it)
//
// Every answer is the envelope {"data", "total", "limit", "offset",
// "errors"}; total is set by the services and operations endpoints only,
// as in Jaeger. prettyPrint= indents it. A failed request gets status 400
// (a bad parameter), 404 (an unknown trace), 413 (a transform body over 16
// MiB) or 500 (the store failed), with the envelope holding one error
// {"code", "msg"} sent as text/plain, as Jaeger's http.Error does.
//
// # Parameters
//
// As Jaeger's query_parser.go: start and end in Unix microseconds (a
// missing start is 48 hours ago, a missing end now), minDuration and
// maxDuration as Go durations ("1.5ms"), limit a 32-bit integer (default
// 100), tag=key:value and tags={"key":"value"} (merged; tags wins),
// traceID in 1 to 32 hex digits, raw a bool (no adjusters). lookback is
// the UI's and is ignored, as by Jaeger (the UI also sends start and end).
// Dependencies read endTs and lookback in milliseconds (default now and
// 24h). Parameters are checked in Jaeger's order with its messages.
//
// # Traces
//
// Spans are rendered as Jaeger v2 renders OTLP spans (the OpenTelemetry
// Collector's jaeger translator and Jaeger's v1adapter, convert.go), after
// the changes Jaeger's storage exporter makes to every span it stores
// (service.name missing-service-name, empty-service-name or
// service-name-wrong-type; a span not ending after its start ends 1ns
// after, with a warning) and Jaeger's query adjusters (adjust.go: Zipkin
// shared span IDs, sorted tags and log fields, duplicates removed, clock
// skew warnings as with max_clock_skew_adjust 0s, IP tags, SDK tags moved
// to the process, invalid references removed, the parent reference
// first). Trace IDs whose high half is zero print in 16 hex digits;
// processes are numbered p1, p2, … in span order; int64 values outside
// ±2^53 are strings; bytes are base64.
//
// # Search
//
// A trace matches when one span has the service, operation, start in
// [start, end], duration in [minDuration, maxDuration] and every tag.
// Service and operation go to the store's index; the tags are checked on
// the decoded span (store.TraceQuery.SpanFilter), because a tag may be
// found in places the index does not cover: an attribute of the span, its
// resource, its scope or one of its events (as Jaeger's memory storage),
// or a tag Jaeger derives (span.kind, otel.status_code, error,
// otel.status_description, otel.scope.name, otel.scope.version,
// w3c.tracestate, a log's event), compared as the text Jaeger shows
// (tags.go). Results are newest first: the store picks the most recently
// written matching traces and sorts them by start.
//
// # Differences from Jaeger
//
// internal/e2e/jaeger_test.go runs the real Jaeger beside Flowscope and
// compares every endpoint; its jaegerDifferences table lists each
// difference with the reason. In short:
//   - tags Jaeger derives from OTLP fields are searchable (Jaeger's memory
//     storage matches attributes only), and error=true finds failed spans
//     (Jaeger's memory storage then wants status OK);
//   - the store keeps one name, unknown_service, for resources without a
//     usable service.name: /api/services lists missing-service-name for
//     all (traces and searches name them as Jaeger does);
//   - limit 0 or below is 100 (Jaeger's memory storage: 500), at most 1000
//     traces are returned; a negative dependencies lookback is a 400 (500);
//   - dependencies come from the flow graph: calls between services (no
//     links inside a service, none to uninstrumented callees), counted
//     live over [endTs-lookback, endTs];
//   - a span received twice is stored once, also for raw=true, and spans
//     sharing one span ID over OTLP are kept once (Zipkin's shared spans
//     are split by the Zipkin receiver);
//   - a NaN or infinite double is the string "NaN", "+Inf" or "-Inf"
//     (Jaeger cannot encode the answer and gives 500);
//   - services, operations and links are sorted (Jaeger: map order);
//   - unknown paths are 404 (Jaeger serves its UI there); /api/archive,
//     /api/metrics, /api/deep-dependencies, /api/quality-metrics and
//     /api/v3 are not served.
package jaegerapi
