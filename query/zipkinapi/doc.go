// Package zipkinapi serves Zipkin's query API v2 (zipkin2-api.yaml) from
// the store, answering as Zipkin's server (ZipkinQueryApiV2) does, so
// that Zipkin's UI (Lens), Grafana's Zipkin data source and other Zipkin
// clients work against Flowscope unchanged. The collector mounts it on
// the Zipkin port, where POST goes to the Zipkin receiver
// (ingest/zipkin) and every other method comes here.
//
// # Endpoints
//
// GET and HEAD, under /api/v2 (and /zipkin/api/v2, as Zipkin serves them
// for its UI):
//
//	/services                  lower-cased service names with spans in the names lookback
//	/spans?serviceName=        span names of a service (extension: &spanKind=client|server|producer|consumer)
//	/remoteServices?serviceName= remote service names of the spans of a service
//	/traces?…                  matching traces, newest first, each a list of spans
//	/trace/{traceId}           one trace, 404 "<id> not found" when absent
//	/traceMany?traceIds=a,b    the traces found among ≥ 2 distinct IDs
//	/dependencies?endTs=[&lookback=] {parent, child, callCount, errorCount} from the flow graph
//	/autocompleteKeys, /autocompleteValues?key=  empty (no keys configured, Zipkin's default)
//
// OPTIONS answers 200 with Allow (CORS preflights are answered by the
// collector's security guard before this handler); other methods get 405,
// other paths 404. Lists of names carry "Cache-Control: max-age=300,
// must-revalidate" once /services has returned more than three services.
// JSON is written with Zipkin's member order, escaping and omission of
// absent members; errors are text/plain.
//
// # Parameters
//
// Parameters are validated as Zipkin does, in its order and with its
// messages, all 400: a missing mandatory parameter ("Mandatory
// parameter/header is missing: serviceName"), a number that does not
// parse as a Java long (int for limit), empty included (`For input
// string: "x"`), "endTs <= 0", "limit <= 0", "lookback <= 0",
// "minDuration <= 0", "maxDuration < minDuration", "maxDuration is only
// valid with minDuration"; trace IDs as Span.normalizeTraceId
// ("traceId.length > 32", "x should be lower-hex encoded with no prefix",
// "traceId is all zeros"); traceMany: "traceIds parameter is empty",
// "redundant traceId: x", "Use /api/v2/trace/{traceId} endpoint to
// retrieve a single trace". Defaults: endTs now, lookback
// Options.Lookback (one day), limit 10. serviceName, remoteServiceName
// and spanName are lower-cased, and a spanName of "all" is no condition.
// annotationQuery is parsed as QueryRequest.parseAnnotationQuery: terms
// separated by " and ", each a key (an annotation value or a tag key) or
// key=value (a tag), trimmed, the last key=value of a key winning.
//
// # Trace search
//
// A trace matches when one of its spans satisfies every condition at
// once: its timestamp (milliseconds) in [endTs-lookback, endTs], its
// local service, span name and remote service, its duration (µs) in
// [minDuration, maxDuration], and every annotationQuery term. This is
// what Zipkin's API description says ("a span in the trace must match
// all of these") and what its Elasticsearch storage does; its in-memory
// storage (QueryRequest.test) is looser: each condition may be met by a
// different span of the service, and the window applies to the root
// span's timestamp. Traces come whole, newest first by their earliest
// span. The store's index narrows the search (service, span name, time,
// duration, and the key=value terms whose text the index holds the same
// way); a TraceQuery.SpanFilter then checks each candidate span on its
// Zipkin form. limit is capped at MaxLimit (1000).
//
// # Spans
//
// OTLP spans become Zipkin spans as the OpenTelemetry Collector's zipkin
// exporter (pkg/translator/zipkin/zipkinv2) makes them: kind; name and
// service names lower-cased (as zipkin-go and Zipkin write them);
// timestamp and duration in microseconds rounded as zipkin-go does (a
// positive duration is at least 1); localEndpoint from service.name
// (unknown_service without one, as the store names it),
// network.local.address and net.host.port; remoteEndpoint from
// service.peer.name or peer.service, network.peer.address (or
// net.peer.ip) and net.peer.port, and, beyond the exporter, an IP
// address in server.address/server.port (CLIENT, PRODUCER) or
// client.address/client.port (SERVER, CONSUMER); tags from the resource
// attributes (but service.name), otel.scope.name and otel.scope.version,
// the span attributes (rendered as pdata's AsString does), with
// http.status_code copied from http.response.status_code, w3c.tracestate,
// span.kind=internal, error=true and otel.status_code (and
// otel.status_description) from the status, and otlp.link.N for links;
// events become annotations ("name|{attributes}|dropped" when they have
// attributes), sorted by time then value, duplicates dropped.
//
// Spans that came in through our Zipkin receiver (instrumentation scope
// "zipkin") come back as they were sent: their attributes are their tags
// (numbers and bools as their original text), without scope, status or
// kind tags; peer.service and the address attributes of the remote
// endpoint become the remoteEndpoint again; flowscope.duration_unknown
// means no duration. A SERVER or CONSUMER span whose ID is
// ingest/zipkin.DerivedSpanID(trace, parent, 1) is the server half the
// receiver split off a shared span: it comes back with the shared (the
// client's) ID, shared: true and the client span's parentId, and its
// children point at the shared ID again.
//
// # Known differences from Zipkin's server
//
//   - Upper-case hex trace IDs are accepted (Zipkin answers 400).
//   - Search conditions hold on one span (see "Trace search"); limit is
//     capped at 1000; traces are ordered by their earliest span.
//   - Names are matched case-insensitively and listed lower-cased, as
//     Zipkin stores them; services that differ only in case are one.
//   - /services and /remoteServices cover the names lookback (one day),
//     /spans every span name the store holds; /remoteServices reads at
//     most 100000 spans of the service, newest first.
//   - Dependencies are the flow graph's service-level calls: paired
//     client/server calls, calls of uninstrumented callees named by
//     peer.service, db.* or messaging attributes or server.address, and
//     parent → server calls without a client span; calls still waiting
//     for their server half count (on the callee they name); namespaces
//     are dropped from node names.
//   - What our Zipkin receiver does not keep does not come back: the
//     localEndpoint's addresses and port, the IPv6 address of an
//     endpoint that also has an IPv4 one, debug, an absent name (it is
//     "unknown"), the parentId of a shared server span whose client span
//     is not stored, a tag named like an endpoint attribute (it takes
//     the endpoint's place). A v1 span forwarded over several hops comes
//     back as one span per hop, the later ones with derived IDs; a
//     service name shaped like a spigo name (6 or 9 dot-separated parts)
//     comes back as its service part, the other parts as tags.
//   - Spans without service.name from other sources are in
//     unknown_service (the exporter writes OTLPResourceNoServiceName);
//     instrumentation-scope attributes are not tags; annotations without
//     a timestamp are dropped.
//   - Errors are text/plain; charset=utf-8 (Zipkin writes text/*).
package zipkinapi
