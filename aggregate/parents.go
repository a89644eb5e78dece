package aggregate

import (
	"encoding/binary"
	"math/bits"

	"github.com/flowscope/flowscope/otlpwire"
)

// parentTable remembers the non-client spans (potential parents of server
// spans whose caller has no client instrumentation) in a fixed-size,
// two-way set-associative table without removal: a span goes into the
// first way of its bucket and the span there moves to the second way,
// pushing out the one before. A bucket therefore holds the last two spans
// inserted into it, whatever their age, and a lookup accepts an entry
// only if it is live (committed at or after c-PairWait for a span
// committed at c).
//
// Because the content of a bucket depends only on the sequence of
// insertions, and lookups only on the content and commit times, a replay
// that starts PairWait before the oldest commit time a later lookup can
// accept gives the same answers as the run it replays (see Flush).
//
// This replaced remembering parents as entries of the pairing queue, with
// a link each, which cost an insertion and a removal in the link table
// and a queue entry for every non-client span, and evicted pending halves
// at high rates (BenchmarkApply). Under a load above the table's capacity
// (two spans per bucket) older parents are overwritten early; a server
// span whose parent was lost waits for it like one whose parent never
// came.
type parentTable struct {
	slots []parentSlot // 2 per bucket; len is a power of two
}

// parentSlot is 32 bytes, so that a bucket is one cache line. It keys a
// parent by its span ID and the two halves of its trace ID folded into 64
// bits (XOR, so that 64-bit trace IDs padded with zeros keep all their
// bits): two live parents are confused only if their span IDs are equal
// and their trace IDs fold alike.
type parentSlot struct {
	trace  uint64
	span   uint64
	commit int64
	node   uint32
	full   bool
}

func foldKey(k *spanKey) (trace, span uint64) {
	return binary.LittleEndian.Uint64(k.trace[0:8]) ^ binary.LittleEndian.Uint64(k.trace[8:16]),
		binary.LittleEndian.Uint64(k.span[:])
}

// newParentTable returns a table of at least n slots (a power of two, at
// least 1024), or of exactly slots (rounded up to a power of two) when
// slots is positive (Options.ParentSlots).
func newParentTable(n, slots int) parentTable {
	n = max(n, 1024)
	if slots > 0 {
		n = slots
	}
	if n&(n-1) != 0 {
		n = 1 << bits.Len(uint(n))
	}
	return parentTable{slots: make([]parentSlot, n)}
}

// parentHash hashes a key for the parent table. Unlike the link table's
// hash it has fixed keys: a bucket's content must not change across a
// restart for replay to be exact. Crafted IDs can only make parents
// overwrite each other (as a load above capacity does), never slow a
// lookup down.
func parentHash(k *spanKey) uint64 {
	w0 := binary.LittleEndian.Uint64(k.trace[0:8])
	w1 := binary.LittleEndian.Uint64(k.trace[8:16])
	w2 := binary.LittleEndian.Uint64(k.span[:])
	h := mix(w0^0x243F6A8885A308D3, w1^0x13198A2E03707344) ^ mix(w2^0xA4093822299F31D0, 0x082EFA98EC4E6C89)
	return mix(h, 0x9E3779B97F4A7C15)
}

// bucket returns the index of the first slot of h's bucket.
func (t *parentTable) bucket(h uint64) uint64 {
	return (h >> 20) & uint64(len(t.slots)-2)
}

// insert remembers a parent.
func (t *parentTable) insert(h uint64, k *spanKey, node uint32, commit int64) {
	b := t.bucket(h)
	s := t.slots[b : b+2 : b+2]
	s[1] = s[0]
	tr, sp := foldKey(k)
	s[0] = parentSlot{trace: tr, span: sp, commit: commit, node: node, full: true}
}

// lookup returns the node of the live parent with key k (h its hash):
// one committed at or after minCommit.
func (t *parentTable) lookup(h uint64, k *spanKey, minCommit int64) (uint32, bool) {
	b := t.bucket(h)
	s := t.slots[b : b+2 : b+2]
	tr, sp := foldKey(k)
	for i := range s {
		if e := &s[i]; e.full && e.span == sp && e.trace == tr && e.commit >= minCommit {
			return e.node, true
		}
	}
	return 0, false
}

// touch loads the buckets that the spans of block will use (hs: their
// hashes as in touchSpans): a non-client span's own bucket, and a server
// span's parent's bucket.
func (t *parentTable) touch(block []otlpwire.Span, hs []uint64, sink *uint64) {
	x := *sink
	for i := range block {
		switch block[i].Kind {
		case kindClient, kindProducer:
			continue
		case kindServer, kindConsumer:
			if block[i].HasParent() {
				x ^= uint64(t.slots[t.bucket(hs[2*i+1])].commit)
			}
		}
		x ^= uint64(t.slots[t.bucket(hs[2*i])].commit)
	}
	*sink = x
}

// compact forgets the parents committed before minCommit (no later lookup
// can accept them) and remaps the nodes of the others.
func (t *parentTable) compact(minCommit int64, m *remapper) {
	for i := range t.slots {
		e := &t.slots[i]
		if !e.full {
			continue
		}
		if e.commit < minCommit {
			*e = parentSlot{}
			continue
		}
		e.node = m.node(e.node)
	}
}

// live counts the parents committed at or after minCommit. It reads the
// whole table (about 1 ms per million slots).
func (t *parentTable) live(minCommit int64) int64 {
	var n int64
	for i := range t.slots {
		if e := &t.slots[i]; e.full && e.commit >= minCommit {
			n++
		}
	}
	return n
}
