package aggregate

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"

	"github.com/flowscope/flowscope/otlpwire"
)

// linkTable maps span keys to links: an open-addressing hash table with
// linear probing and backward-shift deletion (no tombstones, so probe
// sequences stay short under the constant insert/delete churn of the
// pairing state), at most 3/4 full.
//
// A slot stores the key's hash but not the key: the key is that of the
// entries the link points at (every stored link points at one), so a match
// is verified against the queued entry and equal hashes of different keys
// are told apart. The hash is keyed with random seeds, so that crafted IDs
// cannot make long probe sequences.
//
// This replaced a map[spanKey]link, which took about 60% of Apply's time
// (see BenchmarkApply).
type linkTable struct {
	slots []linkSlot
	n     int
	seed  [4]uint64
	sink  uint64 // keeps the loads of touch from being optimized away
}

type linkSlot struct {
	hash uint64 // 0: empty (hashes have their low bit set)
	link
}

func newLinkTable() linkTable {
	return linkTable{seed: [4]uint64{rand.Uint64(), rand.Uint64(), rand.Uint64(), rand.Uint64()}}
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func (t *linkTable) hash(k *spanKey) uint64 {
	w0 := binary.LittleEndian.Uint64(k.trace[0:8])
	w1 := binary.LittleEndian.Uint64(k.trace[8:16])
	w2 := binary.LittleEndian.Uint64(k.span[:])
	h := mix(w0^t.seed[0], w1^t.seed[1]) ^ mix(w2^t.seed[2], t.seed[3])
	return mix(h, 0x9E3779B97F4A7C15) | 1
}

// keyOf returns the key of the entries that slot s links.
func (a *Aggregator) keyOf(s *linkSlot) *spanKey {
	id := s.self
	if id == 0 {
		id = s.wait
	}
	return &a.q.get(id).key
}

// noSlot is the index findSlot returns for a missing key.
const noSlot = ^uint64(0)

// findSlot returns the index of k's slot, or noSlot.
func (a *Aggregator) findSlot(k *spanKey) uint64 {
	t := &a.links
	if t.n == 0 {
		return noSlot
	}
	h := t.hash(k)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == 0 {
			return noSlot
		}
		if s.hash == h && *a.keyOf(s) == *k {
			return i
		}
	}
}

// slotFor returns the index of k's slot (h is its hash), inserting an empty link if there
// is none. The caller must store a link in a new slot, or remove it, before
// the next table operation.
func (a *Aggregator) slotFor(k *spanKey, h uint64) uint64 {
	t := &a.links
	if (t.n+1)*4 > len(t.slots)*3 {
		a.resizeLinks(max(1024, 2*len(t.slots)))
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == 0 {
			s.hash = h
			t.n++
			return i
		}
		if s.hash == h && *a.keyOf(s) == *k {
			return i
		}
	}
}

// slot returns the slot at index i; the pointer is valid until the next
// insertion or removal.
func (a *Aggregator) slot(i uint64) *linkSlot { return &a.links.slots[i] }

// removeSlot empties slot i, shifting back the slots after it that had
// probed past it.
func (a *Aggregator) removeSlot(i uint64) {
	t := &a.links
	mask := uint64(len(t.slots) - 1)
	for j := (i + 1) & mask; t.slots[j].hash != 0; j = (j + 1) & mask {
		k := t.slots[j].hash & mask // where j's key wants to be
		// j may move to i unless k lies cyclically in (i, j].
		if (i <= j && i < k && k <= j) || (i > j && (i < k || k <= j)) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = linkSlot{}
	t.n--
}

// removeIfEmpty removes slot i if its link is empty.
func (a *Aggregator) removeIfEmpty(i uint64) {
	if s := a.slot(i); s.self == 0 && s.wait == 0 {
		a.removeSlot(i)
	}
}

// resizeLinks rehashes the table into n slots (a power of two).
func (a *Aggregator) resizeLinks(n int) {
	t := &a.links
	old := t.slots
	t.slots = make([]linkSlot, n)
	mask := uint64(n - 1)
	for _, s := range old {
		if s.hash == 0 {
			continue
		}
		i := s.hash & mask
		for t.slots[i].hash != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// shrinkLinks gives memory back after a burst.
func (a *Aggregator) shrinkLinks() {
	n := len(a.links.slots)
	for n > 1024 && a.links.n*8 <= n {
		n /= 2
	}
	if n < len(a.links.slots) {
		a.resizeLinks(n)
	}
}

// Batched loads. A lookup in a table much larger than the CPU caches costs
// a memory round trip, mostly spent waiting. touchSpans and touchFront load
// the slots that a block of work will probe in one pass of independent
// loads, which the CPU overlaps, so that the work itself finds them cached
// (about 2x faster Apply at a million pending entries; BenchmarkApply).

// touchBlock is how many spans or entries one touch pass covers: their
// slots stay cached until used.
const touchBlock = 64

// touchSpans computes the hashes of the keys that the spans of block will
// probe (into a.spanHashes: span i's own key at 2i, its parent's at 2i+1;
// likewise into a.parentHashes for the parent table) and loads their
// slots.
func (a *Aggregator) touchSpans(block []otlpwire.Span) {
	t := &a.links
	hs, ps, use := a.spanHashes[:0], a.parentHashes[:0], a.touchHashes[:0]
	waiting := a.st.PendingServers > 0
	for i := range block {
		s := &block[i]
		k := spanKey{trace: s.TraceID, span: s.SpanID}
		h1, p1 := t.hash(&k), parentHash(&k)
		k.span = s.ParentID
		h2 := t.hash(&k)
		hs = append(hs, h1, h2)
		ps = append(ps, p1, parentHash(&k))
		// Touch only the slots apply will read: a client's own (it is
		// held), a server's parent (a held client), and a non-client's own
		// when servers wait (one may wait for it).
		switch s.Kind {
		case kindClient, kindProducer:
			use = append(use, h1)
		case kindServer, kindConsumer:
			if s.HasParent() {
				use = append(use, h2)
			}
			fallthrough
		default:
			if waiting {
				use = append(use, h1)
			}
		}
	}
	a.spanHashes, a.parentHashes, a.touchHashes = hs, ps, use
	t.touch(use)
	a.parents.touch(block, ps, &t.sink)
}

// touchFront loads the slots of the next n queued entries (which Expire or
// eviction is about to remove).
func (a *Aggregator) touchFront(n int) {
	t := &a.links
	hs := a.frontHashes[:0]
	end := min(a.q.tail, a.q.head+uint64(n))
	for id := a.q.head; id < end; id++ {
		if e := a.q.get(id); e.flags&flagDead == 0 {
			hs = append(hs, t.hash(&e.key))
		}
	}
	a.frontHashes = hs
	t.touch(hs)
}

// touch loads the slots of hashes hs: a loop of independent loads only, so
// that many misses are in flight at once.
func (t *linkTable) touch(hs []uint64) {
	if len(t.slots) == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	x := t.sink
	for _, h := range hs {
		x ^= t.slots[h&mask].hash
	}
	t.sink = x
}
