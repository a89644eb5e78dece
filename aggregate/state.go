package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Saved state.
//
// After a crash the pairing state is rebuilt by replaying the chunks from
// the checkpoint's ReplayFrom (Rebuild), which takes seconds at a high
// rate. A clean stop can do better: right after its last Flush the store
// saves the whole pairing state (AppendState) and the next start loads it
// (LoadState) instead of replaying. The state is everything Apply, Expire
// and Flush read: the queue of entries with their IDs, the links (as the
// entry IDs they point at: the table is rebuilt with new hash seeds), the
// parents that a later lookup can accept (in their slots: a bucket's
// content depends on the order of insertions), the failed calls remembered
// for retries, the recent chunks, the intern tables, the watermarks and
// the counters. The provisional summary is not saved: it is a function of
// the queue, rebuilt by the next Live. The window deltas must have been
// flushed: AppendState fails otherwise.

// stateMagic starts a saved state; the last byte is the format version.
var stateMagic = [8]byte{'F', 'S', 'A', 'G', 'S', 'T', 0, 1}

// ErrStateMismatch is returned by LoadState for a state saved by an
// aggregator with other options (pair wait, window width, pending bound or
// parent table size): the caller replays instead.
var ErrStateMismatch = errors.New("saved aggregator state was made with other options")

// minEntrySize is the smallest encoded size of an entry.
const minEntrySize = 32 + 7 + 2

// AppendState appends the aggregator's pairing state to b. Call it right
// after Flush, with nothing applied since; it fails if window deltas are
// unflushed.
func (a *Aggregator) AppendState(b []byte) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.windows) != 0 {
		return b, fmt.Errorf("aggregator state: %d windows not flushed", len(a.windows))
	}
	b = slices.Grow(b, a.stateSizeBound())
	b = append(b, stateMagic[:]...)
	for _, v := range a.optionWords() {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	for _, v := range []int64{a.commit, a.lastCommit, int64(a.applied), a.watermark, a.expireNow,
		a.st.PendingClients, a.st.PendingServers, a.st.RememberedParents, a.st.UnpairedClients, a.st.UnpairedServers,
		a.st.VirtualEdges, a.st.PairedEdges, a.st.Evicted, a.st.Clamped} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}

	// Intern tables.
	b = binary.AppendUvarint(b, uint64(a.in.strLimit))
	b = binary.AppendUvarint(b, uint64(a.in.nodeLimit))
	b = binary.AppendUvarint(b, uint64(len(a.in.strs)))
	for _, s := range a.in.strs {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(a.in.nodes)))
	for _, n := range a.in.nodes {
		for _, s := range [...]string{n.Service, n.Instance, n.Zone, n.Region, n.Namespace} {
			b = appendString(b, s)
		}
		b = appendBool(b, n.Virtual)
	}

	// Recent chunks.
	chunks := a.chunks[a.chunkHead:]
	b = binary.AppendUvarint(b, uint64(len(chunks)))
	for _, c := range chunks {
		b = binary.LittleEndian.AppendUint64(b, c.seq)
		b = binary.LittleEndian.AppendUint64(b, uint64(c.commit))
	}

	// The queue, dead entries included, so that IDs stay as they are;
	// commit times as differences from the previous entry's.
	b = binary.LittleEndian.AppendUint64(b, a.q.head)
	b = binary.LittleEndian.AppendUint64(b, a.q.tail)
	prev := a.lastCommit
	for id := a.q.head; id < a.q.tail; id++ {
		e := a.q.get(id)
		b = appendEntry(b, e, id, prev)
		prev = e.commit
	}

	// Links, by the entries they point at (IDs from the queue's head).
	b = binary.AppendUvarint(b, uint64(a.links.n))
	for i := range a.links.slots {
		if s := &a.links.slots[i]; s.hash != 0 {
			b = binary.AppendUvarint(b, a.queueRef(s.self))
			b = binary.AppendUvarint(b, a.queueRef(s.wait))
		}
	}

	// Parents a later span can still find: committed at or after
	// lastCommit-PairWait (later lookups accept no older ones; an older
	// one in its slot behaves as an empty slot). Slots ascending, as
	// differences; commit times from lastCommit.
	minCommit := a.lastCommit - a.pairWait
	b = binary.AppendUvarint(b, uint64(a.liveParents(minCommit)))
	last := -1
	for i := range a.parents.slots {
		if p := &a.parents.slots[i]; p.full && p.commit >= minCommit {
			b = binary.AppendUvarint(b, uint64(i-last))
			last = i
			b = binary.LittleEndian.AppendUint64(b, p.trace)
			b = binary.LittleEndian.AppendUint64(b, p.span)
			b = binary.AppendVarint(b, a.lastCommit-p.commit)
			b = binary.AppendUvarint(b, uint64(p.node))
		}
	}

	// Failed calls remembered for retries.
	b = binary.AppendUvarint(b, uint64(len(a.sibs)))
	for k, v := range a.sibs {
		b = appendSiblingKey(b, &k)
		b = binary.LittleEndian.AppendUint64(b, uint64(v.failEnd))
		b = binary.LittleEndian.AppendUint64(b, uint64(v.commit))
	}
	b = binary.AppendUvarint(b, uint64(len(a.sibOrder)))
	for i := range a.sibOrder {
		b = appendSiblingKey(b, &a.sibOrder[i].key)
		b = binary.LittleEndian.AppendUint64(b, uint64(a.sibOrder[i].commit))
	}
	return b, nil
}

// queueRef encodes entry ID id for the saved state: 0 for none, else
// its distance from the queue's head plus one.
func (a *Aggregator) queueRef(id uint64) uint64 {
	if id == 0 {
		return 0
	}
	return id - a.q.head + 1
}

// liveParents counts the parents committed at or after minCommit.
func (a *Aggregator) liveParents(minCommit int64) int {
	n := 0
	for i := range a.parents.slots {
		if p := &a.parents.slots[i]; p.full && p.commit >= minCommit {
			n++
		}
	}
	return n
}

// maxEntrySize bounds the encoded size of an entry.
const maxEntrySize = 32 + 4*binary.MaxVarintLen64 + 3*binary.MaxVarintLen32 + 2

// stateSizeBound bounds the size of AppendState's output, so that it is
// allocated once: the state can be a hundred megabytes, and growing it
// by doubling would make that much garbage again at a clean stop, next to
// a heap near the process's memory limit.
func (a *Aggregator) stateSizeBound() int {
	n := 256 + 2*binary.MaxVarintLen64
	for _, s := range a.in.strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	for _, nd := range a.in.nodes {
		n += 5*binary.MaxVarintLen64 + 1 + len(nd.Service) + len(nd.Instance) + len(nd.Zone) + len(nd.Region) + len(nd.Namespace)
	}
	n += 2*binary.MaxVarintLen64 + 16*(len(a.chunks)-a.chunkHead)
	n += 16 + a.q.len()*maxEntrySize
	n += binary.MaxVarintLen64 + a.links.n*2*binary.MaxVarintLen64
	n += binary.MaxVarintLen64 + a.liveParents(a.lastCommit-a.pairWait)*(16+3*binary.MaxVarintLen64)
	n += 2*binary.MaxVarintLen64 + len(a.sibs)*48 + len(a.sibOrder)*40
	return n
}

// optionWords are the options a saved state depends on.
func (a *Aggregator) optionWords() [4]int64 {
	return [4]int64{a.pairWait, a.widthNs, int64(a.opts.MaxPending), int64(len(a.parents.slots))}
}

// LoadState replaces the state of a new aggregator (made by New, nothing
// applied) with one saved by AppendState. It fails with ErrStateMismatch
// if a was made with other options, and with another error naming what is
// wrong if b is not a whole, consistent state; a is then unchanged.
func (a *Aggregator) LoadState(b []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.applied != 0 || a.q.len() != 0 || len(a.windows) != 0 {
		return errors.New("aggregator state: load into an aggregator that already applied chunks")
	}
	n, err := a.decodeState(b)
	if err != nil {
		return err
	}
	a.in, a.chunks, a.chunkHead = n.in, n.chunks, 0
	a.q, a.links, a.parents = n.q, n.links, n.parents
	a.sibs, a.sibOrder = n.sibs, n.sibOrder
	a.prov, a.provSeen = n.prov, n.provSeen
	a.commit, a.lastCommit, a.applied, a.watermark, a.expireNow = n.commit, n.lastCommit, n.applied, n.watermark, n.expireNow
	a.st = n.st
	return nil
}

// decodeState decodes b into a new aggregator with a's options.
func (a *Aggregator) decodeState(b []byte) (_ *Aggregator, err error) {
	r := stateReader{decoder{b: b}}
	if magic := r.bytes(len(stateMagic)); r.err == nil && string(magic) != string(stateMagic[:]) {
		return nil, fmt.Errorf("aggregator state: bad magic %q", magic)
	}
	for _, v := range a.optionWords() {
		if got := r.i64(); r.err == nil && got != v {
			return nil, ErrStateMismatch
		}
	}
	// a is new: its parent table is empty. The decoded parents go into it
	// (allocating another would double that memory), emptied again if
	// the state is refused.
	n := &Aggregator{opts: a.opts, pairWait: a.pairWait, in: newInterner(), links: newLinkTable(),
		parents: a.parents, sibs: map[siblingKey]siblingVal{}, prov: map[provKey]*provSum{}}
	defer func() {
		if err != nil {
			clear(a.parents.slots)
		}
	}()
	n.commit, n.lastCommit, n.applied, n.watermark, n.expireNow = r.i64(), r.i64(), r.u64(), r.i64(), r.i64()
	st := &n.st
	for _, p := range []*int64{&st.PendingClients, &st.PendingServers, &st.RememberedParents, &st.UnpairedClients,
		&st.UnpairedServers, &st.VirtualEdges, &st.PairedEdges, &st.Evicted, &st.Clamped} {
		*p = r.i64()
	}

	n.in.strLimit, n.in.nodeLimit = r.bounded(math.MaxInt32), r.bounded(math.MaxInt32)
	nstr := r.bounded(len(r.b))
	n.in.strs = make([]string, 0, nstr)
	n.in.strIdx = make(map[string]uint32, nstr)
	for i := range nstr {
		s := r.str()
		if _, dup := n.in.strIdx[s]; r.err == nil && (dup || (i == 0) != (s == "")) {
			return nil, fmt.Errorf("aggregator state: string %d (%q) is not unique or misplaced", i, s)
		}
		n.in.strIdx[s] = uint32(i)
		n.in.strs = append(n.in.strs, s)
	}
	nnode := r.bounded(len(r.b))
	n.in.nodes = make([]Node, 0, nnode)
	n.in.nodeIdx = make(map[string]uint32, nnode)
	for i := range nnode {
		nd := Node{Service: r.str(), Instance: r.str(), Zone: r.str(), Region: r.str(), Namespace: r.str(), Virtual: r.wireBool("node")}
		k := string(nodeKey(nil, nd))
		if i == 0 {
			k = ""
		}
		if _, dup := n.in.nodeIdx[k]; r.err == nil && (dup || (i == 0) != (nd == Node{})) {
			return nil, fmt.Errorf("aggregator state: node %d (%+v) is not unique or misplaced", i, nd)
		}
		n.in.nodeIdx[k] = uint32(i)
		n.in.nodes = append(n.in.nodes, nd)
	}
	if r.err == nil && (nstr == 0 || nnode == 0) {
		return nil, errors.New("aggregator state: empty intern tables")
	}
	str := func(i uint32) bool { return int(i) < len(n.in.strs) }
	node := func(i uint32) bool { return int(i) < len(n.in.nodes) }

	nchunk := r.bounded(len(r.b) / 16)
	n.chunks = make([]chunkRec, 0, nchunk)
	for range nchunk {
		c := chunkRec{seq: r.u64(), commit: r.i64()}
		if l := len(n.chunks); r.err == nil && l > 0 && (c.seq <= n.chunks[l-1].seq || c.commit < n.chunks[l-1].commit) {
			return nil, fmt.Errorf("aggregator state: chunk %d out of order", c.seq)
		}
		n.chunks = append(n.chunks, c)
	}

	head, tail := r.u64(), r.u64()
	if r.err == nil && (head == 0 || tail < head || tail-head > uint64(len(r.b))/minEntrySize) {
		return nil, fmt.Errorf("aggregator state: queue [%d, %d) does not fit the data", head, tail)
	}
	if r.err == nil && tail-head > uint64(n.opts.MaxPending) {
		return nil, fmt.Errorf("aggregator state: %d queued entries, over MaxPending %d", tail-head, n.opts.MaxPending)
	}
	n.q = entryQueue{head: head, tail: head}
	if r.err == nil && tail > head {
		size := 1024
		for size < int(tail-head) {
			size *= 2
		}
		n.q.buf = make([]entry, size)
	}
	inQueue := func(id uint64) bool { return id >= head && id < tail }
	prev := n.lastCommit
	for id := head; r.err == nil && id < tail; id++ {
		e := r.entry(id, prev)
		prev = e.commit
		if r.err != nil {
			break
		}
		if !node(e.node) || !str(e.name) || !str(e.target) || (e.next != 0 && !inQueue(e.next)) ||
			(e.kind != entryClient && e.kind != entryServer) {
			return nil, fmt.Errorf("aggregator state: entry %d refers outside the state", id)
		}
		e.flags &^= flagProv // the summary is rebuilt by the next Live
		n.q.push(e)
	}
	n.provSeen = head

	nlink := r.bounded(len(r.b) / 2)
	if r.err == nil && nlink > 0 {
		size := 1024
		for size*3 < nlink*4+4 {
			size *= 2
		}
		n.resizeLinks(size)
	}
	ref := func() uint64 {
		v := uint64(r.bounded(int(tail - head)))
		if v == 0 {
			return 0
		}
		return head + v - 1
	}
	for range nlink {
		l := link{self: ref(), wait: ref()}
		if r.err != nil {
			break
		}
		id := l.self
		if id == 0 {
			id = l.wait
		}
		if (l.self != 0 && !inQueue(l.self)) || (l.wait != 0 && !inQueue(l.wait)) || id == 0 {
			return nil, fmt.Errorf("aggregator state: link (%d, %d) refers outside the queue", l.self, l.wait)
		}
		k := n.q.get(id).key
		if l.self != 0 && l.wait != 0 && n.q.get(l.wait).key != k {
			return nil, fmt.Errorf("aggregator state: link (%d, %d) joins entries of different keys", l.self, l.wait)
		}
		i := n.slotFor(&k, n.links.hash(&k))
		if s := n.slot(i); s.self != 0 || s.wait != 0 {
			return nil, fmt.Errorf("aggregator state: two links for the key of entry %d", id)
		}
		n.slot(i).link = l
	}

	nparent := r.bounded(len(r.b) / 19)
	i := -1
	for range nparent {
		i += r.bounded(len(n.parents.slots))
		p := parentSlot{trace: r.u64(), span: r.u64(), commit: n.lastCommit - r.varint(), node: uint32(r.bounded(math.MaxUint32)), full: true}
		if r.err != nil {
			break
		}
		if i < 0 || i >= len(n.parents.slots) {
			return nil, fmt.Errorf("aggregator state: parent slot %d out of the table's %d", i, len(n.parents.slots))
		}
		if !node(p.node) {
			return nil, fmt.Errorf("aggregator state: parent in slot %d refers to node %d of %d", i, p.node, len(n.in.nodes))
		}
		n.parents.slots[i] = p
	}

	nsib := r.bounded(len(r.b) / 48)
	for range nsib {
		k := r.siblingKey()
		v := siblingVal{failEnd: r.i64(), commit: r.i64()}
		if r.err == nil && (!node(k.dst) || !str(k.name)) {
			return nil, errors.New("aggregator state: a failed call refers outside the intern tables")
		}
		n.sibs[k] = v
	}
	norder := r.bounded(len(r.b) / 40)
	n.sibOrder = make([]siblingAt, 0, norder)
	for range norder {
		s := siblingAt{key: r.siblingKey(), commit: r.i64()}
		n.sibOrder = append(n.sibOrder, s)
	}
	if r.err != nil {
		return nil, fmt.Errorf("aggregator state: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("aggregator state: %d bytes after the end", len(r.b))
	}
	return n, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendEntry appends entry e (ID id; prev is the commit time of the
// entry before it): its IDs raw, its times as varints (commit time as the
// difference from prev's, start from its commit time), the next server
// waiting for the same parent relative to id.
func appendEntry(b []byte, e *entry, id uint64, prev int64) []byte {
	b = append(b, e.key.trace[:]...)
	b = append(b, e.key.span[:]...)
	b = append(b, e.self[:]...)
	b = binary.AppendVarint(b, e.commit-prev)
	b = binary.AppendVarint(b, e.start-e.commit)
	if e.dur == durUnknown {
		b = append(b, 0)
	} else {
		b = binary.AppendUvarint(b, uint64(e.dur)+1) // durations are ≥ 0 (clampInt64)
	}
	var next uint64
	if e.next != 0 {
		next = e.next - id // a later entry: next > id
	}
	b = binary.AppendUvarint(b, next)
	b = binary.AppendUvarint(b, uint64(e.node))
	b = binary.AppendUvarint(b, uint64(e.name))
	b = binary.AppendUvarint(b, uint64(e.target))
	return append(b, e.kind, e.flags)
}

func appendSiblingKey(b []byte, k *siblingKey) []byte {
	b = append(b, k.trace[:]...)
	b = append(b, k.parent[:]...)
	b = binary.LittleEndian.AppendUint32(b, k.dst)
	return binary.LittleEndian.AppendUint32(b, k.name)
}

// stateReader decodes a saved state: the window decoder's reads (the
// first error sticks, wrapping ErrCorrupt, and every later read returns
// zero values) plus the state's fixed-width and bounded fields.
type stateReader struct{ decoder }

func (r *stateReader) u64() uint64 {
	if v := r.bytes(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *stateReader) i64() int64 { return int64(r.u64()) }

func (r *stateReader) u32() uint32 {
	if v := r.bytes(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

// bounded reads a uvarint that must not exceed limit.
func (r *stateReader) bounded(limit int) int {
	v := r.uvarint()
	if r.err == nil && (limit < 0 || v > uint64(limit)) {
		r.fail("count %d over its bound %d", v, max(limit, 0))
		return 0
	}
	return int(v)
}

func (r *stateReader) str() string { return string(r.bytes(r.bounded(len(r.b)))) }

// entry reads the entry of ID id; prev is the commit time of the one
// before it (appendEntry).
func (r *stateReader) entry(id uint64, prev int64) entry {
	v := r.bytes(32)
	if v == nil {
		return entry{}
	}
	var e entry
	copy(e.key.trace[:], v[0:16])
	copy(e.key.span[:], v[16:24])
	copy(e.self[:], v[24:32])
	e.commit = prev + r.varint()
	e.start = e.commit + r.varint()
	switch d := r.uvarint(); {
	case d == 0:
		e.dur = durUnknown
	case d-1 > math.MaxInt64:
		r.fail("entry %d: duration %d out of range", id, d-1)
	default:
		e.dur = int64(d - 1)
	}
	if next := r.uvarint(); next != 0 {
		e.next = id + next
	}
	e.node, e.name, e.target = uint32(r.bounded(math.MaxUint32)), uint32(r.bounded(math.MaxUint32)), uint32(r.bounded(math.MaxUint32))
	if kf := r.bytes(2); kf != nil {
		e.kind, e.flags = kf[0], kf[1]
	}
	return e
}

func (r *stateReader) siblingKey() siblingKey {
	var k siblingKey
	copy(k.trace[:], r.bytes(16))
	copy(k.parent[:], r.bytes(8))
	k.dst, k.name = r.u32(), r.u32()
	return k
}
