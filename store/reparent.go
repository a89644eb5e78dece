package store

import (
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Shared spans
//
// A Zipkin call reported as one span ID by both sides (v1 halves, v2
// shared spans) is stored as a CLIENT span with that ID and a SERVER span
// with a derived ID whose parent is the CLIENT span. The server's own
// spans carry the shared ID as their parent; the Zipkin receiver points
// them at the SERVER span when it has seen the shared span, but a child
// that arrives before both halves keeps the shared ID. sharedParents finds
// those children at read time, so that a trace shows the same tree
// whatever order its spans arrived in.

// sharedParents returns, by index into refs (the spans of one trace), the
// parent to show for each span that is not a server or consumer span,
// whose stored parent P is a client or producer span, and that has the
// same service as a server or consumer span whose parent is P: that
// span's ID. It returns nil when no span qualifies, without allocating
// for a trace without client spans.
func sharedParents(refs []spanRef) map[int][8]byte {
	var clients map[[8]byte]bool
	for _, r := range refs {
		if s := r.span(); isCallerKind(s.Kind) {
			if clients == nil {
				clients = make(map[[8]byte]bool)
			}
			clients[s.SpanID] = true
		}
	}
	if clients == nil {
		return nil
	}
	type callee struct {
		parent  [8]byte
		service string
	}
	var servers map[callee][8]byte
	for _, r := range refs {
		s := r.span()
		if isCalleeKind(s.Kind) && s.HasParent() && clients[s.ParentID] {
			if servers == nil {
				servers = make(map[callee][8]byte)
			}
			k := callee{s.ParentID, serviceOf(&r.chunk.traces, s)}
			if _, ok := servers[k]; !ok {
				servers[k] = s.SpanID
			}
		}
	}
	if servers == nil {
		return nil
	}
	var out map[int][8]byte
	for i, r := range refs {
		s := r.span()
		if isCalleeKind(s.Kind) || !s.HasParent() || !clients[s.ParentID] {
			continue
		}
		if id, ok := servers[callee{s.ParentID, serviceOf(&r.chunk.traces, s)}]; ok && id != s.SpanID {
			if out == nil {
				out = make(map[int][8]byte)
			}
			out[i] = id
		}
	}
	return out
}

func isCallerKind(k int32) bool {
	return k == int32(tracepb.Span_SPAN_KIND_CLIENT) || k == int32(tracepb.Span_SPAN_KIND_PRODUCER)
}

func isCalleeKind(k int32) bool {
	return k == int32(tracepb.Span_SPAN_KIND_SERVER) || k == int32(tracepb.Span_SPAN_KIND_CONSUMER)
}
