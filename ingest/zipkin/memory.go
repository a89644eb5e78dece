package zipkin

import "sync"

// spanKey identifies a Zipkin span: trace ID (64-bit IDs left-padded) and
// span ID.
type spanKey struct {
	trace [16]byte
	span  [8]byte
}

// memEntry is what the ID memory keeps about a converted span.
type memEntry struct {
	// target is the ID of the OTLP span children of the Zipkin span hang
	// under: for v1 the last server half (the span ID itself when it was
	// not split); for v2 the derived ID of a shared server span.
	target [8]byte
	// service is a hash of the local service name of a v2 shared server
	// span (children in the same service hang under target); 0 for v1.
	// 32 bits keep an entry at 16 bytes; it only tells apart the services
	// of one span's children.
	service uint32
	// client is set for a v1 span whose first half is a client (producer)
	// half: a server half of the same ID reported apart, even without a
	// parentId, is then the other half of that call.
	client bool
	// guess is set for a v1 span with only client halves: its target is
	// the ID its server half would have. A guess never replaces an entry
	// that is not one; it only sets its client flag.
	guess bool
}

// idMemory remembers the last size converted spans, first in first out:
// a map plus a ring of its keys in insertion order. It holds the entries of
// one Zipkin version (v1 spans, or v2 shared server spans). It is safe for
// concurrent use (the HTTP handler shares one per endpoint across
// requests).
type idMemory struct {
	mu   sync.Mutex
	size int
	m    map[spanKey]memEntry
	ring []spanKey
	next int // ring slot to overwrite once the ring is full
}

func newIDMemory(size int) *idMemory {
	return &idMemory{size: size}
}

// get returns the entry of k.
func (m *idMemory) get(k spanKey) (memEntry, bool) {
	if m == nil || m.size == 0 {
		return memEntry{}, false
	}
	m.mu.Lock()
	e, ok := m.m[k]
	m.mu.Unlock()
	return e, ok
}

// put records the entries of a converted batch, evicting the oldest.
func (m *idMemory) put(keys []spanKey, entries []memEntry) {
	if m == nil || m.size == 0 || len(keys) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[spanKey]memEntry, min(m.size, 1024))
	}
	for i, k := range keys {
		if old, ok := m.m[k]; ok { // already in the ring
			e := entries[i]
			switch {
			case e.guess && !old.guess:
				old.client = old.client || e.client
				e = old
			case !e.guess:
				e.client = e.client || old.client
			}
			m.m[k] = e
			continue
		}
		if len(m.ring) < m.size {
			m.ring = append(m.ring, k)
		} else {
			delete(m.m, m.ring[m.next])
			m.ring[m.next] = k
			m.next = (m.next + 1) % m.size
		}
		m.m[k] = entries[i]
	}
}

// traceSet remembers the last size trace IDs, to count distinct traces
// in bounded memory. It is not safe for concurrent use.
type traceSet struct {
	size int
	m    map[[16]byte]struct{}
	ring [][16]byte
	next int
}

// add records id and reports whether it was new. With size 0 every call
// reports new.
func (t *traceSet) add(id [16]byte) bool {
	if t.size == 0 {
		return true
	}
	if t.m == nil {
		t.m = make(map[[16]byte]struct{}, min(t.size, 1024))
	}
	if _, ok := t.m[id]; ok {
		return false
	}
	if len(t.ring) < t.size {
		t.ring = append(t.ring, id)
	} else {
		delete(t.m, t.ring[t.next])
		t.ring[t.next] = id
		t.next = (t.next + 1) % t.size
	}
	t.m[id] = struct{}{}
	return true
}
