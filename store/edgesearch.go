package store

import (
	"strings"
	"time"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/otlpwire"
)

// Edge search: TraceQuery.Source and Target select the traces holding a
// call that makes the flow-graph edge Source → Target at the service
// level, as the aggregator pairs spans (package aggregate, "Flow graph
// shape"):
//
//   - a CLIENT or PRODUCER span of Source with a SERVER or CONSUMER child
//     in Target: the call is the client span;
//   - a span of Source of another kind with a SERVER or CONSUMER child in
//     Target, another service (the caller has no client instrumentation):
//     the call is the server span;
//   - a CLIENT or PRODUCER span of Source without any SERVER or CONSUMER
//     child that names Target as its uninstrumented callee
//     (aggregate.VirtualTarget): the call is the client span.
//
// Operation, MinDuration and MaxDuration apply to the call; Start and End
// to the start of Source's span; Attributes to Source's span, the call or
// their resources. Node names are flow-graph node IDs ("namespace/name"
// for a service with a service.namespace) or plain service names, which
// select that service in every namespace. The aggregator pairs halves
// that arrive within its pairing wait; the search looks at the stored
// trace, so a call whose halves came further apart is found here although
// the graph counted it on a virtual edge.

// spanNode is the flow-graph identity at the service level of the spans of
// one resource.
type spanNode struct {
	name, namespace string
}

// is reports whether id names the node: its ID, or its plain name.
func (n spanNode) is(id string) bool {
	if n.name == id {
		return true
	}
	return n.namespace != "" && len(id) == len(n.namespace)+1+len(n.name) &&
		strings.HasPrefix(id, n.namespace) && id[len(n.namespace)] == '/' && strings.HasSuffix(id, n.name)
}

// nodeOf returns the service-level node of the resource of span s.
func nodeOf(t *otlpwire.Traces, s *otlpwire.Span) spanNode {
	r := &t.Resources[t.Scopes[s.Scope].Resource]
	name, _ := aggregate.ServiceName(nil, r)
	n := spanNode{name: string(name)}
	for _, a := range r.Attrs {
		if string(a.Key) == "service.namespace" {
			n.namespace = string(a.Value)
			break
		}
	}
	return n
}

func isClientKind(k int32) bool {
	return k == aggregate.SpanKindClient || k == aggregate.SpanKindProducer
}

func isServerKind(k int32) bool {
	return k == aggregate.SpanKindServer || k == aggregate.SpanKindConsumer
}

// edgeTerms lists the index terms a chunk holding a span of the source
// must contain: the service term of its name when the name is a plain
// service name. A namespaced ID or a synthetic node has none: the chunks
// of the range are then all scanned.
func (q *TraceQuery) edgeTerms() []string {
	if strings.Contains(q.Source, "/") || strings.HasPrefix(q.Source, aggregate.SyntheticServicePrefix) {
		return nil
	}
	return []string{string(termService) + q.Source}
}

// matchSource is the span condition of an edge search: a span of the
// source starting in the range. The edge itself is checked on the whole
// trace (edgeCall).
func (m *matcher) matchSource(t *otlpwire.Traces, s *otlpwire.Span) bool {
	if s.Start < m.start || (m.end != 0 && s.Start > m.end) {
		return false
	}
	return nodeOf(t, s).is(m.q.Source)
}

// callOK reports whether a call (its span) satisfies the operation and
// duration conditions, and whether it or the source's span from carries
// the attributes.
func (m *matcher) callOK(t *otlpwire.Traces, call *otlpwire.Span, ft *otlpwire.Traces, from *otlpwire.Span) bool {
	q := &m.q
	if q.Operation != "" && string(call.Name) != q.Operation {
		return false
	}
	d := time.Duration(call.End - call.Start)
	if (q.MinDuration > 0 && d < q.MinDuration) || (q.MaxDuration > 0 && d > q.MaxDuration) {
		return false
	}
	for k, v := range q.Attributes {
		if !spanHasAttr(t, call, k, v) && !spanHasAttr(ft, from, k, v) {
			return false
		}
	}
	return true
}

// spanHasAttr reports whether span s or its resource has attribute k = v
// (or an array attribute k with an element v).
func spanHasAttr(t *otlpwire.Traces, s *otlpwire.Span, k, v string) bool {
	res := &t.Resources[t.Scopes[s.Scope].Resource]
	return hasAttr(s.Attrs, k, v) || hasAttr(s.Elems, k, v) || hasAttr(res.Attrs, k, v) || hasAttr(res.Elems, k, v)
}

// edgeCall returns the span of the first call source → target in a trace's
// spans (sorted by start) that satisfies the query, or nil.
func (m *matcher) edgeCall(refs []spanRef) *otlpwire.Span {
	children := make(map[[8]byte][]int, len(refs))
	for i := range refs {
		if s := refs[i].span(); s.HasParent() && s.Invalid == "" {
			children[s.ParentID] = append(children[s.ParentID], i)
		}
	}
	for i := range refs {
		p, pt := refs[i].span(), &refs[i].chunk.traces
		if p.Invalid != "" || !m.matchSource(pt, p) {
			continue
		}
		from := nodeOf(pt, p)
		client := isClientKind(p.Kind)
		served := false // a client with a server child: not a virtual call
		for _, j := range children[p.SpanID] {
			c, ct := refs[j].span(), &refs[j].chunk.traces
			if !isServerKind(c.Kind) {
				continue
			}
			served = true
			to := nodeOf(ct, c)
			if !to.is(m.q.Target) {
				continue
			}
			if client && m.callOK(pt, p, pt, p) {
				return p
			}
			if !client && to != from && m.callOK(ct, c, pt, p) {
				return c
			}
		}
		if client && !served {
			res := &pt.Resources[pt.Scopes[p.Scope].Resource]
			if string(aggregate.VirtualTarget(p, res)) == m.q.Target && m.callOK(pt, p, pt, p) {
				return p
			}
		}
	}
	return nil
}
