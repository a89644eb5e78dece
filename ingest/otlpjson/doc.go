// Package otlpjson encodes and decodes OTLP/JSON, the JSON encoding of the
// OpenTelemetry protocol, to and from the protobuf types of
// go.opentelemetry.io/proto/otlp.
//
// OTLP/JSON is the proto3 JSON mapping with deviations (OTLP specification,
// "JSON Protobuf Encoding"):
//
//   - trace and span IDs (traceId, spanId, parentSpanId of spans, links,
//     exemplars and log records) are hex strings, case-insensitive on input,
//     where the proto3 mapping would use base64 for bytes; every other bytes
//     field, AnyValue.bytesValue included, stays base64;
//   - enums are written as integers;
//   - keys are lowerCamelCase field names;
//   - receivers ignore unknown fields.
//
// Unmarshal accepts what the spec asks receivers to accept and what the
// proto3 JSON mapping allows besides: lowerCamelCase or proto field names,
// enums as integers or names (an unknown name is ignored like an unknown
// field), 64-bit integers as numbers or decimal strings, and unknown
// fields, which are dropped. Marshal writes the canonical form: compact,
// lowerCamelCase, enums as integers, 64-bit integers as strings, IDs as
// lowercase hex, fields in schema order (so the output is deterministic).
//
// # How IDs are converted
//
// The codec is protojson plus a rewrite of the ID members around it, done
// by a small JSON lexer (ids.go) that knows strings, keys and whitespace and
// leaves everything else to protojson:
//
//   - Unmarshal copies the document, replacing the string value of every
//     member named traceId, spanId or parentSpanId (or trace_id, span_id,
//     parent_span_id) by the base64 of the bytes its hex denotes, then runs
//     protojson, which reads bytes fields as base64. The replacement is
//     unpadded base64 (never longer than the hex) followed by spaces up to
//     the original length, so every later byte keeps its offset and the
//     line:column positions in protojson's errors point into the caller's
//     document.
//   - Marshal runs protojson (enums as numbers) and rewrites the base64 it
//     wrote for those members as lowercase hex, dropping protojson's
//     deliberately random whitespace on the way.
//
// The rewrite needs no knowledge of where a key sits in the tree: in the
// OTLP schemas these names only ever denote bytes IDs, and OTLP attribute
// keys are JSON values ({"key":"traceId",…}), never JSON keys, so they are
// not touched. A member with such a name inside an unknown field is
// rewritten too and then dropped with the field.
//
// Why not the simpler trick of letting protojson read the hex as base64 and
// converting afterwards (hex digits are base64 characters, so 32 hex digits
// read as 24 bytes that re-encode to the same string)? It works for
// well-formed IDs, but an ID of a length of 1 modulo 4, or with a character
// outside the base64 alphabet, fails the whole payload in protojson, and
// non-canonical lengths decode lossily. The lexer sees every ID as written.
//
// # Invalid IDs
//
// An ID string that is not valid hex (odd length, a non-hex character, a
// 0x prefix, blanks) does not fail the decode: it becomes the one-byte ID
// 0xff. No OTLP ID has that length (trace IDs have 16 bytes, span IDs 8, an
// absent parent span ID none), so the store's validation rejects the span
// or exemplar carrying it and reports it in partial_success, while the
// valid items of the payload are kept. A fixed marker, rather than the bytes
// base64 would have made of the string, guarantees a wrong length: a
// 22-character non-hex string, read as base64, would give a plausible 16
// bytes. Valid hex of the wrong length (say 12 digits for a span ID) is kept
// as the bytes it denotes, for validation to reject the same way. An ID
// that is not even a valid JSON string (raw control characters, invalid
// UTF-8, bad escapes) is left to protojson and fails the decode as any such
// string would; a JSON number where an ID belongs fails likewise.
//
// One consequence of the fixed-length rewrite: a one-character invalid ID
// ("a") grows by one byte when replaced, and error positions later on the
// same line are then one column off.
//
// # Errors
//
// Decode errors are protojson's, without its "proto: " prefix, and carry
// the position protojson gives, for example
// `syntax error (line 1:18): unexpected token 5` or
// `(line 1:65): invalid value for fixed64 field startTimeUnixNano: "-1"`
// (a truncated document gives just `unexpected EOF`). Callers add their own context
// ("decode OTLP/JSON traces: …").
package otlpjson
