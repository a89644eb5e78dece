package query

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/lint"
	"github.com/flowscope/flowscope/store"
)

// LintPathTraces is how many of the newest traces of a range the lint
// reads for the synchronous call paths requests really take
// (observedPaths).
const LintPathTraces = 200

// observedPaths returns the synchronous call paths, at the service level,
// of the newest LintPathTraces traces of [start, end], each path with the
// number of traces that took it and one of them as exemplar. A path runs
// from a root span through every call into another service (a span whose
// child is a SERVER span of another service, as the flow graph pairs
// them); an asynchronous hop (a PRODUCER span or a CONSUMER child) ends
// the path, and the consumer starts a new one.
func (s *Service) observedPaths(ctx context.Context, start, end time.Time) ([]lint.Path, error) {
	sums, err := s.st.FindTraces(ctx, store.TraceQuery{Start: start, End: end, Limit: LintPathTraces})
	if err != nil {
		return nil, err
	}
	type acc struct {
		nodes    []string
		count    int64
		exemplar string
	}
	byKey := map[string]*acc{}
	for _, sum := range sums {
		td, err := s.st.Trace(ctx, sum.TraceID)
		if err != nil {
			continue // expired since the search
		}
		id := hex.EncodeToString(sum.TraceID[:])
		for _, p := range tracePaths(td) {
			k := strings.Join(p, "\x00")
			a := byKey[k]
			if a == nil {
				a = &acc{nodes: p, exemplar: id}
				byKey[k] = a
			}
			a.count++
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]lint.Path, 0, len(keys))
	for _, k := range keys {
		a := byKey[k]
		out = append(out, lint.Path{Nodes: a.nodes, Count: a.count, Exemplar: a.exemplar})
	}
	return out, nil
}

// tracePaths returns the distinct synchronous call paths (service-level
// node IDs, at least two) of one trace.
func tracePaths(td *tracepb.TracesData) [][]string {
	type sp struct {
		s    *tracepb.Span
		node string
	}
	spans := map[string]sp{}
	children := map[string][]string{}
	var roots []string
	for _, rs := range td.GetResourceSpans() {
		node := resourceNode(rs.GetResource())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				id := string(s.GetSpanId())
				spans[id] = sp{s: s, node: node}
			}
		}
	}
	for id, x := range spans {
		parent := string(x.s.GetParentSpanId())
		if _, ok := spans[parent]; ok && parent != "" {
			children[parent] = append(children[parent], id)
		} else {
			roots = append(roots, id)
		}
	}
	seen := map[string]bool{}
	var out [][]string
	emit := func(path []string) {
		if len(path) < 2 {
			return
		}
		k := strings.Join(path, "\x00")
		if !seen[k] {
			seen[k] = true
			out = append(out, slices.Clone(path))
		}
	}
	// walk follows span id with the path so far (ending at its node).
	var walk func(id string, path []string, depth int)
	walk = func(id string, path []string, depth int) {
		x := spans[id]
		kids := children[id]
		if len(kids) == 0 || depth > 10_000 {
			emit(path)
			return
		}
		slices.Sort(kids)
		for _, cid := range kids {
			c := spans[cid]
			kind := c.s.GetKind()
			switch {
			case c.node == x.node:
				walk(cid, path, depth+1)
			case x.s.GetKind() == tracepb.Span_SPAN_KIND_PRODUCER || kind == tracepb.Span_SPAN_KIND_CONSUMER:
				emit(path) // asynchronous: the consumer starts a path of its own
				walk(cid, []string{c.node}, depth+1)
			case kind == tracepb.Span_SPAN_KIND_SERVER:
				walk(cid, append(path[:len(path):len(path)], c.node), depth+1)
			default:
				walk(cid, path, depth+1)
			}
		}
	}
	slices.Sort(roots)
	for _, r := range roots {
		walk(r, []string{spans[r].node}, 0)
	}
	return out
}

// resourceNode is the service-level node ID of a resource, as the flow
// graph names it: "synthetic:<check>" for the prober, else service.name
// (unknown_service without one), prefixed with "namespace/" when the
// resource has a service.namespace.
func resourceNode(r *resourcepb.Resource) string {
	var name, ns, check string
	for _, kv := range r.GetAttributes() {
		switch kv.GetKey() {
		case "service.name":
			name = anyString(kv.GetValue())
		case "service.namespace":
			ns = anyString(kv.GetValue())
		case aggregate.SyntheticCheckAttr:
			check = anyString(kv.GetValue())
		}
	}
	switch {
	case check != "":
		name = aggregate.SyntheticServicePrefix + check
	case name == "":
		name = "unknown_service"
	}
	if ns != "" {
		return ns + "/" + name
	}
	return name
}

func anyString(v *commonpb.AnyValue) string {
	if s, ok := v.GetValue().(*commonpb.AnyValue_StringValue); ok {
		return s.StringValue
	}
	return ""
}
