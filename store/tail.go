package store

import (
	"sync"
)

// tail indexes the chunks committed since the last checkpoint. Readers
// consult it together with the persisted segments, so data is searchable as
// soon as it is acknowledged. A checkpoint freezes the active memSeg,
// persists it and then drops it.
type tail struct {
	mu     sync.RWMutex
	active *memSeg
	frozen []*memSeg // being persisted; immutable
}

// memSeg is the in-memory form of a segment.
type memSeg struct {
	chunks []memChunk // ascending seq
	traces map[TraceID][]uint64
	terms  map[string][]uint64
	svc    map[svcKey]*svcCount
	spans  int
	// bytes estimates the memory the segment holds (memSegBytes).
	bytes int64
}

// Estimated memory of a memSeg's entries, for Options.CheckpointBytes:
// a map entry with its key and slice header, a posting, a chunk.
const (
	memTermBytes  = 80
	memTraceBytes = 72
	memSeqBytes   = 12 // a postings element, with the slices' spare capacity
	memChunkBytes = 48
)

// memChunk is one chunk's entry in a segment.
type memChunk struct {
	seq      uint64
	commitNs int64
	minStart int64
	maxStart int64
	maxEnd   int64
}

func newMemSeg() *memSeg {
	return &memSeg{
		traces: map[TraceID][]uint64{},
		terms:  map[string][]uint64{},
		svc:    map[svcKey]*svcCount{},
	}
}

func newTail() *tail { return &tail{active: newMemSeg()} }

// add indexes the span chunks of a committed batch and returns the number of
// spans the active segment now covers and its estimated memory.
func (t *tail) add(batch []*pending, commitNs int64) (int, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range batch {
		if p.metrics {
			continue
		}
		t.active.addChunk(p.seq, commitNs, p.idx)
	}
	return t.active.spans, t.active.bytes
}

func (s *memSeg) addChunk(seq uint64, commitNs int64, idx *chunkIndex) {
	s.chunks = append(s.chunks, memChunk{seq: seq, commitNs: commitNs,
		minStart: idx.minStart, maxStart: idx.maxStart, maxEnd: idx.maxEnd})
	b := int64(memChunkBytes + memSeqBytes*(len(idx.traces)+len(idx.terms)))
	// m[k] = append(m[k], v) is one map access; a new key shows as a
	// longer map.
	for _, id := range idx.traces {
		n := len(s.traces)
		s.traces[id] = append(s.traces[id], seq)
		if len(s.traces) > n {
			b += memTraceBytes
		}
	}
	for _, term := range idx.terms {
		n := len(s.terms)
		s.terms[term] = append(s.terms[term], seq)
		if len(s.terms) > n {
			b += memTermBytes + int64(len(term))
		}
	}
	s.bytes += b
	for _, c := range idx.svc {
		k := svcKey{service: c.service, sec: c.sec}
		if e := s.svc[k]; e != nil {
			e.spans += c.spans
			e.errors += c.errors
		} else {
			cc := c
			s.svc[k] = &cc
		}
	}
	s.spans += idx.spans
}

// freeze moves the active segment to the frozen list and returns it, or nil
// when it is empty.
func (t *tail) freeze() *memSeg {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.active.chunks) == 0 {
		return nil
	}
	s := t.active
	t.frozen = append(t.frozen, s)
	t.active = newMemSeg()
	return s
}

// oldestFrozen returns the oldest frozen segment, or nil.
func (t *tail) oldestFrozen() *memSeg {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.frozen) == 0 {
		return nil
	}
	return t.frozen[0]
}

// frozenCount returns the number of frozen segments waiting to be persisted.
func (t *tail) frozenCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.frozen)
}

// drop forgets a frozen segment once it is persisted.
func (t *tail) drop(s *memSeg) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, f := range t.frozen {
		if f == s {
			t.frozen = append(t.frozen[:i], t.frozen[i+1:]...)
			return
		}
	}
}

// spans returns the number of spans indexed in memory.
func (t *tail) spanCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.active.spans
	for _, f := range t.frozen {
		n += f.spans
	}
	return n
}

// segments returns the in-memory segments (frozen and active). Readers take
// it before their bbolt snapshot: a segment dropped after that point is
// persisted in a transaction the reader may not see, so the reader keeps
// using the in-memory copy.
func (t *tail) segments() []*memSeg {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append(append([]*memSeg(nil), t.frozen...), t.active)
}

// traceSeqs returns the chunk seqs of segs holding spans of id.
func (t *tail) traceSeqs(segs []*memSeg, id TraceID) []uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []uint64
	for _, s := range segs {
		out = append(out, s.traces[id]...)
	}
	return out
}

// segView is a read-only snapshot of one segment's index, persisted or in
// memory, in the form the search code uses.
type segView struct {
	firstSeq, lastSeq uint64
	minStart          int64
	maxStart          int64
	maxEnd            int64
	chunks            []memChunk
	// postings returns the chunk seqs containing term (ascending) and
	// whether the term occurs in the segment at all.
	postings func(term string) ([]uint64, bool)
	svc      []svcCount
}

// views snapshots the in-memory segments, newest first, with the postings
// of the given terms and, if withSvc, the service counts.
func (t *tail) views(terms []string, withSvc bool) []segView {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []segView
	if len(t.active.chunks) > 0 {
		out = append(out, t.active.snapshot(terms, withSvc))
	}
	for i := len(t.frozen) - 1; i >= 0; i-- {
		out = append(out, t.frozen[i].snapshot(terms, withSvc))
	}
	return out
}

// snapshot copies what a reader needs; the caller holds the tail lock.
func (s *memSeg) snapshot(needTerms []string, withSvc bool) segView {
	v := segView{
		firstSeq: s.chunks[0].seq,
		lastSeq:  s.chunks[len(s.chunks)-1].seq,
		minStart: 1<<63 - 1,
		chunks:   append([]memChunk(nil), s.chunks...),
	}
	for _, c := range s.chunks {
		v.minStart = min(v.minStart, c.minStart)
		v.maxStart = max(v.maxStart, c.maxStart)
		v.maxEnd = max(v.maxEnd, c.maxEnd)
	}
	// Slices in the maps are append-only, so a copied slice header is a
	// stable prefix that later appends do not touch.
	terms := make(map[string][]uint64, len(needTerms))
	for _, k := range needTerms {
		if p, ok := s.terms[k]; ok {
			terms[k] = p[:len(p):len(p)]
		}
	}
	v.postings = func(term string) ([]uint64, bool) {
		p, ok := terms[term]
		return p, ok
	}
	if withSvc {
		for _, c := range s.svc {
			v.svc = append(v.svc, *c)
		}
	}
	return v
}
