package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/otlpwire"
)

// WriteResult tells how much of a write was stored.
type WriteResult struct {
	Accepted int64  // spans or data points committed
	Rejected int64  // items that failed validation and were not stored
	Message  string // the first validation problem, when Rejected > 0
}

// maxTermValue is the longest attribute value indexed for search; longer
// values are still stored and matched by scanning, but not indexed.
const maxTermValue = 256

// Term kinds: the first byte of an index term.
const (
	termService     = 's' // service name
	termOperation   = 'o' // service \x00 span name
	termAttribute   = 'a' // key \x00 value (span or resource attribute)
	termCorrelation = 'c' // correlation ID
)

// chunkIndex is what the in-memory and persisted indexes learn from one chunk.
type chunkIndex struct {
	spans    int
	minStart int64
	maxStart int64
	maxEnd   int64
	traces   []TraceID
	terms    []string
	svc      []svcCount
}

// svcCount counts the spans of one service that started in one second.
type svcCount struct {
	service string
	sec     int64
	spans   int64
	errors  int64
}

// pending is a request waiting in the commit queue.
type pending struct {
	metrics bool
	data    []byte // chunk value; header filled in by the committer
	idx     *chunkIndex
	traces  *otlpwire.Traces // parsed request, valid until done is answered (or, with aggregation, until applied)
	owned   *[]byte          // the copy traces aliases when aggregation is on
	aggHeld int64            // memory budget held by owned, released once applied
	newOps  []string         // ops keys to persist
	mark    *importMark      // put in the imports bucket in the same transaction
	names   []MetricInfo
	points  int64
	size    int64
	done    chan error
	seq     uint64
}

// indexScratch holds per-request maps reused through a pool.
type indexScratch struct {
	traces map[TraceID]struct{}
	terms  map[string]struct{}
	svc    map[svcKey]*svcCount
	ops    map[string]struct{}
	buf    []byte
}

type svcKey struct {
	service string
	sec     int64
}

var scratchPool = sync.Pool{New: func() any {
	return &indexScratch{
		traces: map[TraceID]struct{}{},
		terms:  map[string]struct{}{},
		svc:    map[svcKey]*svcCount{},
		ops:    map[string]struct{}{},
	}
}}

// WriteTraces validates and durably stores the spans of req, a protobuf
// ExportTraceServiceRequest. Invalid spans are counted in the result and
// dropped; the valid ones are committed before WriteTraces returns nil.
// An undecodable req yields an error wrapping otlpwire.ErrMalformed and
// stores nothing. req is not retained.
func (db *DB) WriteTraces(ctx context.Context, req []byte) (WriteResult, error) {
	// With aggregation, the aggregator reads the parsed request after the
	// writer was acknowledged, so it must not alias req (the receiver
	// reuses it): parse an owned copy, released by the aggregator.
	// The copy counts against the memory budget until it is applied.
	body, owned, held := req, (*[]byte)(nil), int64(0)
	if db.agg != nil {
		held = int64(len(req))
		if !db.opts.Budget.TryAcquire(held) {
			return WriteResult{}, fmt.Errorf("%w: memory budget of %d bytes is in use", ErrOverloaded, db.opts.Budget.Limit())
		}
		owned = bodyPool.Get().(*[]byte)
		*owned = append((*owned)[:0], req...)
		body = *owned
	}
	t := tracesPl.Get().(*otlpwire.Traces)
	handedOff := false
	defer func() {
		if !handedOff {
			releaseParsed(t, owned)
			db.opts.Budget.Release(held)
		}
	}()
	if err := parseTraces(t, body); err != nil {
		return WriteResult{}, err
	}
	db.rejectFuture(t)
	res := WriteResult{Accepted: int64(len(t.Spans) - t.Invalid), Rejected: int64(t.Invalid)}
	if t.Invalid > 0 {
		for i := range t.Spans {
			if t.Spans[i].Invalid != "" {
				res.Message = t.Spans[i].Invalid
				break
			}
		}
		db.m.spansRejected.Add(float64(t.Invalid))
	}
	if res.Accepted == 0 {
		return res, nil
	}
	payload := body
	if t.Invalid > 0 {
		payload = encodeValid(t)
	}
	p := &pending{data: compressChunk(nil, payload), size: int64(len(req))}
	p.idx, p.newOps = db.indexTraces(t)
	p.traces, p.owned, p.aggHeld = t, owned, held
	if err := db.enqueue(ctx, p); err != nil {
		db.m.spansRefused.Add(float64(res.Accepted))
		return WriteResult{Rejected: res.Rejected, Message: res.Message}, err
	}
	// Committed: the aggregator now owns t and the copy.
	handedOff = db.agg != nil
	db.m.spansAccepted.Add(float64(res.Accepted))
	return res, nil
}

// MaxFutureSkew is how far in the future (by the store's clock) a span may
// end. Later spans are refused one by one (partial success): one span
// ending in the year 2262 would otherwise keep its segment from ever
// expiring. Old timestamps are accepted (imports of old files).
const MaxFutureSkew = time.Hour

// rejectFuture marks the valid spans of t that start or end more than
// MaxFutureSkew after now as invalid.
func (db *DB) rejectFuture(t *otlpwire.Traces) {
	now := uint64(db.opts.Now().UnixNano())
	limit := now + uint64(db.futureSkew)
	if limit < now {
		limit = 1<<64 - 1 // tests raise futureSkew to store what older versions accepted
	}
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.Invalid != "" || s.End <= limit {
			continue
		}
		s.Invalid = fmt.Sprintf("span %q: end time %s is more than %s ahead of the collector's clock",
			s.Name, time.Unix(0, int64(min(s.End, 1<<63-1))).UTC().Format(time.RFC3339), MaxFutureSkew)
		t.Invalid++
	}
}

// bodyPool holds the owned copies of requests parsed for the aggregator.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// releaseParsed returns a parsed request and its owned body to their pools.
func releaseParsed(t *otlpwire.Traces, owned *[]byte) {
	tracesPl.Put(t)
	if owned != nil && cap(*owned) <= 4<<20 {
		*owned = (*owned)[:0]
		bodyPool.Put(owned)
	}
}

// enqueue admits p to the commit queue and waits for its commit.
func (db *DB) enqueue(ctx context.Context, p *pending) error {
	mark, err := importMarkFrom(ctx)
	if err != nil {
		return err
	}
	p.mark = mark
	if db.queuedBytes.Add(p.size) > db.opts.QueueBytes {
		db.queuedBytes.Add(-p.size)
		return fmt.Errorf("%w: %d bytes already waiting for commit", ErrOverloaded, db.queuedBytes.Load())
	}
	// The request waits for its commit (as parsed data, chunk and index)
	// within the memory budget.
	if !db.opts.Budget.TryAcquire(p.size) {
		db.queuedBytes.Add(-p.size)
		return fmt.Errorf("%w: memory budget of %d bytes is in use", ErrOverloaded, db.opts.Budget.Limit())
	}
	p.done = make(chan error, 1)
	db.writeMu.RLock()
	if db.closed.Load() {
		db.writeMu.RUnlock()
		db.queuedBytes.Add(-p.size)
		db.opts.Budget.Release(p.size)
		return ErrClosed
	}
	db.queue <- p
	db.writeMu.RUnlock()
	// Wait for the commit even if ctx ends: the committer reads the parsed
	// request (which aliases the caller's buffer) until it answers, and the
	// wait is bounded by the queue. A client that gave up may retry, which
	// stores the spans twice at worst.
	return <-p.done
}

// parseTraces parses an export request as otlpwire.Parse does, then sets
// each resource's Service to the service of its flow-graph node
// (aggregate.ServiceName): "synthetic:<check>" for the synthetic-check
// prober's resources, which carry the attribute synthetic.check. Every
// reader of a parsed request in the store (the index terms, service
// counts, operations and search of the spans, trace summaries, the
// aggregator) therefore names a service as the flow graph does. A
// synthetic resource costs one small allocation; other resources none.
func parseTraces(t *otlpwire.Traces, b []byte) error {
	if err := otlpwire.Parse(t, b); err != nil {
		return err
	}
	for i := range t.Resources {
		r := &t.Resources[i]
		if aggregate.SyntheticCheck(r) != nil {
			r.Service, _ = aggregate.ServiceName(nil, r)
		}
	}
	return nil
}

// indexTraces computes the chunk index of the valid spans of t and the
// operations not yet persisted.
func (db *DB) indexTraces(t *otlpwire.Traces) (*chunkIndex, []string) {
	sc := scratchPool.Get().(*indexScratch)
	defer func() {
		clear(sc.traces)
		clear(sc.terms)
		clear(sc.svc)
		clear(sc.ops)
		sc.buf = sc.buf[:0]
		scratchPool.Put(sc)
	}()
	idx := &chunkIndex{minStart: 1<<63 - 1}
	services := make([]string, len(t.Resources))
	for i := range t.Resources {
		r := &t.Resources[i]
		svc := string(r.Service)
		if svc == "" {
			svc = "unknown_service"
		}
		services[i] = svc
		sc.addTerm(termService, svc, "")
		for _, a := range r.Attrs {
			db.addAttrTerms(sc, a)
		}
		for _, a := range r.Elems {
			db.addAttrTerms(sc, a)
		}
	}
	var newOps []string
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.Invalid != "" {
			continue
		}
		idx.spans++
		start, end := int64(s.Start), int64(s.End)
		idx.minStart = min(idx.minStart, start)
		idx.maxStart = max(idx.maxStart, start)
		idx.maxEnd = max(idx.maxEnd, end)
		sc.traces[s.TraceID] = struct{}{}
		svc := services[t.Scopes[s.Scope].Resource]
		sc.addTerm(termOperation, svc, string(s.Name))
		for _, a := range s.Attrs {
			db.addAttrTerms(sc, a)
		}
		for _, a := range s.Elems {
			db.addAttrTerms(sc, a)
		}
		k := svcKey{service: svc, sec: start / int64(time.Second)}
		c := sc.svc[k]
		if c == nil {
			c = &svcCount{service: svc, sec: k.sec}
			sc.svc[k] = c
		}
		c.spans++
		if s.Status == otlpwire.StatusError {
			c.errors++
		}
		sc.buf = opKey(sc.buf[:0], svc, s.Name, s.Kind)
		if _, ok := sc.ops[string(sc.buf)]; !ok {
			key := string(sc.buf)
			sc.ops[key] = struct{}{}
			if _, seen := db.opsSeen.Load(key); !seen {
				newOps = append(newOps, key)
			}
		}
	}
	idx.traces = make([]TraceID, 0, len(sc.traces))
	for id := range sc.traces {
		idx.traces = append(idx.traces, id)
	}
	idx.terms = make([]string, 0, len(sc.terms))
	for term := range sc.terms {
		idx.terms = append(idx.terms, term)
	}
	idx.svc = make([]svcCount, 0, len(sc.svc))
	for _, c := range sc.svc {
		idx.svc = append(idx.svc, *c)
	}
	return idx, newOps
}

// addAttrTerms adds the index terms of attribute a: the attribute term,
// and correlation terms when a is under a correlation key or holds W3C
// baggage with members under one. An element of an array attribute
// (otlpwire.Span.Elems) is indexed like a scalar attribute of the array's
// key, so that each element is found by search and correlation.
func (db *DB) addAttrTerms(sc *indexScratch, a otlpwire.Attr) {
	if len(a.Value) > maxTermValue {
		return
	}
	sc.buf = appendTerm(sc.buf[:0], termAttribute, a.Key, a.Value)
	if _, ok := sc.terms[string(sc.buf)]; !ok {
		sc.terms[string(sc.buf)] = struct{}{}
	}
	if db.corr[string(a.Key)] && len(a.Value) > 0 {
		sc.addCorrelation(a.Value)
	}
	if len(db.corr) > 0 && isBaggageKey(a.Key) {
		forEachBaggageMember(a.Value, func(key, value []byte) {
			if db.corr[string(key)] {
				sc.addCorrelation(value)
			}
		})
	}
}

func (sc *indexScratch) addCorrelation(id []byte) {
	sc.buf = append(append(sc.buf[:0], termCorrelation), id...)
	if _, ok := sc.terms[string(sc.buf)]; !ok {
		sc.terms[string(sc.buf)] = struct{}{}
	}
}

// isBaggageKey reports whether an attribute holds a W3C baggage header
// value: the key is "baggage" or ends in ".baggage" (as
// http.request.header.baggage does).
func isBaggageKey(k []byte) bool {
	const b = "baggage"
	return len(k) >= len(b) && string(k[len(k)-len(b):]) == b && (len(k) == len(b) || k[len(k)-len(b)-1] == '.')
}

// maxBaggageMembers bounds the members of one baggage value looked at (the
// W3C limit is 64).
const maxBaggageMembers = 64

// forEachBaggageMember calls f with the key and the percent-decoded value of
// each member of a W3C baggage value ("k1=v1;prop,k2=v2"), skipping
// malformed members and empty values. f must not retain its arguments.
func forEachBaggageMember(v []byte, f func(key, value []byte)) {
	var dec [maxTermValue]byte
	for n := 0; len(v) > 0 && n < maxBaggageMembers; n++ {
		var member []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			member, v = v[:i], v[i+1:]
		} else {
			member, v = v, nil
		}
		if i := bytes.IndexByte(member, ';'); i >= 0 {
			member = member[:i] // drop the properties
		}
		eq := bytes.IndexByte(member, '=')
		if eq <= 0 {
			continue
		}
		key := bytes.TrimSpace(member[:eq])
		val, ok := percentDecode(dec[:0], bytes.TrimSpace(member[eq+1:]))
		if len(key) == 0 || !ok || len(val) == 0 {
			continue
		}
		f(key, val)
	}
}

// percentDecode appends the percent-decoding of s to dst, reporting false
// for a malformed escape or a result longer than cap(dst).
func percentDecode(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return nil, false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return nil, false
			}
			c = hi<<4 | lo
			i += 2
		}
		if len(dst) == cap(dst) {
			return nil, false
		}
		dst = append(dst, c)
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (sc *indexScratch) addTerm(kind byte, a, b string) {
	sc.buf = append(sc.buf[:0], kind)
	sc.buf = append(sc.buf, a...)
	if kind != termService {
		sc.buf = append(sc.buf, 0)
		sc.buf = append(sc.buf, b...)
	}
	if _, ok := sc.terms[string(sc.buf)]; !ok {
		sc.terms[string(sc.buf)] = struct{}{}
	}
}

func appendTerm(dst []byte, kind byte, a, b []byte) []byte {
	dst = append(dst, kind)
	dst = append(dst, a...)
	dst = append(dst, 0)
	return append(dst, b...)
}

// opKey encodes an operation as service \x00 name \x00 kind.
func opKey(dst []byte, service string, name []byte, kind int32) []byte {
	dst = append(dst, service...)
	dst = append(dst, 0)
	dst = append(dst, name...)
	dst = append(dst, 0)
	return append(dst, byte(kind))
}

// encodeValid re-encodes t as an ExportTraceServiceRequest holding only its
// valid spans, keeping resources, scopes and span bytes unchanged.
func encodeValid(t *otlpwire.Traces) []byte {
	type scopeOut struct{ spans []int }
	perScope := make([][]int, len(t.Scopes))
	for i := range t.Spans {
		if t.Spans[i].Invalid == "" {
			perScope[t.Spans[i].Scope] = append(perScope[t.Spans[i].Scope], i)
		}
	}
	var out []byte
	for ri := range t.Resources {
		r := &t.Resources[ri]
		var rs []byte
		if r.Raw != nil {
			rs = protowire.AppendTag(rs, 1, protowire.BytesType)
			rs = protowire.AppendBytes(rs, r.Raw)
		}
		any := false
		for si := range t.Scopes {
			if t.Scopes[si].Resource != ri || len(perScope[si]) == 0 {
				continue
			}
			any = true
			sc := &t.Scopes[si]
			var ss []byte
			if sc.Raw != nil {
				ss = protowire.AppendTag(ss, 1, protowire.BytesType)
				ss = protowire.AppendBytes(ss, sc.Raw)
			}
			for _, i := range perScope[si] {
				ss = protowire.AppendTag(ss, 2, protowire.BytesType)
				ss = protowire.AppendBytes(ss, t.Spans[i].Raw)
			}
			if len(sc.SchemaURL) > 0 {
				ss = protowire.AppendTag(ss, 3, protowire.BytesType)
				ss = protowire.AppendBytes(ss, sc.SchemaURL)
			}
			rs = protowire.AppendTag(rs, 2, protowire.BytesType)
			rs = protowire.AppendBytes(rs, ss)
		}
		if !any {
			continue
		}
		if len(r.SchemaURL) > 0 {
			rs = protowire.AppendTag(rs, 3, protowire.BytesType)
			rs = protowire.AppendBytes(rs, r.SchemaURL)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, rs)
	}
	return out
}

// Commit batching limits: one bbolt transaction takes at most this many
// requests or bytes.
const (
	maxBatchRequests = 4096
	maxBatchBytes    = 64 << 20
)

// commitLoop is the single writer of chunks: it gathers everything queued
// into one transaction (group commit), then publishes and acknowledges.
func (db *DB) commitLoop() {
	defer db.wg.Done()
	defer close(db.published)
	var batch []*pending
	for {
		select {
		case p := <-db.queue:
			batch = append(batch[:0], p)
		case <-db.closing:
			// Writers no longer enqueue (closed is set under writeMu):
			// commit what is left and stop.
			for {
				batch = batch[:0]
				size := 0
			drain:
				for len(batch) < maxBatchRequests && size < maxBatchBytes {
					select {
					case p := <-db.queue:
						batch = append(batch, p)
						size += len(p.data)
					default:
						break drain
					}
				}
				if len(batch) == 0 {
					return
				}
				db.commit(batch)
			}
		}
		size := len(batch[0].data)
	more:
		for len(batch) < maxBatchRequests && size < maxBatchBytes {
			select {
			case p := <-db.queue:
				batch = append(batch, p)
				size += len(p.data)
			default:
				break more
			}
		}
		db.commit(batch)
	}
}

func (db *DB) commit(batch []*pending) {
	err := db.commitTx(batch)
	if err != nil && len(batch) > 1 && !isDiskFull(err) {
		// One request must not fail the others of its batch: commit them
		// one by one, so that only the requests that fail alone are
		// refused. Rare (a full disk fails them all again, quickly).
		db.logger.Warn("group commit failed; committing its requests one by one", "err", err, "requests", len(batch))
		for i := range batch {
			db.commit(batch[i : i+1])
		}
		return
	}
	if err != nil {
		err = db.commitError(err)
		db.logger.Error("commit failed", "err", err)
		db.answer(batch, err)
	}
}

// commitTx writes batch in one transaction and, once it is durable, hands
// it to the publish goroutine. On error nothing of batch was stored.
func (db *DB) commitTx(batch []*pending) error {
	start := time.Now()
	st := db.stampCommit()
	now := st.ns
	seq, mseq := db.nextSeq, db.nextMSeq
	var bytes int
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if db.failCommit != nil {
			if err := db.failCommit(batch); err != nil {
				return err
			}
		}
		chunks := tx.Bucket(bucketChunks)
		chunks.FillPercent = 1.0
		mchunks := tx.Bucket(bucketMChunks)
		mchunks.FillPercent = 1.0
		ops := tx.Bucket(bucketOps)
		names := tx.Bucket(bucketMNames)
		for _, p := range batch {
			setCommitTime(p.data, now)
			bytes += len(p.data)
			if p.mark != nil {
				if err := tx.Bucket(bucketImports).Put(p.mark.key, p.mark.value); err != nil {
					return fmt.Errorf("put import mark: %w", err)
				}
			}
			if p.metrics {
				p.seq = mseq
				mseq++
				if err := mchunks.Put(u64(p.seq), p.data); err != nil {
					return fmt.Errorf("put metric chunk: %w", err)
				}
				for _, n := range p.names {
					if err := names.Put([]byte(n.Name), encodeMetricInfo(n)); err != nil {
						return fmt.Errorf("put metric name: %w", err)
					}
				}
				continue
			}
			p.seq = seq
			seq++
			if err := chunks.Put(u64(p.seq), p.data); err != nil {
				return fmt.Errorf("put chunk: %w", err)
			}
			for _, k := range p.newOps {
				if err := ops.Put([]byte(k), nil); err != nil {
					return fmt.Errorf("put operation: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		db.unstamp(st)
		return err
	}
	db.diskFull.Store(false)
	db.nextSeq, db.nextMSeq = seq, mseq
	var spans int
	for _, p := range batch {
		if p.metrics {
			for _, n := range p.names {
				db.namesSeen.Store(n.Name, n)
			}
			continue
		}
		for _, k := range p.newOps {
			db.opsSeen.Store(k, struct{}{})
		}
		spans += p.idx.spans
	}
	db.m.observeCommit(len(batch), bytes, spans, time.Since(start))
	// Publishing (aggregation, in-memory index) and acknowledging run
	// on the publish goroutine, in commit order, while this one
	// commits the next batch.
	db.published <- committed{batch: slices.Clone(batch), commitNs: now, stamp: st}
	return nil
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// commitError classifies a failed commit for the writers: a full disk
// (ErrDiskFull, which also marks the store not ready until a write
// succeeds), an item bbolt cannot hold (ErrTooLarge), or another storage
// failure (ErrCommitFailed).
func (db *DB) commitError(err error) error {
	switch {
	case isDiskFull(err):
		db.diskFull.Store(true)
		db.m.commitFailures.WithLabelValues("disk_full").Inc()
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	case errors.Is(err, bolt.ErrKeyTooLarge) || errors.Is(err, bolt.ErrValueTooLarge) || errors.Is(err, bolt.ErrKeyRequired):
		db.m.commitFailures.WithLabelValues("too_large").Inc()
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	db.m.commitFailures.WithLabelValues("io").Inc()
	return fmt.Errorf("%w: %w", ErrCommitFailed, err)
}

// Ready reports whether the store accepts writes: nil, or why not (closed,
// or the disk is full).
func (db *DB) Ready() error {
	switch {
	case db.closed.Load():
		return ErrClosed
	case db.diskFull.Load():
		return fmt.Errorf("%w: the last write failed for lack of space", ErrDiskFull)
	}
	return nil
}

// stampCommit returns the commit time of a batch about to be written and
// registers it as unapplied until the aggregator has applied it (or the
// commit failed). Stamping and registering happen under one lock, so
// expiryNow never passes the commit time of a batch the aggregator has not
// seen yet — which would make pairing depend on timing and the crash replay
// inexact — and awaitAggregation knows what a query must wait for.
func (db *DB) stampCommit() stamp {
	db.pubMu.Lock()
	defer db.pubMu.Unlock()
	db.stampSeq++
	st := stamp{id: db.stampSeq, ns: db.opts.Now().UnixNano()}
	db.unpublished = append(db.unpublished, st)
	return st
}

// stamp identifies a committed batch until it is applied.
type stamp struct {
	id uint64
	ns int64
}

// unstamp forgets a batch once it is applied (or failed) and wakes the
// queries waiting for it.
func (db *DB) unstamp(st stamp) {
	db.pubMu.Lock()
	defer db.pubMu.Unlock()
	if i := slices.Index(db.unpublished, st); i >= 0 {
		db.unpublished = slices.Delete(db.unpublished, i, i+1)
	}
	close(db.pubNotify)
	db.pubNotify = make(chan struct{})
}

// expiryNow is the time up to which the aggregator may expire pending
// halves: now, but not past the oldest committed batch not yet applied.
func (db *DB) expiryNow() int64 {
	db.pubMu.Lock()
	defer db.pubMu.Unlock()
	now := db.opts.Now().UnixNano()
	for _, st := range db.unpublished {
		now = min(now, st.ns)
	}
	return now
}

// awaitAggregation waits until every batch committed before the call has
// been applied to the aggregator, so that rollup queries see everything
// acknowledged before they started. Acknowledgement does not wait for
// aggregation; queries do, for milliseconds. After Options.AggregationWait
// the query is served with what is aggregated, counted and logged: a stuck
// or far-behind aggregator must not hang every query.
func (db *DB) awaitAggregation(ctx context.Context) error {
	if err := db.awaitWarm(ctx); err != nil {
		return err
	}
	db.pubMu.Lock()
	target := db.stampSeq
	db.pubMu.Unlock()
	timeout := time.NewTimer(db.opts.AggregationWait)
	defer timeout.Stop()
	for {
		db.pubMu.Lock()
		waiting := slices.ContainsFunc(db.unpublished, func(st stamp) bool { return st.id <= target })
		ch := db.pubNotify
		db.pubMu.Unlock()
		if !waiting {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout.C:
			db.m.aggWaitTimeouts.Inc()
			db.pubMu.Lock()
			behind := len(db.unpublished)
			db.pubMu.Unlock()
			db.logger.Warn("query served before aggregation caught up: its flow graph and latency counts may miss recently acknowledged spans",
				"waited", db.opts.AggregationWait, "batches_not_aggregated", behind)
			return nil
		}
	}
}

// awaitWarm waits, for at most Options.AggregationWait, until the
// aggregator's replay after a restart is done (replayAggregator), and
// otherwise fails with ErrWarmingUp: until then the flow graph and the
// latencies would miss the calls still being replayed.
func (db *DB) awaitWarm(ctx context.Context) error {
	return db.awaitStart(ctx, db.warm, func() string {
		if p := db.replay; p != nil {
			return fmt.Sprintf("the aggregator is replaying chunks %d to %d after the restart", p.from, p.last)
		}
		return "the aggregator is starting"
	})
}

// awaitStart waits, for at most Options.AggregationWait, until done (the
// end of a piece of work a start owes) is closed, and otherwise fails with
// ErrWarmingUp and what is still being done.
func (db *DB) awaitStart(ctx context.Context, done <-chan struct{}, what func() string) error {
	select {
	case <-done:
		return nil
	default:
	}
	timeout := time.NewTimer(db.opts.AggregationWait)
	defer timeout.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout.C:
		return fmt.Errorf("%w: %s", ErrWarmingUp, what())
	}
}

// committed is a batch whose transaction committed, waiting to be published.
type committed struct {
	batch    []*pending
	commitNs int64
	stamp    stamp
}

// publishLoop makes committed batches visible in the in-memory index, then
// acknowledges their writers, so that an acknowledged span is searchable,
// and only then hands them to the aggregator (aggregateLoop): the flow
// graph and latency counts follow the acknowledgement by milliseconds, and
// rollup queries wait for what was acknowledged before they started
// (awaitAggregation; doc.go, "Write path").
func (db *DB) publishLoop() {
	defer db.wg.Done()
	var aggCh chan committed
	if db.agg != nil {
		aggCh = make(chan committed, aggQueue)
		db.wg.Add(1)
		go db.aggregateLoop(aggCh)
		defer close(aggCh)
	}
	for c := range db.published {
		n, b := db.tail.add(c.batch, c.commitNs)
		if n >= db.opts.CheckpointSpans || b >= db.opts.CheckpointBytes {
			select {
			case db.ckptTrigger <- struct{}{}:
			default:
			}
		}
		if aggCh == nil {
			db.unstamp(c.stamp)
			db.answer(c.batch, nil)
			continue
		}
		// The aggregator reads the parsed requests after the writers are
		// answered; keep what it needs before answer clears the batch.
		work := committed{commitNs: c.commitNs, stamp: c.stamp, batch: make([]*pending, 0, len(c.batch))}
		for _, p := range c.batch {
			if !p.metrics {
				work.batch = append(work.batch, &pending{seq: p.seq, traces: p.traces, owned: p.owned, aggHeld: p.aggHeld})
			}
		}
		db.answer(c.batch, nil)
		aggCh <- work
	}
}

// aggQueue bounds the committed batches waiting for the aggregator; when
// it is full, publishing (and so acknowledging) waits. The memory of the
// backlog is bounded by the memory budget (each request's copy is held
// from it until applied), so the queue is long: acknowledgement should
// not wait for a moment of slow aggregation.
const aggQueue = 1024

// aggregateLoop applies committed batches to the aggregator in commit
// order. It runs just after the writers were acknowledged: their spans are
// in the flow graph and latency API within milliseconds (the bench measures
// it), and a crash before the next rollup flush is covered by the replay.
func (db *DB) aggregateLoop(ch <-chan committed) {
	defer db.wg.Done()
	db.replayAggregator()
	for c := range ch {
		for _, p := range c.batch {
			db.agg.Apply(p.seq, c.commitNs, p.traces)
			releaseParsed(p.traces, p.owned)
			db.opts.Budget.Release(p.aggHeld)
		}
		db.unstamp(c.stamp)
	}
}

// answer acknowledges (or fails) the writers of a batch and releases its
// queue space.
func (db *DB) answer(batch []*pending, err error) {
	var sz int64
	for _, p := range batch {
		sz += p.size
		p.done <- err
		p.data, p.traces, p.owned = nil, nil, nil
	}
	db.queuedBytes.Add(-sz)
	db.opts.Budget.Release(sz)
}
