// Package zipkin converts Zipkin v1 and v2 JSON into OTLP trace export
// requests, and serves the Zipkin-compatible HTTP endpoints
// POST /api/v1/spans and POST /api/v2/spans (NewHandler). Decode streams a
// file of any size (spigo flow files are Zipkin v1 JSON); ConvertAll
// converts a size-limited body all or nothing.
//
// # Input
//
// The input is one JSON array of span objects, read element by element by
// a streaming scanner that tracks byte offsets. Unknown members are
// ignored; members are matched case-sensitively; null reads as absent; a
// leading UTF-8 byte order mark is skipped. Anything else is an error
// wrapping ingest.ErrInvalid (a *DecodeError) that names the problem, the
// index of the span object and the byte offset in the decompressed input:
//
//	zipkin v1: span 12 at byte 3456: "id": want 16 hex digits, got 15
//
// Errors include malformed or truncated JSON, a top level that is not an
// array, values of the wrong type, trace IDs of other than 16 or 32 hex
// digits, span IDs of other than 16, non-hex or all-zero IDs, missing
// traceId or id, negative or out-of-range (past 2262) times, an annotation
// without timestamp or value, a binary annotation without key, a span with
// no time at all, v2 members (localEndpoint, remoteEndpoint) in v1 input
// and binaryAnnotations in v2 input. An all-zero or empty parentId means a
// root span, and a parentId equal to the span's id is dropped, as Zipkin
// does. To fail fast on garbage and to keep the work linear, a string may
// hold at most 1 MiB, a number 64 characters, an unknown member 128 levels
// of nesting, a span object 32 MiB (when streamed), 65536 annotations
// (binary annotations, tags; after merging) and 256 cs/sr/ms/mr
// annotations.
//
// Times are microseconds since the epoch and become nanoseconds. A 64-bit
// trace ID is stored left-padded with zeros to 16 bytes.
//
// # Output
//
// Every converted span is in an instrumentation scope named "zipkin" and
// in the resource spigo.ResourceAttrs gives for its endpoint's service name
// (the parts of a spigo hierarchical name, or just service.name); an empty
// service name gives a resource without service.name (counted in
// Stats.EmptyServiceNames). Spans of equal resources share one
// ResourceSpans per request. A span name that is empty becomes "unknown".
// A span whose end is unknown gets end = start and the bool attribute
// flowscope.duration_unknown = true (Stats.Incomplete): a consumer counts
// it as a call but must not record its duration.
//
// Split spans get derived span IDs: DerivedSpanID(traceID, spanID, hop),
// a deterministic hash that is never zero nor the original ID; hop 0 is
// the original ID.
//
// # Zipkin v1
//
// Objects with the same (traceId, id) in the same batch are merged:
// annotations concatenated in input order, then stably sorted by time
// (when they hold at most one cs or ms and one sr or mr, the halves of one
// call, the client's cs, cr and ms first, so that a server clock behind
// the client's does not reverse them), binary annotations unioned, the
// first non-empty name and parentId kept, and the first timestamp and
// duration, those of an object of the client side preferred
// (Stats.Merged).
//
// The annotations of a span object are walked in order. Each cs (or ms)
// opens a client (producer) half in the cs endpoint's service; each sr (or
// mr) opens a server (consumer) half in the sr endpoint's service whose
// parent is the client half still waiting for an answer (each cs followed
// by an sr is one call). So a span object becomes a chain of OTLP spans:
//
//	cs A, sr B, ss B, cr A   CLIENT A (v1 id) → SERVER B (hop 1)
//	cs A, sr B, cs B, sr C   CLIENT A (v1 id) → SERVER B (hop 1) → CLIENT B (hop 2) → SERVER C (hop 3)
//	cs A                     CLIENT A (v1 id), unknown duration
//	sr B [, ss B]            SERVER B (v1 id), a root span
//	sr B [, ss B], parentId  SERVER B (hop 1) → parent: the v1 id (its client half, reported apart)
//
// The first half keeps the v1 span ID and has the v1 parent (resolved as
// below); every later half has the derived ID of its position in the
// chain. A client half opened after a server half is that server's child;
// an sr without a waiting cs is the child of the previous half. A cr closes
// the latest open client half that started at or before it, preferably in
// the cr endpoint's service but in any other too (priamCassandra: cs by
// the forwarding node, cr by the original caller); an ss closes a server
// half likewise. A cr or ss that closes nothing becomes an event, except
// that an ss in a span without a server half opens one (unknown duration),
// and a cr in a span without halves opens a client half. Producer and
// consumer halves have no end annotation. The span-level timestamp and
// duration, when present, set the first half's start and end. An end
// before its start is treated as unknown.
//
// Other annotations become span events on the latest half of their
// endpoint's service started at or before them (else its first half, else
// the span's first half); an "error" annotation also sets status ERROR.
// Values other than Zipkin's core annotations (cs, sr, ss, cr, ms, mr, ws,
// wr, csf, crf, ssf, srf, error) are counted in Stats.UnknownAnnotations.
// A span without cs, sr, ss, cr, ms or mr is one INTERNAL span in the
// service of its "lc" binary annotation (else of its first annotation or
// binary annotation with an endpoint), starting at its timestamp (else its
// first annotation).
//
// Binary annotations become attributes (string → string, bool → bool,
// number → int when integral, else double; a string with type I16, I32,
// I64, DOUBLE or BOOL is converted to that type when it parses) on the
// halves in their endpoint's service, or on all halves when none matches
// or they have no endpoint. Key "error" also sets status ERROR with the
// value as message. Address annotations are not attributes: "sa" sets
// peer.service (the raw endpoint service name), server.address (IPv4,
// else IPv6) and server.port on the last client half; "ca" sets
// client.address and client.port on the first server half; "ma" is
// ignored.
//
// Halves reported apart: instrumentation that reports v1 with B3
// propagation (zipkin-js, Brave's v1 reporters) sends each side's half of
// a call as its own object with the same span ID, in its own request, in
// any order. Each half converts on its own to exactly the spans the whole
// object gives, so the result does not depend on the order or on whether
// the halves meet: a client half becomes the CLIENT span (the v1 ID, the
// v1 parent); a span whose first half is a server (consumer) half and that
// has a parentId is the other side of such a call, so its halves are
// numbered from hop 1 — the SERVER span gets DerivedSpanID(trace, id, 1)
// with the v1 ID (its client half) as parent (Stats.SharedSplit). A
// server half without parentId is a root span and keeps the v1 ID, unless
// the ID memory holds a client half of that ID (a root call whose client
// half came first; if it comes after, both halves are stored as root
// spans with the same ID and the store shows one).
//
// Parents: a v1 span whose parentId is P hangs under the span P's
// children hang under: P's last server half (P's own ID when P was not
// split), or, for a P with client halves only, the ID its server half has
// when reported apart (DerivedSpanID(trace, P, 1)). P is looked up in the
// current batch (exact), then in a bounded memory of the last
// Options.KeepIDs converted spans (default 65536, first in first out;
// Stats.ParentsRemembered; a client-only half never replaces what a server
// half recorded). A P found nowhere (not converted yet: instrumentation
// reports children before their parents) keeps its ID
// (Stats.ParentsUnresolved): it may be a span that is not split or the
// client half of a shared span, which nothing in the child tells apart.
// The store's trace read path shows such a child under the SERVER span of
// P in the child's own service, when there is one.
//
// # Zipkin v2
//
// A v2 span is one OTLP span: kind CLIENT, SERVER, PRODUCER or CONSUMER
// (case-insensitive; absent means INTERNAL), the resource of
// localEndpoint.serviceName, annotations as events, tags as string
// attributes (numbers and bools in tags are kept as their JSON text). Tag
// "error" also sets status ERROR with the tag value as message.
// remoteEndpoint.serviceName becomes peer.service, and its address (IPv4,
// else IPv6) and port become server.address/server.port on CLIENT and
// PRODUCER spans, client.address/client.port on SERVER and CONSUMER spans;
// tags of the same keys win. A missing duration (absent or 0) is unknown; a
// missing timestamp is taken from the first annotation.
//
// A shared SERVER span (shared: true), which carries its client's span
// ID, gets ID DerivedSpanID(trace, id, 1) and the client span as parent
// (Stats.SharedSplit). Another span whose parentId is such a shared ID
// keeps it (the client span) unless its parent is known exactly to be a
// shared SERVER span in its own local service, found in the current batch
// or in the bounded memory: then it hangs under the derived ID.
//
// # Batching
//
// Decode buffers span objects grouped by trace. When an object of another
// trace than the previous object's arrives and the buffer holds at least
// Options.BatchSpans OTLP spans, it emits whole traces, packed in input
// order into requests of at most BatchSpans spans, as long as a full batch
// remains; the rest waits for more input, and everything is emitted at
// the end. A trace that reaches 4 × BatchSpans spans (or a buffer of 64 ×
// BatchSpans annotations, binary annotations and tags) is emitted at once
// without waiting for its end; a trace larger than a batch is split over
// requests. Memory is therefore bounded by the batch size plus the ID
// memory, whatever the input size. Objects of one trace that are far apart
// in the input land in different batches: they are not merged, and their
// parents resolve through the ID memory. Stats.Traces counts trace IDs
// through a memory of the last KeepIDs traces.
//
// ConvertAll (and the HTTP handler) convert their whole input as one
// batch into one request, and produce nothing unless all of it is valid.
// The handler keeps one ID memory per endpoint across requests, so a
// child sent after its parent's request still finds it.
package zipkin
