// Package otlpwire walks protobuf-encoded OTLP trace export requests without
// unmarshalling them into Go structs.
//
// The ingest hot path needs only a few fields of every span (IDs, name,
// kind, times, status, scalar attributes and array elements) plus the exact
// bytes of each span, resource and scope, which the store keeps verbatim so
// that a trace is returned exactly as it was sent. Parse fills a reusable
// Traces value with sub-slices of the input; it allocates only when its
// slices grow, so a pooled Traces reaches zero allocations per request in
// steady state.
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
//
// # Limits
//
// Parse also refuses, span by span, what would make an index key too long
// for bbolt (32 KiB) or the work per span unbounded: a name over
// MaxNameBytes, an attribute key over MaxAttrKeyBytes, more than
// MaxAttributes attributes, and every span of a resource whose service.name
// or attributes exceed the same limits. The reasons name the limit, for
// example `span "x": name is 40000 bytes, the limit is 4096`. Past
// MaxAttributes attributes are skipped, not decoded, so a span of a million
// attributes costs one scan of its bytes. The store parses stored chunks
// with the same function, so spans stored by a version without the limits
// are skipped by reads and indexes alike.
//
// # Array values
//
// OpenTelemetry records some attributes as arrays; HTTP instrumentations,
// for example, capture request headers as http.request.header.<name>
// string arrays. Span.Attrs and Resource.Attrs hold only scalar values;
// the scalar elements (string, bool, int, double) of array values are
// collected in Span.Elems and Resource.Elems instead, one Attr per element
// under the array's key, for indexing and search. Keeping them apart means
// that code reading an attribute as a single value (service.name, the
// attributes that name a virtual node, flowscope.duration_unknown) never
// takes an array element for it. Nested arrays, key-value lists, bytes and
// empty values among the elements are skipped; at most MaxArrayElements
// elements are collected per array and MaxAttributes per span or resource,
// so that an array never makes a span invalid. An array attribute counts as
// one attribute against MaxAttributes.
//
// Parse walks only the fields it needs and does not check UTF-8.
// ValidateTraces and ValidateMetrics check a whole request as
// proto.Unmarshal would (UTF-8 included), with messages nested at most
// MaxDepth deep, allocating nothing; the receivers call them on every
// protobuf body, so that what the store keeps always decodes.
package otlpwire
