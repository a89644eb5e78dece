package zipkinapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// maxMillis is the latest time in milliseconds the store can hold.
const maxMillis = math.MaxInt64/int64(time.Millisecond) - 1

// serviceVariants returns the stored service names that lower-case to
// service (Zipkin's names are lower-case; ours keep their case): service
// itself, and every other name with spans in [start, end] that matches.
func (h *handler) serviceVariants(ctx context.Context, service string, start, end time.Time) ([]string, error) {
	svcs, err := h.store.Services(ctx, start, end)
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	out := []string{service}
	for _, s := range svcs {
		if s.Name != service && strings.ToLower(s.Name) == service {
			out = append(out, s.Name)
		}
	}
	return out, nil
}

// findTraces returns the IDs of the traces matching q, newest first: the
// traces with a span that satisfies every condition of q at once (the
// semantics of Zipkin's API description and Elasticsearch storage; see
// the package documentation). The store's index narrows the search by
// service, span name, time, duration and the tags it can; the SpanFilter
// then checks each candidate span exactly on its Zipkin form.
func (h *handler) findTraces(ctx context.Context, q traceQuery) ([]store.TraceID, error) {
	beginMs := q.EndTs - q.Lookback
	if beginMs > maxMillis {
		return nil, nil
	}
	var start, end time.Time
	if beginMs > 0 {
		start = time.UnixMilli(beginMs).Add(-time.Microsecond) // timestamps round to µs
	}
	if q.EndTs < maxMillis {
		end = time.UnixMilli(q.EndTs + 1)
	}
	base := store.TraceQuery{Start: start, End: end, Limit: q.Limit, SpanFilter: q.spanFilter()}
	if q.MinDuration > 0 {
		if q.MinDuration > math.MaxInt64/1000 {
			return nil, nil
		}
		// zipkin-go's microseconds round half up, and any positive
		// duration is at least 1 µs.
		base.MinDuration = time.Duration(q.MinDuration*1000 - 500)
		if q.MinDuration == 1 {
			base.MinDuration = 1
		}
		if q.MaxDuration > 0 && q.MaxDuration < (math.MaxInt64-499)/1000 {
			base.MaxDuration = time.Duration(q.MaxDuration*1000 + 499)
		}
	}
	for _, t := range q.Annotations {
		if t.Value != "" && indexable(t.Key, t.Value) {
			if base.Attributes == nil {
				base.Attributes = map[string]string{}
			}
			base.Attributes[t.Key] = t.Value
		}
	}

	queries := []store.TraceQuery{base}
	if q.ServiceName != "" {
		variants, err := h.serviceVariants(ctx, q.ServiceName, start, end)
		if err != nil {
			return nil, err
		}
		queries = queries[:0]
		for _, svc := range variants {
			tq := base
			tq.Service = svc
			if q.SpanName != "" {
				ops, err := h.store.Operations(ctx, svc)
				if err != nil {
					return nil, fmt.Errorf("operations of %q: %w", svc, err)
				}
				var names []string
				for _, op := range ops {
					if strings.ToLower(op.Name) == q.SpanName && !slices.Contains(names, op.Name) {
						names = append(names, op.Name)
					}
				}
				if len(names) == 0 {
					continue // the service never had a span of that name
				}
				if len(names) == 1 {
					tq.Operation = names[0]
				}
			}
			queries = append(queries, tq)
		}
	}

	var found []store.TraceSummary
	for _, tq := range queries {
		sums, err := h.store.FindTraces(ctx, tq)
		if err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		found = append(found, sums...)
	}
	if len(queries) > 1 {
		slices.SortStableFunc(found, func(a, b store.TraceSummary) int { return b.Start.Compare(a.Start) })
	}
	ids := make([]store.TraceID, 0, min(len(found), q.Limit))
	seen := make(map[store.TraceID]bool, len(found))
	for _, s := range found {
		if len(ids) == q.Limit {
			break
		}
		if !seen[s.TraceID] {
			seen[s.TraceID] = true
			ids = append(ids, s.TraceID)
		}
	}
	return ids, nil
}

// spanFilter returns the exact test of one span against q, on the span's
// Zipkin form: timestamp in [endTs-lookback, endTs] (milliseconds),
// local service, span name, remote service, duration and every
// annotationQuery term.
func (q *traceQuery) spanFilter() func(store.SpanView) bool {
	beginMs := q.EndTs - q.Lookback
	return func(v store.SpanView) bool {
		sp := v.Span
		ts := spanTimestamp(sp)
		if ts <= 0 || ts/1000 < beginMs || ts/1000 > q.EndTs {
			return false
		}
		if q.SpanName != "" && strings.ToLower(sp.GetName()) != q.SpanName {
			return false
		}
		z, ok := convertSpan(v.Resource, v.Scope, sp)
		if !ok {
			return false
		}
		return q.matchConverted(&z)
	}
}

// matchConverted tests the conditions of q other than time on a Zipkin
// span.
func (q *traceQuery) matchConverted(z *zspan) bool {
	switch {
	case q.ServiceName != "" && z.localService() != q.ServiceName,
		q.SpanName != "" && z.Name != q.SpanName,
		q.RemoteServiceName != "" && z.remoteService() != q.RemoteServiceName,
		q.MinDuration > 0 && z.Duration < q.MinDuration,
		q.MaxDuration > 0 && z.Duration > q.MaxDuration:
		return false
	}
	for _, t := range q.Annotations {
		if !z.matchTerm(t) {
			return false
		}
	}
	return true
}

// matchTerm reports whether z satisfies an annotationQuery term: a key
// alone matches an annotation of that value or a tag of that key;
// key=value matches a tag.
func (z *zspan) matchTerm(t term) bool {
	if t.Value == "" {
		for _, a := range z.Annotations {
			if a.Value == t.Key {
				return true
			}
		}
		_, ok := z.tagValue(t.Key)
		return ok
	}
	v, ok := z.tagValue(t.Key)
	return ok && v == t.Value
}

// indexable reports whether every span whose Zipkin tag key equals value
// has a span or resource attribute key whose text in the store's index
// is value, so that the index may narrow a key=value search: not for
// tags the conversion writes itself, nor values that could be the
// rendering of an array or map (JSON), of bytes (base64), or of a double
// the index writes differently (strconv 'g' against pdata's ECMAScript
// format: 200 against 2e+02), nor values too long to be indexed.
func indexable(key, value string) bool {
	switch {
	case synthesizedTags[key], strings.HasPrefix(key, tagLinkPrefix),
		len(value) > 256, value[0] == '[', value[0] == '{':
		return false
	}
	if f, err := strconv.ParseFloat(value, 64); err == nil &&
		float64String(f) == value && strconv.FormatFloat(f, 'g', -1, 64) != value {
		return false
	}
	if _, err := base64.StdEncoding.DecodeString(value); err == nil {
		return false
	}
	return true
}

// remoteServiceNames returns the remote service names of the spans of a
// service (any case variant) that started in the names lookback, reading
// at most maxRemoteScan spans per variant, newest first.
func (h *handler) remoteServiceNames(ctx context.Context, service string) ([]string, error) {
	now := h.now()
	start := now.Add(-h.namesLookback)
	variants, err := h.serviceVariants(ctx, service, start, now)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	set := map[string]struct{}{}
	for _, svc := range variants {
		sctx, cancel := context.WithCancel(ctx)
		n := 0
		filter := func(v store.SpanView) bool {
			z, ok := convertSpan(v.Resource, v.Scope, v.Span)
			mu.Lock()
			defer mu.Unlock()
			if ok && z.localService() == service {
				if r := z.remoteService(); r != "" {
					set[r] = struct{}{}
				}
			}
			if n++; n >= maxRemoteScan {
				cancel()
			}
			return false
		}
		_, err := h.store.FindTraces(sctx, store.TraceQuery{Service: svc, Start: start, End: now, SpanFilter: filter, Limit: 1})
		cancel()
		if err != nil && (ctx.Err() != nil || !errors.Is(err, context.Canceled)) {
			return nil, fmt.Errorf("remote services of %q: %w", svc, err)
		}
	}
	return mapKeys(set), nil
}

// dependencyLinks returns the service-level calls of the flow graph in
// [endTs-lookback, endTs] (milliseconds) as Zipkin dependency links:
// lower-cased service names without their namespace prefix (the flow
// graph's node IDs are namespace/name), links that then coincide summed,
// sorted by parent and child.
func (h *handler) dependencyLinks(ctx context.Context, endTs, lookback int64) ([]dependencyLink, error) {
	endTs = min(endTs, maxMillis)
	var start time.Time
	if b := endTs - lookback; b > 0 {
		start = time.UnixMilli(b)
	}
	g, err := h.store.FlowGraph(ctx, start, time.UnixMilli(endTs), aggregate.GraphQuery{Level: aggregate.LevelService})
	if err != nil {
		return nil, fmt.Errorf("flow graph: %w", err)
	}
	names := make(map[string]string, len(g.Nodes))
	for _, n := range g.Nodes {
		name := n.ID
		if n.Namespace != "" {
			name = strings.TrimPrefix(name, n.Namespace+"/")
		}
		names[n.ID] = strings.ToLower(name)
	}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return strings.ToLower(id)
	}
	type pair struct{ parent, child string }
	sums := map[pair]*dependencyLink{}
	for _, e := range g.Edges {
		if e.Calls.Count <= 0 {
			continue
		}
		k := pair{name(e.Source), name(e.Target)}
		l := sums[k]
		if l == nil {
			l = &dependencyLink{Parent: k.parent, Child: k.child}
			sums[k] = l
		}
		l.CallCount += e.Calls.Count
		l.ErrorCount += e.Calls.Errors
	}
	out := make([]dependencyLink, 0, len(sums))
	for _, l := range sums {
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b dependencyLink) int {
		return cmp.Or(strings.Compare(a.Parent, b.Parent), strings.Compare(a.Child, b.Child))
	})
	return out, nil
}
