package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/store"
)

// filterBatch is how many candidate traces findFiltered fetches at once.
const filterBatch = 16

// findFiltered answers a search with a SpanFilter (the compatibility
// APIs' tag and annotation conditions), which cannot be sent to the
// peers: it asks them for the traces matching the rest of q, up to
// store.MaxSearchLimit each, newest first, then fetches those traces and
// keeps the ones with a span that meets every condition of q at once, the
// filter included, until q.Limit are kept. A match older than a peer's
// first store.MaxSearchLimit candidates is not found.
func (s *Store) findFiltered(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	if q.Source != "" || q.Target != "" {
		return nil, errors.New("an edge search with a span filter is not supported by the query front end")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = store.DefaultSearchLimit
	}
	broad := q
	broad.SpanFilter = nil
	cands, err := s.FindTraces(ctx, store.TraceQuery{Service: broad.Service, Operation: broad.Operation,
		Start: broad.Start, End: broad.End, MinDuration: broad.MinDuration, MaxDuration: broad.MaxDuration,
		Attributes: broad.Attributes, Status: broad.Status, Limit: store.MaxSearchLimit})
	if err != nil {
		return nil, err
	}
	out := []store.TraceSummary{}
	for i := 0; i < len(cands) && len(out) < limit; i += filterBatch {
		batch := cands[i:min(i+filterBatch, len(cands))]
		matched := make([][8]byte, len(batch))
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for j := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				td, err := s.Trace(ctx, batch[j].TraceID)
				if errors.Is(err, store.ErrNotFound) {
					return // gone since the search (retention)
				}
				if err != nil {
					errs[j] = err
					return
				}
				matched[j] = firstMatch(td, q)
			}()
		}
		wg.Wait()
		for j, sum := range batch {
			if errs[j] != nil {
				return nil, fmt.Errorf("filter trace %s: %w", sum.TraceID, errs[j])
			}
			if matched[j] != ([8]byte{}) && len(out) < limit {
				sum.MatchedSpan = matched[j]
				out = append(out, sum)
			}
		}
	}
	return out, nil
}

// firstMatch returns the ID of the first span of td that meets every span
// condition of q (store.TraceQuery), its SpanFilter included; zero when
// none does.
func firstMatch(td *tracepb.TracesData, q store.TraceQuery) [8]byte {
	for _, rs := range td.GetResourceSpans() {
		res := rs.GetResource()
		if q.Service != "" && stringAttr(res.GetAttributes(), "service.name") != q.Service {
			continue
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if spanMatches(sp, res, q) && q.SpanFilter(store.SpanView{Span: sp, Resource: res, Scope: ss.GetScope()}) {
					var id [8]byte
					copy(id[:], sp.GetSpanId())
					if id != ([8]byte{}) {
						return id
					}
				}
			}
		}
	}
	return [8]byte{}
}

// spanMatches tests q's span conditions other than the service and the
// filter.
func spanMatches(sp *tracepb.Span, res *resourcepb.Resource, q store.TraceQuery) bool {
	if q.Operation != "" && sp.GetName() != q.Operation {
		return false
	}
	start := int64(sp.GetStartTimeUnixNano())
	if !q.Start.IsZero() && start < q.Start.UnixNano() || !q.End.IsZero() && start > q.End.UnixNano() {
		return false
	}
	d := time.Duration(int64(sp.GetEndTimeUnixNano()) - start)
	if q.MinDuration > 0 && d < q.MinDuration || q.MaxDuration > 0 && d > q.MaxDuration {
		return false
	}
	for k, v := range q.Attributes {
		if stringAttr(sp.GetAttributes(), k) != v && stringAttr(res.GetAttributes(), k) != v {
			return false
		}
	}
	return true
}

// stringAttr returns the string value of attribute key ("" when absent or
// not a string).
func stringAttr(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}
