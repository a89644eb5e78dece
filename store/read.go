package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/otlpwire"
)

// chunkCache decodes span chunks once per query.
type chunkCache struct {
	tx *bolt.Tx
	m  map[uint64]*decodedChunk
}

func newChunkCache(tx *bolt.Tx) *chunkCache {
	return &chunkCache{tx: tx, m: map[uint64]*decodedChunk{}}
}

// get returns the decoded chunk seq, or nil if retention deleted it.
func (c *chunkCache) get(seq uint64) (*decodedChunk, error) {
	if d, ok := c.m[seq]; ok {
		return d, nil
	}
	v := c.tx.Bucket(bucketChunks).Get(u64(seq))
	if v == nil {
		c.m[seq] = nil
		return nil, nil
	}
	d, err := decodeSpanChunk(seq, v)
	if err != nil {
		return nil, err
	}
	if len(c.m) > 256 {
		clear(c.m)
	}
	c.m[seq] = d
	return d, nil
}

// traceSeqs returns the sorted, distinct chunk seqs holding spans of id.
func traceSeqs(tx *bolt.Tx, runs []runInfo, tailSeqs []uint64, id TraceID) []uint64 {
	seqs := slices.Clone(tailSeqs)
	for _, ri := range runs {
		seqs = append(seqs, lookupRun(tx, ri, id)...)
	}
	slices.Sort(seqs)
	return slices.Compact(seqs)
}

// Trace returns every stored span of trace id, grouped by resource and scope
// as OTLP TracesData, spans ordered by start time. It returns ErrNotFound if
// no span of the trace is stored.
func (db *DB) Trace(ctx context.Context, id TraceID) (*tracepb.TracesData, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if err := db.awaitIndexed(ctx); err != nil {
		return nil, err
	}
	tailSeqs := db.tail.traceSeqs(db.tail.segments(), id)
	_, runs, tx, err := db.readSnapshot()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	cc := newChunkCache(tx)
	spans, err := db.traceSpans(cc, runs, tailSeqs, id)
	if err != nil {
		return nil, err
	}
	if len(spans) == 0 {
		return nil, ErrNotFound
	}
	return assemble(spans)
}

// spanRef points at one span inside a decoded chunk.
type spanRef struct {
	chunk *decodedChunk
	i     int
}

func (r spanRef) span() *otlpwire.Span { return &r.chunk.traces.Spans[r.i] }

func (db *DB) traceSpans(cc *chunkCache, runs []runInfo, tailSeqs []uint64, id TraceID) ([]spanRef, error) {
	var out []spanRef
	seen := map[[8]byte]bool{}
	for _, seq := range traceSeqs(cc.tx, runs, tailSeqs, id) {
		d, err := cc.get(seq)
		if err != nil {
			return nil, err
		}
		if d == nil {
			continue
		}
		for i := range d.traces.Spans {
			s := &d.traces.Spans[i]
			if s.TraceID != id || s.Invalid != "" {
				continue
			}
			// A span exported twice (client retry after a timeout) is
			// shown once.
			if seen[s.SpanID] {
				continue
			}
			seen[s.SpanID] = true
			out = append(out, spanRef{d, i})
		}
	}
	slices.SortStableFunc(out, func(a, b spanRef) int {
		sa, sb := a.span().Start, b.span().Start
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	return out, nil
}

// DecodeErrorAttribute is the attribute a span, resource or scope read
// back carries when its stored bytes no longer decode (invalid UTF-8 or
// nesting deeper than otlpwire.MaxDepth, stored before the receivers
// checked for them): its value is the decoding error. Such an item is
// rebuilt from the fields the store parsed, with every string made valid
// UTF-8 (see assemble).
const DecodeErrorAttribute = "flowscope.decode_error"

// Decoding limits of stored items: what the receivers accept
// (otlpwire.MaxDepth for a whole request) minus the levels above the item
// in an ExportTraceServiceRequest, so that anything accepted decodes and
// the trace re-encodes and decodes again as TracesData (the REST gateway
// does) without reaching proto's own recursion limit.
var (
	decodeResource = proto.UnmarshalOptions{RecursionLimit: otlpwire.MaxDepth - 2} // request, resource_spans
	decodeScope    = proto.UnmarshalOptions{RecursionLimit: otlpwire.MaxDepth - 3} // request, resource_spans, scope_spans
	decodeSpan     = proto.UnmarshalOptions{RecursionLimit: otlpwire.MaxDepth - 3}
)

// assemble rebuilds OTLP TracesData from span references, grouping spans
// that share identical resource and scope bytes.
//
// It never fails for one bad item: a span, resource or scope whose stored
// bytes do not decode is rebuilt from what otlpwire parsed (see
// fallbackSpan, fallbackResource and fallbackScope) and marked with
// DecodeErrorAttribute, so that the rest of the trace is still served.
func assemble(refs []spanRef) (*tracepb.TracesData, error) {
	td := &tracepb.TracesData{}
	rsIndex := map[string]*tracepb.ResourceSpans{}
	ssIndex := map[string]*tracepb.ScopeSpans{}
	moved := sharedParents(refs) // see reparent.go
	for i, r := range refs {
		t := &r.chunk.traces
		s := r.span()
		sc := &t.Scopes[s.Scope]
		res := &t.Resources[sc.Resource]
		rkey := string(res.Raw) + "\x00" + string(res.SchemaURL)
		rs := rsIndex[rkey]
		if rs == nil {
			rs = &tracepb.ResourceSpans{SchemaUrl: validString(res.SchemaURL)}
			if res.Raw != nil {
				rs.Resource = &resourcepb.Resource{}
				if err := decodeResource.Unmarshal(res.Raw, rs.Resource); err != nil {
					rs.Resource = fallbackResource(res, err)
				}
			}
			rsIndex[rkey] = rs
			td.ResourceSpans = append(td.ResourceSpans, rs)
		}
		skey := rkey + "\x00" + string(sc.Raw) + "\x00" + string(sc.SchemaURL)
		ss := ssIndex[skey]
		if ss == nil {
			ss = &tracepb.ScopeSpans{SchemaUrl: validString(sc.SchemaURL)}
			if sc.Raw != nil {
				ss.Scope = &commonpb.InstrumentationScope{}
				if err := decodeScope.Unmarshal(sc.Raw, ss.Scope); err != nil {
					ss.Scope = fallbackScope(sc.Raw, err)
				}
			}
			ssIndex[skey] = ss
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		sp := &tracepb.Span{}
		if err := decodeSpan.Unmarshal(s.Raw, sp); err != nil {
			sp = fallbackSpan(s, err)
		}
		if p, ok := moved[i]; ok {
			sp.ParentSpanId = p[:]
		}
		ss.Spans = append(ss.Spans, sp)
	}
	return td, nil
}

// fallbackSpan rebuilds a span whose stored bytes do not decode from the
// fields otlpwire parsed: IDs, parent, name, kind, times, status code and
// the scalar attributes (as strings), plus DecodeErrorAttribute. Events,
// links and the other attributes are lost.
func fallbackSpan(s *otlpwire.Span, err error) *tracepb.Span {
	sp := &tracepb.Span{
		TraceId:           slices.Clone(s.TraceID[:]),
		SpanId:            slices.Clone(s.SpanID[:]),
		Name:              validString(s.Name),
		Kind:              tracepb.Span_SpanKind(s.Kind),
		StartTimeUnixNano: s.Start,
		EndTimeUnixNano:   s.End,
		Attributes:        fallbackAttrs(s.Attrs, err),
	}
	if s.HasParent() {
		sp.ParentSpanId = slices.Clone(s.ParentID[:])
	}
	if s.Status != otlpwire.StatusUnset {
		sp.Status = &tracepb.Status{Code: tracepb.Status_StatusCode(s.Status)}
	}
	return sp
}

// fallbackResource rebuilds a resource whose stored bytes do not decode from
// its scalar attributes (as strings), plus DecodeErrorAttribute.
func fallbackResource(res *otlpwire.Resource, err error) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: fallbackAttrs(res.Attrs, err)}
}

// fallbackScope rebuilds an instrumentation scope whose stored bytes do not
// decode from its name and version, plus DecodeErrorAttribute.
func fallbackScope(raw []byte, err error) *commonpb.InstrumentationScope {
	sc := &commonpb.InstrumentationScope{Attributes: fallbackAttrs(nil, err)}
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			break
		}
		raw = raw[n:]
		if typ == protowire.BytesType && (num == 1 || num == 2) { // name, version
			v, n := protowire.ConsumeBytes(raw)
			if n < 0 {
				break
			}
			raw = raw[n:]
			if num == 1 {
				sc.Name = validString(v)
			} else {
				sc.Version = validString(v)
			}
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, raw); n < 0 {
			break
		}
		raw = raw[n:]
	}
	return sc
}

// fallbackAttrs converts parsed attributes to string KeyValues with valid
// UTF-8, followed by DecodeErrorAttribute holding err.
func fallbackAttrs(attrs []otlpwire.Attr, err error) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, len(attrs)+1)
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	for _, a := range attrs {
		out = append(out, str(validString(a.Key), validString(a.Value)))
	}
	return append(out, str(DecodeErrorAttribute, strings.ToValidUTF8(err.Error(), "\uFFFD")))
}

// validString returns b as a string with invalid UTF-8 replaced by U+FFFD.
func validString(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// summarize computes a trace summary from its spans (sorted by start).
func summarize(id TraceID, refs []spanRef) TraceSummary {
	sum := TraceSummary{TraceID: id, SpanCount: len(refs)}
	var start, end uint64
	services := map[string]bool{}
	var root *spanRef
	for i := range refs {
		r := &refs[i]
		s := r.span()
		t := &r.chunk.traces
		svc := serviceOf(t, s)
		services[svc] = true
		if s.Status == otlpwire.StatusError {
			sum.ErrorCount++
		}
		if start == 0 || s.Start < start {
			start = s.Start
		}
		end = max(end, s.End)
		if !s.HasParent() && root == nil {
			root = r
		}
	}
	if root == nil && len(refs) > 0 {
		root = &refs[0]
	}
	if root != nil {
		sum.RootService = serviceOf(&root.chunk.traces, root.span())
		sum.RootOperation = string(root.span().Name)
	}
	sum.Start = time.Unix(0, int64(start)).UTC()
	sum.Duration = time.Duration(end - start)
	for s := range services {
		sum.Services = append(sum.Services, s)
	}
	slices.Sort(sum.Services)
	return sum
}

func serviceOf(t *otlpwire.Traces, s *otlpwire.Span) string {
	svc := t.Resources[t.Scopes[s.Scope].Resource].Service
	if len(svc) == 0 {
		return "unknown_service"
	}
	return string(svc)
}

// matcher evaluates a TraceQuery on single spans.
type matcher struct {
	q          TraceQuery
	start, end uint64
}

func (m *matcher) match(t *otlpwire.Traces, s *otlpwire.Span) bool {
	q := &m.q
	if q.Service != "" && serviceOf(t, s) != q.Service {
		return false
	}
	if q.Operation != "" && string(s.Name) != q.Operation {
		return false
	}
	if s.Start < m.start || (m.end != 0 && s.Start > m.end) {
		return false
	}
	d := time.Duration(s.End - s.Start)
	if (q.MinDuration > 0 && d < q.MinDuration) || (q.MaxDuration > 0 && d > q.MaxDuration) {
		return false
	}
	res := &t.Resources[t.Scopes[s.Scope].Resource]
	for k, v := range q.Attributes {
		if !hasAttr(s.Attrs, k, v) && !hasAttr(s.Elems, k, v) && !hasAttr(res.Attrs, k, v) && !hasAttr(res.Elems, k, v) {
			return false
		}
	}
	if q.SpanFilter != nil {
		return q.SpanFilter(decodeView(t, s))
	}
	return true
}

// decodeView decodes span s of t, with its resource and scope, for a
// TraceQuery.SpanFilter; what does not decode falls back as Trace does.
func decodeView(t *otlpwire.Traces, s *otlpwire.Span) SpanView {
	sc := &t.Scopes[s.Scope]
	res := &t.Resources[sc.Resource]
	v := SpanView{Span: &tracepb.Span{}, Resource: &resourcepb.Resource{}, Scope: &commonpb.InstrumentationScope{}}
	if err := proto.Unmarshal(s.Raw, v.Span); err != nil {
		v.Span = fallbackSpan(s, err)
	}
	if err := proto.Unmarshal(res.Raw, v.Resource); err != nil {
		v.Resource = fallbackResource(res, err)
	}
	if err := proto.Unmarshal(sc.Raw, v.Scope); err != nil {
		v.Scope = fallbackScope(sc.Raw, err)
	}
	return v
}

// hasAttr reports whether attrs holds key k with value v. Applied to
// otlpwire's Elems, it reports whether an array attribute k has an element
// equal to v.
func hasAttr(attrs []otlpwire.Attr, k, v string) bool {
	for _, a := range attrs {
		if string(a.Key) == k && string(a.Value) == v {
			return true
		}
	}
	return false
}

// terms lists the index terms every matching span's chunk must contain.
func (q *TraceQuery) terms() []string {
	var out []string
	if q.Service != "" {
		out = append(out, string(termService)+q.Service)
		if q.Operation != "" {
			out = append(out, string(termOperation)+q.Service+"\x00"+q.Operation)
		}
	}
	for k, v := range q.Attributes {
		if len(v) <= maxTermValue {
			out = append(out, string(appendTerm(nil, termAttribute, []byte(k), []byte(v))))
		}
	}
	slices.Sort(out)
	return out
}

// FindTraces returns summaries of the traces matching q (see TraceQuery),
// newest first. Segments are searched from the most recent backwards until
// Limit traces are found (traces that pass Status: a trace with a matching
// span is summarized to be judged, and one that fails counts for nothing).
func (db *DB) FindTraces(ctx context.Context, q TraceQuery) ([]TraceSummary, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultSearchLimit
	}
	q.Limit = min(q.Limit, MaxSearchLimit)
	m := &matcher{q: q}
	if !q.Start.IsZero() {
		m.start = uint64(max(q.Start.UnixNano(), 0))
	}
	if !q.End.IsZero() {
		m.end = uint64(max(q.End.UnixNano(), 0))
	}
	terms := q.terms()
	match := m.match
	var keep func([]spanRef, *TraceSummary) bool
	if q.Source != "" || q.Target != "" {
		terms, match = q.edgeTerms(), m.matchSource
		keep = func(refs []spanRef, sum *TraceSummary) bool {
			call := m.edgeCall(refs)
			if call == nil {
				return false
			}
			sum.MatchedSpan = call.SpanID
			return q.Status == TraceStatusAny || q.Status.keep(sum)
		}
	} else if q.Status != TraceStatusAny {
		keep = func(_ []spanRef, sum *TraceSummary) bool { return q.Status.keep(sum) }
	}
	return db.search(ctx, terms, m.start, m.end, q.Limit, match, keep, true)
}

// Correlation returns summaries of every trace with a span (or resource)
// attribute under one of the correlation keys equal to id, or a W3C baggage
// attribute ("baggage", "*.baggage") with such a member, oldest first.
func (db *DB) Correlation(ctx context.Context, id string, limit int) ([]TraceSummary, error) {
	if limit <= 0 {
		limit = MaxSearchLimit
	}
	terms := []string{string(termCorrelation) + id}
	match := func(t *otlpwire.Traces, s *otlpwire.Span) bool {
		res := &t.Resources[t.Scopes[s.Scope].Resource]
		for _, attrs := range [][]otlpwire.Attr{s.Attrs, s.Elems, res.Attrs, res.Elems} {
			for _, a := range attrs {
				if db.carriesCorrelation(a, id) {
					return true
				}
			}
		}
		return false
	}
	out, err := db.search(ctx, terms, 0, 0, limit, match, nil, false)
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

// search walks segments newest first, scans the chunks whose postings hold
// every term and whose span-start bounds overlap [start, end], collects the
// IDs of traces with a matching span, and summarizes them.
//
// A non-nil keep is a condition on the whole trace (its spans and
// summary): each trace with a matching span is then summarized as soon as
// it is found and counts toward limit only if keep accepts it, so that
// limit applies after that filter. keep may set the summary's MatchedSpan.
// With matched, summaries carry the first matching span as MatchedSpan
// (unless keep set one).
func (db *DB) search(ctx context.Context, terms []string, start, end uint64, limit int,
	match func(*otlpwire.Traces, *otlpwire.Span) bool, keep func([]spanRef, *TraceSummary) bool, matched bool) ([]TraceSummary, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if err := db.awaitIndexed(ctx); err != nil {
		return nil, err
	}
	sr := &searcher{db: db, terms: terms, start: start, end: end, limit: limit, match: match, keep: keep, matched: matched,
		seen: map[TraceID]bool{}, first: map[TraceID][8]byte{}}
	sr.tsegs = db.tail.segments()
	views := db.tail.views(terms, false)
	segs, runs, tx, err := db.readSnapshot()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	sr.runs, sr.cc = runs, newChunkCache(tx)

	// Recent data first: in-memory segments (newest first), then persisted
	// ones from the newest. A segment both frozen in memory and persisted
	// is scanned twice at worst; seen[] removes duplicates.
	for _, v := range views {
		if sr.full() {
			break
		}
		if !sr.overlaps(v.minStart, v.maxStart) {
			continue
		}
		if err := sr.scanChunks(ctx, sr.candidates(v, true)); err != nil {
			return nil, err
		}
	}
	termsB, postingsB := tx.Bucket(bucketTerms), tx.Bucket(bucketPostings)
	segsB := tx.Bucket(bucketSegs)
	for i := len(segs) - 1; i >= 0 && !sr.full(); i-- {
		si := segs[i]
		if !sr.overlaps(si.minStart, si.maxStart) {
			continue
		}
		v, needChunks, err := sr.persistedView(si, segsB, termsB, postingsB)
		if err != nil {
			return nil, err
		}
		if err := sr.scanChunks(ctx, sr.candidates(v, needChunks)); err != nil {
			return nil, err
		}
	}
	return sr.results()
}

// searcher is the state of one DB.search: its conditions, the read
// snapshot, and the traces found so far.
type searcher struct {
	db         *DB
	terms      []string
	start, end uint64
	limit      int
	match      func(*otlpwire.Traces, *otlpwire.Span) bool
	keep       func([]spanRef, *TraceSummary) bool
	matched    bool

	tsegs []*memSeg
	runs  []runInfo
	cc    *chunkCache

	found []TraceID
	kept  []TraceSummary // with keep: the summaries of found
	seen  map[TraceID]bool
	first map[TraceID][8]byte // with matched: the first matching span
}

// full reports whether limit traces were found.
func (sr *searcher) full() bool { return len(sr.found) >= sr.limit }

// overlaps reports whether span starts in [minStart, maxStart] can lie
// in the searched range.
func (sr *searcher) overlaps(minStart, maxStart int64) bool {
	return (sr.start == 0 || maxStart >= int64(sr.start)) && (sr.end == 0 || minStart <= int64(sr.end))
}

// persistedView is the view of persisted segment si: its postings read
// from the terms bucket, and its chunks (with their span-start bounds)
// when the search needs them — without terms, or with a time range.
func (sr *searcher) persistedView(si segInfo, segsB, termsB, postingsB *bolt.Bucket) (segView, bool, error) {
	v := segView{firstSeq: si.firstSeq, lastSeq: si.lastSeq}
	needChunks := len(sr.terms) == 0 || sr.start != 0 || sr.end != 0
	if needChunks {
		_, chunks, _, err := decodeSegment(segsB.Get(u64(si.lastSeq)), true)
		if err != nil {
			return v, false, fmt.Errorf("segment %d: %w", si.lastSeq, err)
		}
		v.chunks = chunks
	}
	v.postings = func(term string) ([]uint64, bool) {
		var val []byte
		if si.lastSeq >= sr.db.postingsFrom {
			val = postingsB.Get(postingKey(nil, si.lastSeq, term))
		} else {
			val = termsB.Get(termKey(nil, term, si.lastSeq))
		}
		if val == nil {
			return nil, false
		}
		p, err := decodePostings(val, si.firstSeq)
		return p, err == nil
	}
	return v, needChunks, nil
}

// candidates lists the chunks of v that may hold a match: those in the
// postings of every term (every chunk without terms), and with
// chunkBounds only those whose span starts overlap the range.
func (sr *searcher) candidates(v segView, chunkBounds bool) []uint64 {
	var seqs []uint64
	if len(sr.terms) > 0 {
		for i, term := range sr.terms {
			p, ok := v.postings(term)
			if !ok {
				return nil
			}
			if i == 0 {
				seqs = slices.Clone(p)
			} else {
				seqs = intersect(seqs, p)
			}
		}
	} else {
		for _, c := range v.chunks {
			seqs = append(seqs, c.seq)
		}
	}
	if chunkBounds && (sr.start != 0 || sr.end != 0) {
		bounds := map[uint64]memChunk{}
		for _, c := range v.chunks {
			bounds[c.seq] = c
		}
		seqs = slices.DeleteFunc(seqs, func(q uint64) bool {
			c := bounds[q]
			return !sr.overlaps(c.minStart, c.maxStart)
		})
	}
	return seqs
}

// scanChunks scans the chunks seqs, newest first, for spans that match,
// until limit traces are found.
func (sr *searcher) scanChunks(ctx context.Context, seqs []uint64) error {
	for i := len(seqs) - 1; i >= 0 && !sr.full(); i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := sr.cc.get(seqs[i])
		if err != nil {
			return err
		}
		if d == nil {
			continue
		}
		for j := range d.traces.Spans {
			if err := sr.consider(&d.traces, &d.traces.Spans[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// consider records span s's trace as found when s matches (and the trace
// passes keep).
func (sr *searcher) consider(t *otlpwire.Traces, s *otlpwire.Span) error {
	if s.Invalid != "" || sr.seen[s.TraceID] || !sr.match(t, s) {
		return nil
	}
	id := s.TraceID
	sr.seen[id] = true
	if sr.matched {
		sr.first[id] = s.SpanID
	}
	if sr.keep == nil {
		sr.found = append(sr.found, id)
		return nil
	}
	refs, err := sr.db.traceSpans(sr.cc, sr.runs, sr.db.tail.traceSeqs(sr.tsegs, id), id)
	if err != nil || len(refs) == 0 {
		return err
	}
	sum := summarize(id, refs)
	if sr.matched {
		sum.MatchedSpan = s.SpanID
	}
	if sr.keep(refs, &sum) {
		sr.found = append(sr.found, id)
		sr.kept = append(sr.kept, sum)
	}
	return nil
}

// results summarizes the traces found (those kept, with keep), newest
// first, at most limit.
func (sr *searcher) results() ([]TraceSummary, error) {
	out := sr.kept
	if sr.keep == nil {
		out = make([]TraceSummary, 0, len(sr.found))
		for _, id := range sr.found {
			refs, err := sr.db.traceSpans(sr.cc, sr.runs, sr.db.tail.traceSeqs(sr.tsegs, id), id)
			if err != nil {
				return nil, err
			}
			if len(refs) > 0 {
				sum := summarize(id, refs)
				sum.MatchedSpan = sr.first[id]
				out = append(out, sum)
			}
		}
	}
	if out == nil {
		out = []TraceSummary{}
	}
	slices.SortStableFunc(out, func(a, b TraceSummary) int { return b.Start.Compare(a.Start) })
	if len(out) > sr.limit {
		out = out[:sr.limit]
	}
	return out, nil
}

func intersect(a, b []uint64) []uint64 {
	out := a[:0]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// Services returns every service with spans starting in [start, end]
// (to the second), with span and error counts, sorted by name.
func (db *DB) Services(ctx context.Context, start, end time.Time) ([]ServiceStats, error) {
	if db.closed.Load() {
		return nil, ErrClosed
	}
	if err := db.awaitIndexed(ctx); err != nil {
		return nil, err
	}
	from, to := start.Unix(), end.Unix()
	if end.IsZero() {
		to = 1<<63 - 1
	}
	if start.IsZero() {
		from = -1 << 63
	}
	totals := map[string]*ServiceStats{}
	add := func(svc []svcCount) {
		for _, c := range svc {
			if c.sec < from || c.sec > to {
				continue
			}
			st := totals[c.service]
			if st == nil {
				st = &ServiceStats{Name: c.service}
				totals[c.service] = st
			}
			st.SpanCount += c.spans
			st.ErrorCount += c.errors
		}
	}
	views := db.tail.views(nil, true)
	segs, _, tx, err := db.readSnapshot()
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	lastPersisted := uint64(0)
	if len(segs) > 0 {
		lastPersisted = segs[len(segs)-1].lastSeq
	}
	for _, v := range views {
		if v.lastSeq <= lastPersisted {
			continue // frozen segment already persisted: counted below
		}
		add(v.svc)
	}
	segsB := tx.Bucket(bucketSegs)
	for _, si := range segs {
		if si.maxStart < start.UnixNano()-int64(time.Second) || (!end.IsZero() && si.minStart > end.UnixNano()) {
			continue
		}
		_, _, svc, err := decodeSegment(segsB.Get(u64(si.lastSeq)), true)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", si.lastSeq, err)
		}
		add(svc)
	}
	out := make([]ServiceStats, 0, len(totals))
	for _, st := range totals {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b ServiceStats) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Operations returns the span names seen for service (any time still held
// by the ops bucket), sorted by name then kind.
func (db *DB) Operations(ctx context.Context, service string) ([]Operation, error) {
	var out []Operation
	err := db.bolt.View(func(tx *bolt.Tx) error {
		prefix := append([]byte(service), 0)
		c := tx.Bucket(bucketOps).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			rest := k[len(prefix):]
			if len(rest) < 2 || rest[len(rest)-2] != 0 {
				continue
			}
			out = append(out, Operation{Name: string(rest[:len(rest)-2]), Kind: tracepb.Span_SpanKind(rest[len(rest)-1])})
		}
		return nil
	})
	return out, err
}

// String returns the ID as 32 lowercase hex digits.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// carriesCorrelation reports whether attribute a carries correlation ID id:
// under a correlation key, or as a member of a baggage value.
func (db *DB) carriesCorrelation(a otlpwire.Attr, id string) bool {
	if db.corr[string(a.Key)] && string(a.Value) == id {
		return true
	}
	found := false
	if isBaggageKey(a.Key) {
		forEachBaggageMember(a.Value, func(key, value []byte) {
			found = found || db.corr[string(key)] && string(value) == id
		})
	}
	return found
}
