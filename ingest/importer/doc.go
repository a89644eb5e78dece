// Package importer imports files into a Sink (the store, through
// storesink.Sink): Zipkin v1 and v2 JSON (spigo flow files among them),
// OTLP/JSON traces and metrics, and spigo's Guesstimate, old metrics, graph
// and architecture files. Import reads a file of any size with memory
// bounded by the batch size, checks all of it before it sends anything,
// and returns a Summary of what the file held and what was sent.
//
// # Formats
//
//	zipkin-v1          JSON array of Zipkin v1 spans (spigo json_metrics/<arch>_flow.json)
//	zipkin-v2          JSON array of Zipkin v2 spans
//	otlp-json-traces   OTLP/JSON {"resourceSpans":[…]}, one object or JSON Lines
//	otlp-json-metrics  OTLP/JSON {"resourceMetrics":[…]}, one object or JSON Lines
//	spigo-guess        spigo Guesstimate latency samples (json_metrics/<arch>.guess)
//	spigo-metrics      old spigo metrics JSON, "counters" and "gauges" (json_metrics/<arch>_metrics.json)
//	spigo-graph        spigo graph JSON, a "graph" array (json/<arch>.json)
//	spigo-arch         spigo architecture definition, a "services" array (json_arch/<arch>_arch.json)
//
// Zipkin is converted by package zipkin (spigo's hierarchical endpoint
// names become resource attributes, see spigo.ResourceAttrs), OTLP/JSON by
// package otlpjson, the spigo files by package spigo. Any of them may be
// gzip-compressed: Import recognises the gzip magic bytes and decompresses
// transparently (byte offsets in errors then count decompressed bytes).
//
// # Detection
//
// With Options.Format empty, Detect decides from the first DetectBytes of
// the (decompressed) input, after a UTF-8 byte order mark and whitespace.
// A JSON array is Zipkin: v2 if its first object has localEndpoint,
// remoteEndpoint, kind, tags or shared, else v1; an empty array (spigo's
// empty run, "[", blank line, "]") is v1. A JSON object is decided by its
// first decisive top-level key: resourceSpans, resourceMetrics (the first
// line of JSON Lines is such an object), space (Guesstimate), counters or
// gauges (old metrics), graph, services; when the head ends before one, a
// "version" of spigo-… means a graph and arch-… an architecture. The head
// may be cut anywhere, even inside a string. Anything else fails with
// `unknown format: "<the first bytes>"…`, wrapping ingest.ErrInvalid,
// after reading no more than the head: a gigabyte of garbage fails at
// once. With an explicit Format, the input must still start with "[" (Zipkin)
// or "{" (the others).
//
// # Two passes
//
// Streamed formats (Zipkin and OTLP/JSON) are read twice, through
// Input.Open. Pass 1 decodes everything and sends nothing: it validates
// the whole file, so that bad input changes nothing, and finds what the
// Summary reports (spans, traces, services, the time range) and the shift
// for Rebase. Pass 2 decodes again and sends requests of at most
// Options.BatchSpans spans (default 4096; for metrics, points in whole
// metrics) to the sink. The spigo Guesstimate, metrics, graph and
// architecture files are small: they are read and checked whole (at most
// Options.MaxReadBytes, default 256 MiB), then sent.
//
// Errors in the input wrap ingest.ErrInvalid and name the file, the
// problem and its position:
//
//	import lamp_flow.json: zipkin v1: span 12 at byte 3456: "id": want 16 hex digits, got 15
//	import traces.jsonl: otlp-json-traces: line 3 (byte 812): syntax error (column 18): unexpected token
//	import lamp.json: spigo graph: graph element 4: … (byte 1234)
//
// OTLP/JSON spans are checked as the store would (IDs of the right length
// and not zero, a name, a start time, an end not before the start), so that
// the store does not reject them one by one later.
//
// # spigo trace IDs
//
// spigo restarts its trace and span counters at 1 in every run, so flow
// files share IDs. Pass 1 recognises a spigo flow file (Zipkin v1, every
// trace ID a zero-padded decimal counter, every named endpoint a spigo
// name); pass 2 then gives each of its traces the ID SHA-256(file hash ‖
// rebased ‖ trace ID)[:16] and every span the attribute spigo.trace_id
// (Summary.SpigoTraceIDs; see spigoids.go and docs/import.md). Other
// files keep their IDs.
//
// # Rebase
//
// Options.Rebase shifts every time of the data by one amount, so that the
// latest time in the file (over span starts, ends and event times, or
// metric point and exemplar times) becomes Rebase; durations and the order
// of events are unchanged. The shift is computed in pass 1 and applied in
// pass 2 to the encoded trace requests in place (their times are fixed64
// fields) and to the decoded metrics. Guesstimate and old metrics files
// have no times: their points are stamped at Rebase, else Options.Now.
//
// # Memory
//
// Memory is bounded by the batch size, not by the file: Zipkin is
// streamed span object by span object (package zipkin keeps a batch and a
// bounded ID memory, about 6.5 MB), OTLP/JSON Lines one line at a time.
// Files read whole (the spigo files, a pretty-printed OTLP/JSON object) and
// single lines are bounded by Options.MaxReadBytes and fail beyond it. The
// summary's sets are bounded too: at most 10000 service names, and trace
// IDs counted through a memory of the last 65536. Importing a generated
// 740 MB spigo flow file (1,000,000 spans) with the default batch keeps
// about 21 MB of live heap, 45 MB of heap in use and 60 MB of RSS
// (BenchmarkImportSpigo, TestImportMemoryBounded).
//
// # Retries
//
// A sink that refuses a request with ingest.ErrOverloaded or
// ingest.ErrUnavailable stored nothing of it: Import waits (100 ms,
// doubling up to 2 s) and sends the same request again, until it is
// accepted or the context ends, so that an overloaded store slows an
// import down but never fails it or loses data. Any other sink error stops
// the import; the error names the request ("request 12: …") and the
// Summary counts what was accepted before it. Items refused one by one (a
// partial success) are counted in Summary.Rejected and grouped by reason
// in Summary.Rejects; the import goes on.
//
// # Resume
//
// With a sink that is a MarkSink (storesink.Sink is), an import records its
// progress: every request of pass 2 carries a Mark (the requests, spans
// and points stored so far, the shift and batch size used, whether the
// file is done) that the store writes in the same transaction as the
// request's data, under a key made of the SHA-256 of the file as stored
// (computed in pass 1), its format and whether it is rebased. After a
// crash the mark and the data it counts are both durable or both absent.
// When Import finds a mark for the file at the end of pass 1:
//
//   - done: it sends nothing and returns a Summary with AlreadyImported
//     set and Previous telling when the file was imported and what was
//     stored;
//   - not done (the import was interrupted): it sends pass 2 again with
//     the batch size and the shift of the interrupted import (whatever
//     Options.Rebase now says; a warning tells when they differ), skips
//     the Previous.Requests requests stored, checks that they hold the
//     spans and points the mark counts, and sends the rest.
//
// Batching is deterministic (the same file, format and batch size give
// the same requests), so that every span and point is stored exactly
// once. Options.Force deletes the mark and imports the file from its
// start (its spans are then stored twice). A request whose items are all
// rejected stores no mark: a resumed import sends it again (it is rejected
// again; nothing is stored twice), and when it is the last one the file
// is never marked done. Architectures (spigo graph and architecture files)
// keep no mark: importing one again replaces the architecture of its name.
//
// # Summary
//
// Spans counts the file's spans: distinct Zipkin (traceId, id) pairs (a
// Zipkin v1 span with a cs→sr call becomes two OTLP spans, client and
// server, counted in OTLPSpans) or OTLP spans. Traces counts distinct trace
// IDs. Services lists the service.name of the resources built (for spigo
// names, part 7, the service); spans without one (a Zipkin endpoint with
// an empty serviceName, as spigo writes for Hello messages) are counted in
// UnnamedSpans instead. Start and End are the time range after the shift.
// MetricPoints counts data points; Architecture describes a stored
// architecture. Warnings name what was repaired (the spigo metrics comma),
// skipped (Guesstimate series, eureka dependencies) or incomplete (Zipkin
// spans without an end, empty service names, unknown annotations).
//
// # Architectures
//
// A spigo graph becomes a store.Architecture named Options.ArchName, else
// the graph's "arch", else the file name without extension, with source
// "spigo graph <file name>": one node per graph node, ID the node name
// (lamp.us-east-1.zoneA.webserver00), with the names traces of the same
// architecture have at each level: service (webserver), instance
// (webserver00), zone (zoneA, "*" for cross-zone actors), region
// (us-east-1, "*") and namespace (the arch); and one edge per dependency.
// An architecture definition becomes a service-level architecture: one
// node per service (ID and service the service name, namespace the arch)
// and its dependencies as edges, without eureka.
package importer
