package importer

import (
	"crypto/sha256"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Trace IDs of spigo flow files.
//
// spigo numbers traces with a counter that every run restarts at 1
// (testdata/spigo/README.md §2: traceId is fmt "%016d"), so the flow files
// of two runs — two architectures, or two runs of one — use the same trace
// IDs, and so do their span IDs. Stored as they are, the spans of unrelated
// traces would share a trace, and the aggregator would pair a client span
// of one file with a server span of another, inventing calls between the
// architectures. An import of a spigo flow file therefore gives each trace
// an ID of its own:
//
//	new trace ID = the first 16 bytes of SHA-256(F ‖ R ‖ T)
//
// where F is the SHA-256 of the file as stored (32 bytes, the hash the
// import record is keyed by), R is one byte, 1 for a rebased import and 0
// otherwise (a rebased and a not rebased import of a file are two imports,
// with their own records), and T is the file's trace ID as stored before,
// left-padded to 16 bytes. Span IDs and parent span IDs are kept, so every
// trace keeps its shape; identical files get identical IDs, so importing a
// file again (resumed, or with force) gives the same traces. Every span
// gets the int attribute spigo.trace_id (AttrSpigoTraceID) holding spigo's
// number of its trace: the file's traceId read as the decimal number spigo
// wrote (0000000000000123 → 123), so `attr.spigo.trace_id=123` finds it.
//
// A Zipkin file is a spigo flow file, and only then rewritten, when it is
// Zipkin v1, every trace ID is a 64-bit ID whose hex digits are all decimal
// (spigo's zero-padded counter) and every span of a named endpoint has a
// spigo hierarchical name (its resource has service.namespace, the arch
// part; endpoints with an empty name, spigo's Hello messages, are allowed),
// with at least one such span. Trace IDs of other Zipkin files (random 64-
// or 128-bit IDs of a real system, which users search by) are stored as
// they are. The Zipkin receiver (:9411) stores every ID as it is sent.

// AttrSpigoTraceID is the span attribute (int) that keeps spigo's number
// of a trace whose ID an import rewrote.
const AttrSpigoTraceID = "spigo.trace_id"

// attrServiceNamespace is the resource attribute that the arch part of a
// spigo name becomes (spigo.AttrNamespace).
const attrServiceNamespace = "service.namespace"

// Field numbers of the OTLP messages rewritten here, beyond those of
// wire.go.
const (
	fSpanAttributes = 9 // Span.attributes
	fAnyInt         = 3 // AnyValue.int_value
)

// spigoDetect decides, in pass 1, whether a Zipkin v1 file is a spigo flow
// file (see the comment at the top of this file).
type spigoDetect struct {
	named int64 // spans of a named endpoint, all with a spigo name
	not   bool  // a span ruled the file out
}

// add examines an encoded ExportTraceServiceRequest of pass 1.
func (d *spigoDetect) add(req []byte) error {
	if d.not {
		return nil
	}
	return fields(req, func(num protowire.Number, typ protowire.Type, rs []byte) error {
		if num != fReqResourceSpans || typ != protowire.BytesType || d.not {
			return nil
		}
		var named, spigoName bool
		err := fields(rs, func(num protowire.Number, typ protowire.Type, b []byte) error {
			if num != fRSResource || typ != protowire.BytesType {
				return nil
			}
			return resourceAttrs(b, func(key, _ []byte) {
				switch string(key) {
				case attrServiceName:
					named = true
				case attrServiceNamespace:
					spigoName = true
				}
			})
		})
		if err != nil {
			return err
		}
		return fields(rs, func(num protowire.Number, typ protowire.Type, ss []byte) error {
			if num != fRSScopeSpans || typ != protowire.BytesType {
				return nil
			}
			return fields(ss, func(num protowire.Number, typ protowire.Type, span []byte) error {
				if num != fSSSpans || typ != protowire.BytesType || d.not {
					return nil
				}
				if named && !spigoName {
					d.not = true
					return nil
				}
				return fields(span, func(num protowire.Number, typ protowire.Type, b []byte) error {
					if num == fSpanTraceID && typ == protowire.BytesType {
						if _, ok := spigoTraceNumber(b); !ok {
							d.not = true
						} else if named {
							d.named++
						}
					}
					return nil
				})
			})
		})
	})
}

// isSpigo reports the decision once pass 1 has seen every request.
func (d *spigoDetect) isSpigo() bool { return !d.not && d.named > 0 }

// spigoTraceNumber returns the number spigo wrote as the trace ID id (16
// bytes, a 64-bit ID left-padded): its 16 hex digits read as decimal
// digits. ok is false when id is not such an ID.
func spigoTraceNumber(id []byte) (n int64, ok bool) {
	if len(id) != 16 {
		return 0, false
	}
	for _, b := range id[:8] {
		if b != 0 {
			return 0, false
		}
	}
	for _, b := range id[8:] {
		hi, lo := b>>4, b&0xf
		if hi > 9 || lo > 9 {
			return 0, false
		}
		n = n*100 + int64(hi)*10 + int64(lo)
	}
	return n, n > 0
}

// spigoRewriter rewrites the trace IDs of the requests of a spigo flow
// file (pass 2).
type spigoRewriter struct {
	// seed is F ‖ R of the ID formula, followed by room for T.
	seed [sha256.Size + 1 + 16]byte
	// ids memoises the new IDs of the current request's traces.
	ids map[[16]byte][16]byte
	// bufs are the scratch buffers of the nested messages, by depth.
	bufs [3][]byte
}

// newSpigoRewriter returns the rewriter of the import of a file with
// SHA-256 fileSum, rebased or not.
func newSpigoRewriter(fileSum []byte, rebased bool) *spigoRewriter {
	r := &spigoRewriter{ids: make(map[[16]byte][16]byte)}
	copy(r.seed[:sha256.Size], fileSum)
	if rebased {
		r.seed[sha256.Size] = 1
	}
	return r
}

// traceID returns the new ID of the trace with the file's ID old.
func (r *spigoRewriter) traceID(old [16]byte) [16]byte {
	if id, ok := r.ids[old]; ok {
		return id
	}
	copy(r.seed[sha256.Size+1:], old[:])
	sum := sha256.Sum256(r.seed[:])
	id := [16]byte(sum[:16])
	if id == ([16]byte{}) {
		id[15] = 1 // never the invalid all-zero ID
	}
	r.ids[old] = id
	return id
}

// rewrite appends to dst the encoded ExportTraceServiceRequest req with
// every span's trace ID replaced and the attribute spigo.trace_id added.
func (r *spigoRewriter) rewrite(dst, req []byte) ([]byte, error) {
	clear(r.ids)
	return r.nested(dst, req, []protowire.Number{fReqResourceSpans, fRSScopeSpans, fSSSpans}, 0)
}

// nested appends msg to dst, rewriting its length-delimited fields
// numbered path[0]: along the rest of path, and at its end as spans.
func (r *spigoRewriter) nested(dst, msg []byte, path []protowire.Number, depth int) ([]byte, error) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errMalformed, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return nil, fmt.Errorf("%w: field %d: %v", errMalformed, num, protowire.ParseError(m))
		}
		if num != path[0] || typ != protowire.BytesType {
			dst = append(dst, msg[:n+m]...)
			msg = msg[n+m:]
			continue
		}
		val, _ := protowire.ConsumeBytes(msg[n:])
		var inner []byte
		var err error
		if len(path) == 1 {
			inner, err = r.span(r.bufs[depth][:0], val)
		} else {
			inner, err = r.nested(r.bufs[depth][:0], val, path[1:], depth+1)
		}
		if err != nil {
			return nil, err
		}
		r.bufs[depth] = inner
		dst = protowire.AppendTag(dst, num, protowire.BytesType)
		dst = protowire.AppendBytes(dst, inner)
		msg = msg[n+m:]
	}
	return dst, nil
}

// span appends the encoded Span span to dst with its trace ID replaced and
// the attribute spigo.trace_id appended.
func (r *spigoRewriter) span(dst, span []byte) ([]byte, error) {
	var number int64
	for rest := span; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errMalformed, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return nil, fmt.Errorf("%w: span field %d: %v", errMalformed, num, protowire.ParseError(m))
		}
		if num == fSpanTraceID && typ == protowire.BytesType {
			old, _ := protowire.ConsumeBytes(rest[n:])
			nb, ok := spigoTraceNumber(old)
			if !ok {
				return nil, fmt.Errorf("BUG: trace ID %x of a spigo flow file", old)
			}
			number = nb
			id := r.traceID([16]byte(old))
			dst = protowire.AppendTag(dst, fSpanTraceID, protowire.BytesType)
			dst = protowire.AppendBytes(dst, id[:])
		} else {
			dst = append(dst, rest[:n+m]...)
		}
		rest = rest[n+m:]
	}
	// KeyValue{key: "spigo.trace_id", value: AnyValue{int_value: number}}
	value := protowire.SizeTag(fAnyInt) + protowire.SizeVarint(uint64(number))
	kv := protowire.SizeTag(fKVKey) + protowire.SizeBytes(len(AttrSpigoTraceID)) +
		protowire.SizeTag(fKVValue) + protowire.SizeBytes(value)
	dst = protowire.AppendTag(dst, fSpanAttributes, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(kv))
	dst = protowire.AppendTag(dst, fKVKey, protowire.BytesType)
	dst = protowire.AppendString(dst, AttrSpigoTraceID)
	dst = protowire.AppendTag(dst, fKVValue, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(value))
	dst = protowire.AppendTag(dst, fAnyInt, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(number))
	return dst, nil
}
