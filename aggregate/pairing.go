package aggregate

import "github.com/flowscope/flowscope/otlpwire"

// Pairing state.
//
// Every client span and every server span still waiting for its parent is
// an entry in one FIFO queue, in arrival order, which is commit order.
// Entries are found through links, keyed by (trace ID, span ID): link.self
// is the client span with that ID, link.wait the first of the server spans
// waiting for that ID as their parent, chained through entry.next.
// Non-client spans, the potential parents of server spans whose caller has
// no client instrumentation, are remembered apart, in the parent table
// (parents.go).
//
// An entry is live for a span committed at c if it was committed at or
// after c-PairWait: pairing depends only on commit times, never on when
// Expire ran, which is what makes crash replay exact. Entries leave the
// queue from the front, when Expire passes their commit time or when
// MaxPending evicts them; a server entry paired with its parent is marked
// dead in place and its slot is reclaimed when it reaches the front.

type spanKey struct {
	trace [16]byte
	span  [8]byte
}

type link struct {
	self uint64 // entry ID of the span itself, 0 if none
	wait uint64 // entry ID of the first waiting server child, 0 if none
}

// Entry kinds.
const (
	entryClient uint8 = iota + 1
	entryServer
)

// Entry flags.
const (
	flagErr uint8 = 1 << iota
	flagPaired
	flagDead
	flagProv  // in the provisional summary (provisional.go)
	flagRetry // client: a retry (http.request.resend_count ≥ 1)
)

// entry is one piece of pairing state; it holds no pointers.
type entry struct {
	key    spanKey // client: its own ID; server: its parent's ID
	self   [8]byte // server: its own span ID (for exemplars); client: its parent's
	commit int64
	start  int64
	dur    int64
	next   uint64 // server: next server waiting for the same parent
	node   uint32
	name   uint32
	target uint32 // client: interned virtual-target name, 0 if none
	kind   uint8
	flags  uint8
}

// entryQueue is a FIFO of entries addressed by IDs that stay valid while
// the entry is queued: a ring buffer whose length is a power of two, where
// entry id lives at buf[id&mask]. IDs start at 1 (0 means none).
type entryQueue struct {
	buf        []entry
	head, tail uint64 // queued IDs are [head, tail)
}

func newEntryQueue() entryQueue { return entryQueue{head: 1, tail: 1} }

func (q *entryQueue) len() int { return int(q.tail - q.head) }

func (q *entryQueue) push(e entry) uint64 {
	if q.len() == len(q.buf) {
		q.resize(max(1024, 2*len(q.buf)))
	}
	id := q.tail
	q.buf[id&uint64(len(q.buf)-1)] = e
	q.tail++
	return id
}

func (q *entryQueue) get(id uint64) *entry { return &q.buf[id&uint64(len(q.buf)-1)] }

func (q *entryQueue) front() (*entry, uint64) {
	if q.head == q.tail {
		return nil, 0
	}
	return q.get(q.head), q.head
}

func (q *entryQueue) pop() {
	*q.get(q.head) = entry{}
	q.head++
}

// resize moves the queued entries to a ring of n slots (a power of two,
// at least len).
func (q *entryQueue) resize(n int) {
	nb := make([]entry, n)
	for id := q.head; id < q.tail; id++ {
		nb[id&uint64(n-1)] = *q.get(id)
	}
	q.buf = nb
}

// shrink gives memory back after a burst: it halves the ring while it is
// at most a quarter full.
func (q *entryQueue) shrink() {
	n := len(q.buf)
	for n > 1024 && q.len()*4 <= n {
		n /= 2
	}
	if n < len(q.buf) {
		q.resize(n)
	}
}

// spanCtx is the part of a span that pairing needs.
type spanCtx struct {
	trace  [16]byte
	id     [8]byte
	parent [8]byte
	node   uint32
	name   uint32
	start  int64
	dur    int64
	err    bool
	retry  bool // a client span that is a retry
}

func (sc *spanCtx) flags() uint8 {
	var f uint8
	if sc.err {
		f |= flagErr
	}
	if sc.retry {
		f |= flagRetry
	}
	return f
}

func (a *Aggregator) live(e *entry) bool {
	return e.flags&flagDead == 0 && e.commit >= a.commit-a.pairWait
}

func (a *Aggregator) sameService(x, y uint32) bool {
	return x == y || a.in.nodes[x].Service == a.in.nodes[y].Service
}

func (a *Aggregator) push(e entry) uint64 {
	switch e.kind {
	case entryClient:
		a.st.PendingClients++
	case entryServer:
		a.st.PendingServers++
	}
	e.commit = a.commit
	return a.q.push(e)
}

// kill marks e dead (its slot stays queued until it reaches the front).
func (a *Aggregator) kill(e *entry) {
	switch e.kind {
	case entryClient:
		a.st.PendingClients--
		if e.flags&flagProv != 0 {
			a.dropProv(e)
		}
	case entryServer:
		a.st.PendingServers--
	}
	e.flags |= flagDead
}

// onClient handles a CLIENT or PRODUCER span (h: the hash of its key): it pairs with the server
// children already waiting for it, then stays as a pending half (for its
// virtual target and for children that come later).
func (a *Aggregator) onClient(sc *spanCtx, h uint64, s *otlpwire.Span, r *resInfo) {
	k := spanKey{trace: sc.trace, span: sc.id}
	i := a.slotFor(&k, h)
	l := a.slot(i)
	flags := sc.flags()
	if l.wait != 0 {
		var paired bool
		l.wait, paired = a.pairWaiting(l.wait, sc, true)
		if paired {
			flags |= flagPaired
		}
	}
	if !a.replaceSelf(&l.link) {
		a.removeIfEmpty(i)
		return
	}
	var target uint32
	if flags&flagPaired == 0 {
		target = a.virtualTarget(s, r)
	}
	l.self = a.push(entry{key: k, self: sc.parent, start: sc.start, dur: sc.dur, node: sc.node, name: sc.name,
		target: target, kind: entryClient, flags: flags})
}

// onServer handles the parent side of a SERVER or CONSUMER span with a
// parent (h, ph: the link and parent-table hashes of the parent's key): a live client parent makes a call edge with the client's
// duration; a live non-client parent in another service makes an edge
// with the server's duration; otherwise the span waits for its parent.
func (a *Aggregator) onServer(sc *spanCtx, h, ph uint64) {
	k := spanKey{trace: sc.trace, span: sc.parent}
	if i := a.findSlot(&k); i != noSlot {
		if l := a.slot(i); l.self != 0 {
			if p := a.q.get(l.self); a.live(p) {
				if p.flags&flagProv != 0 {
					a.dropProv(p)
				}
				p.flags |= flagPaired
				a.pairCall(p.node, sc.node, p.name, p.start, p.dur, p.flags&flagErr != 0 || sc.err, p.flags&flagRetry != 0, sc.trace, k.span, p.self)
				return
			}
		}
	}
	if node, ok := a.parents.lookup(ph, &k, a.commit-a.pairWait); ok {
		if !a.sameService(node, sc.node) {
			a.pairEdge(node, sc.node, sc.name, sc.start, sc.dur, sc.err, false, sc.trace, sc.id)
		}
		return
	}
	a.makeRoom(1)
	i := a.slotFor(&k, h)
	l := a.slot(i)
	id := a.push(entry{key: k, self: sc.id, start: sc.start, dur: sc.dur, node: sc.node, name: sc.name,
		kind: entryServer, flags: sc.flags()})
	if l.wait == 0 {
		l.wait = id
		return
	}
	e := a.q.get(l.wait)
	for e.next != 0 {
		e = a.q.get(e.next)
	}
	e.next = id
}

// onParent pairs a non-client span (h: the parent-table hash of its key) with the
// server children that wait for it in other services, then remembers it
// in the parent table for the children to come.
func (a *Aggregator) onParent(sc *spanCtx, h uint64) {
	k := spanKey{trace: sc.trace, span: sc.id}
	// Without waiting servers there is nothing to find (telemetrygen-like
	// loads, whose servers are roots, never have any).
	if a.st.PendingServers == 0 {
		a.parents.insert(h, &k, sc.node, a.commit)
		return
	}
	if i := a.findSlot(&k); i != noSlot {
		if l := a.slot(i); l.wait != 0 {
			l.wait, _ = a.pairWaiting(l.wait, sc, false)
			a.removeIfEmpty(i)
		}
	}
	a.parents.insert(h, &k, sc.node, a.commit)
}

// replaceSelf makes room for a new span with the ID of l: it reports false
// if a live span with that ID is held (a duplicate: the first is kept), and
// otherwise resolves a stale one.
func (a *Aggregator) replaceSelf(l *link) bool {
	if l.self == 0 {
		return true
	}
	e := a.q.get(l.self)
	if a.live(e) {
		return false
	}
	if e.flags&flagDead == 0 {
		a.resolve(e)
		a.kill(e)
	}
	l.self = 0
	return true
}

// pairWaiting pairs the span sc (a client when client is set, else a
// non-client parent) with the live servers of the chain starting at head,
// and returns the new head (the stale servers, which precede the live
// ones) and whether any server paired.
func (a *Aggregator) pairWaiting(head uint64, sc *spanCtx, client bool) (uint64, bool) {
	var prev *entry
	id := head
	for id != 0 {
		e := a.q.get(id)
		if a.live(e) {
			break
		}
		prev, id = e, e.next
	}
	if id == 0 {
		return head, false
	}
	if prev == nil {
		head = 0
	} else {
		prev.next = 0
	}
	paired := false
	for id != 0 {
		e := a.q.get(id)
		id, e.next = e.next, 0
		switch {
		case client:
			a.pairCall(sc.node, e.node, sc.name, sc.start, sc.dur, sc.err || e.flags&flagErr != 0, sc.retry, sc.trace, sc.id, sc.parent)
			paired = true
		case !a.sameService(sc.node, e.node):
			a.pairEdge(sc.node, e.node, e.name, e.start, e.dur, e.flags&flagErr != 0, false, sc.trace, e.self)
		}
		a.kill(e)
	}
	return head, paired
}

// pairCall records the call of client span (trace, span) with parent
// span parent, paired with its server half: pairEdge, a retry also when it
// repeats a failed sibling call (siblingRetry, judged while rebuilding
// too).
func (a *Aggregator) pairCall(src, dst, name uint32, start, dur int64, isErr, retry bool, trace [16]byte, span, parent [8]byte) {
	if a.siblingRetry(trace, parent, dst, name, start, start+max(dur, 0), isErr) {
		retry = true
	}
	a.pairEdge(src, dst, name, start, dur, isErr, retry, trace, span)
}

func (a *Aggregator) pairEdge(src, dst, name uint32, start, dur int64, isErr, retry bool, trace [16]byte, span [8]byte) {
	if a.rebuilding {
		return
	}
	a.st.PairedEdges++
	a.recordEdge(src, dst, name, start, dur, isErr, retry, Exemplar{TraceID: trace, SpanID: span})
}

// resolve settles an entry that leaves the state unpaired (expired,
// evicted or replaced by a later span with its ID); while rebuilding it
// only keeps the retry state (siblingRetry).
func (a *Aggregator) resolve(e *entry) {
	var retry bool
	var dst uint32
	if e.kind == entryClient && e.flags&flagPaired == 0 && e.target != 0 {
		dst = a.in.virtualNode(e.target)
		retry = a.siblingRetry(e.key.trace, e.self, dst, e.name, e.start, e.start+max(e.dur, 0), e.flags&flagErr != 0)
	}
	if a.rebuilding {
		return
	}
	switch e.kind {
	case entryClient:
		switch {
		case e.flags&flagPaired != 0:
		case e.target != 0:
			a.st.VirtualEdges++
			a.recordEdge(e.node, dst, e.name, e.start, e.dur, e.flags&flagErr != 0, retry || e.flags&flagRetry != 0,
				Exemplar{TraceID: e.key.trace, SpanID: e.key.span})
		default:
			a.st.UnpairedClients++
		}
	case entryServer:
		a.st.UnpairedServers++
	}
}

// popFront removes the front entry e (ID id), resolving it if live.
func (a *Aggregator) popFront(e *entry, id uint64) {
	if e.flags&flagDead == 0 {
		a.resolve(e)
		a.unlink(e, id)
		a.kill(e)
	}
	a.q.pop()
}

// unlink removes the live entry e (ID id) from its link.
func (a *Aggregator) unlink(e *entry, id uint64) {
	i := a.findSlot(&e.key)
	if i == noSlot {
		return
	}
	l := a.slot(i)
	if e.kind != entryServer {
		if l.self == id {
			l.self = 0
		}
	} else if l.wait == id {
		l.wait = e.next
	} else {
		for p := l.wait; p != 0; {
			pe := a.q.get(p)
			if pe.next == id {
				pe.next = e.next
				break
			}
			p = pe.next
		}
	}
	e.next = 0
	a.removeIfEmpty(i)
}

// makeRoom evicts the oldest commit batches until n more entries fit in
// MaxPending. Whole batches go, so that a checkpoint never holds part of
// one (see the package documentation).
func (a *Aggregator) makeRoom(n int) {
	for a.q.len()+n > a.opts.MaxPending {
		a.touchFront(touchBlock)
		e, id := a.q.front()
		if e == nil {
			return
		}
		c := e.commit
		for n := 1; e != nil && e.commit == c; n++ {
			if n%touchBlock == 0 {
				a.touchFront(touchBlock)
			}
			if e.flags&flagDead == 0 {
				a.st.Evicted++
			}
			a.popFront(e, id)
			e, id = a.q.front()
		}
	}
}
