package aggregate

import (
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/flowscope/flowscope/otlpwire"
)

// OTLP span kinds.
const (
	kindUnspecified = 0
	kindInternal    = 1
	kindServer      = 2
	kindClient      = 3
	kindProducer    = 4
	kindConsumer    = 5
)

// unknownService is the service of a resource without service.name, as the
// OpenTelemetry SDKs name it.
var unknownService = []byte("unknown_service")

// Checkpoint is what Flush hands to the store: the window deltas since the
// previous Flush and the state needed to rebuild the pairing state after a
// crash (see the package documentation, "Replay protocol").
type Checkpoint struct {
	// Windows are the deltas since the last Flush, sorted by Start. The
	// caller owns them.
	Windows []*Window
	// AppliedSeq is the last chunk sequence number given to Apply (or to
	// EndRebuild); its contributions are all in Windows or earlier deltas.
	AppliedSeq uint64
	// ExpiredBefore is the commit time (Unix ns) before which every piece
	// of pairing state is resolved: at least the latest nowNs-PairWait given
	// to Expire, and the commit time of the oldest state still held when
	// that is later. Pass it to EndRebuild.
	ExpiredBefore int64
	// ReplayFrom is the first chunk to replay (through Rebuild up to
	// AppliedSeq) after a crash: the first chunk committed at most
	// PairWait before the oldest state still held, before ExpiredBefore
	// and before the last applied chunk, or AppliedSeq+1 when there is
	// none.
	ReplayFrom uint64
}

// Stats are the aggregator's self-metrics: gauges of the pairing state and
// counters since New.
type Stats struct {
	PendingClients    int64 // gauge: client halves held (paired ones wait for fan-out siblings)
	PendingServers    int64 // gauge: server halves waiting for their parent
	RememberedParents int64 // gauge: non-client spans remembered as parents, still live
	UnpairedClients   int64 // client halves expired without a server nor a virtual-target name
	UnpairedServers   int64 // server halves expired (or evicted) without their parent
	VirtualEdges      int64 // calls recorded to a virtual node
	PairedEdges       int64 // calls recorded from a pair of spans
	Evicted           int64 // halves evicted over MaxPending
	Clamped           int64 // durations above MaxValue, recorded as MaxValue
}

// Aggregator rolls parsed spans up into windows of per-series and per-edge
// rollups, pairing client and server spans into call edges.
//
// All methods are safe for concurrent use (one mutex guards the state).
// Apply, Rebuild, EndRebuild, Expire and Flush are meant to be called from
// one goroutine in the order of the replay protocol; Open and Stats may be
// called from any goroutine at any time.
type Aggregator struct {
	mu sync.Mutex

	recentSeries [4]recentSeries
	recentNext   uint8

	opts     Options
	geom     Geometry
	widthNs  int64
	widthSec int64
	pairWait int64

	in         interner
	res        []resInfo
	unknownRes resInfo
	svcBuf     []byte // scratch of ServiceName for synthetic resources

	windows map[int64]*openWindow
	last    *openWindow

	q       entryQueue
	links   linkTable
	parents parentTable
	// sibs and sibOrder remember failed calls for siblingRetry.
	sibs     map[siblingKey]siblingVal
	sibOrder []siblingAt
	// scratch of touchSpans and touchFront
	spanHashes, parentHashes, frontHashes, touchHashes []uint64
	commit                                             int64 // commit time of the chunk being applied
	lastCommit                                         int64
	rebuilding                                         bool

	applied   uint64
	watermark int64
	expireNow int64      // the latest nowNs given to Expire (0 after a crash)
	chunks    []chunkRec // (seq, commit) of recent chunks, commit ascending
	chunkHead int

	// provisional calls (provisional.go)
	prov     map[provKey]*provSum
	provSeen uint64 // entries queued before this ID were scanned
	provMag  int    // subBucketMagnitude of the geometry
	provMax  int64  // the histograms' highest trackable value

	st Stats
}

type chunkRec struct {
	seq    uint64
	commit int64
}

// resInfo is what a resource contributes to its spans.
type resInfo struct {
	node     uint32
	virtPrio int
	virt     []byte // aliases the request; valid during one Apply
}

type openWindow struct {
	start  int64
	series map[seriesID]*Rollup
	edges  map[edgeID]*Rollup
}

// recentSeries caches a recently recorded series rollup of an open window.
type recentSeries struct {
	ow *openWindow
	k  seriesID
	r  *Rollup
}

// series returns the rollup of series k in ow, creating it. The last few
// are cached: spans of a request mostly fall into a handful of series, and
// a hit saves a map lookup. Flush empties the cache with the windows.
func (a *Aggregator) series(ow *openWindow, k seriesID) *Rollup {
	for i := range a.recentSeries {
		if c := &a.recentSeries[i]; c.ow == ow && c.k == k {
			return c.r
		}
	}
	r := ow.series[k]
	if r == nil {
		r = a.geom.NewRollup()
		ow.series[k] = r
	}
	a.recentSeries[a.recentNext&3] = recentSeries{ow: ow, k: k, r: r}
	a.recentNext++
	return r
}

type seriesID struct {
	node, name   uint32
	kind, status int32
}

type edgeID struct {
	src, dst, name uint32
}

// New returns an aggregator. Zero or invalid fields of opts take their
// defaults; call opts.Validate first to reject invalid ones.
func New(opts Options) *Aggregator {
	opts = opts.normalized()
	return &Aggregator{
		opts:     opts,
		geom:     opts.Geometry(),
		widthNs:  int64(opts.WindowWidth),
		widthSec: int64(opts.WindowWidth.Seconds()),
		pairWait: int64(opts.PairWait),
		in:       newInterner(),
		windows:  map[int64]*openWindow{},
		q:        newEntryQueue(),
		links:    newLinkTable(),
		parents:  newParentTable(opts.MaxPending, opts.ParentSlots),
		sibs:     map[siblingKey]siblingVal{},
		prov:     map[provKey]*provSum{},
		provMag:  subBucketMagnitude(opts.Geometry().normalized().Digits),
		provMax:  opts.Geometry().NewRollup().Hist.HighestTrackableValue(),
	}
}

// Geometry returns the geometry of the rollups a makes.
func (a *Aggregator) Geometry() Geometry { return a.geom }

// Apply aggregates the valid spans of chunk seq, committed at commitNs
// (Unix ns): it records every span in its series, pairs client and server
// halves into edges, and keeps unpaired halves for later. Chunks must come
// in sequence order, each once. t is only read during the call.
func (a *Aggregator) Apply(seq uint64, commitNs int64, t *otlpwire.Traces) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apply(seq, commitNs, t, false)
}

// Rebuild replays chunk seq after a crash: it rebuilds the pairing state
// exactly as Apply did, but records nothing (no series, no edges, no
// counters), since those contributions were flushed before the crash. Call
// it for the chunks ReplayFrom..AppliedSeq of the last checkpoint, in
// order, on a new Aggregator, then EndRebuild.
func (a *Aggregator) Rebuild(seq uint64, commitNs int64, t *otlpwire.Traces) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.apply(seq, commitNs, t, true)
}

// EndRebuild ends a replay: it drops the rebuilt state committed before
// expiredBefore (it was resolved before the checkpoint) and sets the last
// applied chunk. Pass the checkpoint's ExpiredBefore and AppliedSeq.
func (a *Aggregator) EndRebuild(expiredBefore int64, appliedSeq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rebuilding = true // drop silently
	for {
		e, id := a.q.front()
		if e == nil || (e.flags&flagDead == 0 && e.commit >= expiredBefore) {
			break
		}
		a.popFront(e, id)
	}
	a.rebuilding = false
	a.watermark = max(a.watermark, expiredBefore)
	a.applied = appliedSeq
}

func (a *Aggregator) apply(seq uint64, commitNs int64, t *otlpwire.Traces, rebuild bool) {
	a.rebuilding = rebuild
	defer func() { a.rebuilding = false }()
	// Commit times are taken as non-decreasing, so that the pairing state
	// is ordered by commit time.
	commitNs = max(commitNs, a.lastCommit)
	a.lastCommit, a.commit = commitNs, commitNs
	a.noteChunk(seq, commitNs)
	a.applied = seq
	if t == nil {
		return
	}
	a.prepareResources(t)
	defer clear(a.res)
	for i := range t.Spans {
		if i%touchBlock == 0 {
			a.touchSpans(t.Spans[i:min(i+touchBlock, len(t.Spans))])
		}
		s := &t.Spans[i]
		if s.Invalid != "" {
			continue
		}
		hs := a.spanHashes[2*(i%touchBlock):]
		ps := a.parentHashes[2*(i%touchBlock):]
		r := &a.unknownRes
		if s.Scope >= 0 && s.Scope < len(t.Scopes) {
			if ri := t.Scopes[s.Scope].Resource; ri >= 0 && ri < len(a.res) {
				r = &a.res[ri]
			}
		}
		sc := spanCtx{
			trace:  s.TraceID,
			id:     s.SpanID,
			parent: s.ParentID,
			node:   r.node,
			name:   a.in.str(s.Name),
			start:  clampInt64(s.Start),
			dur:    clampInt64(s.End - s.Start),
			err:    s.Status == otlpwire.StatusError,
		}
		if s.End == s.Start && durationUnknown(s) {
			sc.dur = durUnknown
		}
		if !rebuild {
			ow := a.window(sc.start)
			k := seriesID{node: sc.node, name: sc.name, kind: s.Kind, status: s.Status}
			ro := a.series(ow, k)
			c := ro.Clamped
			if sc.dur == durUnknown {
				ro.RecordUntimed(sc.err)
			} else {
				ro.Record(sc.dur, sc.err, Exemplar{TraceID: sc.trace, SpanID: sc.id, Time: sc.start})
			}
			a.st.Clamped += ro.Clamped - c
		}
		hSelf, hParent := hs[0], hs[1]
		switch s.Kind {
		case kindClient, kindProducer:
			sc.retry = isRetry(s)
			a.makeRoom(1)
			a.onClient(&sc, hSelf, s, r)
		case kindServer, kindConsumer:
			if s.HasParent() {
				a.onServer(&sc, hParent, ps[1])
			}
			a.onParent(&sc, ps[0])
		default:
			a.onParent(&sc, ps[0])
		}
	}
}

// ResendCountAttr is OpenTelemetry's attribute of an HTTP client span
// that is a resend of a request: its ordinal, 1 for the first retry
// (semantic conventions, http.request.resend_count).
const ResendCountAttr = "http.request.resend_count"

// isRetry reports whether client span s is a retry: ResendCountAttr ≥ 1.
func isRetry(s *otlpwire.Span) bool {
	for i := range s.Attrs {
		if string(s.Attrs[i].Key) == ResendCountAttr {
			v := s.Attrs[i].Value
			return len(v) > 0 && v[0] >= '1' && v[0] <= '9' // a positive integer
		}
	}
	return false
}

// DurationUnknownAttr is the boolean span attribute that marks a span whose
// end is unknown (its end equals its start): the Zipkin receiver sets it on
// a client half without cr or a server half without ss. Such a span counts
// as a call of its series and edge but its duration is not recorded
// (Rollup.RecordUntimed).
const DurationUnknownAttr = "flowscope.duration_unknown"

// durUnknown is the duration of a span marked with DurationUnknownAttr.
const durUnknown = math.MinInt64

// durationUnknown reports whether s carries DurationUnknownAttr = true.
func durationUnknown(s *otlpwire.Span) bool {
	for i := range s.Attrs {
		if string(s.Attrs[i].Key) == DurationUnknownAttr {
			return string(s.Attrs[i].Value) == "true"
		}
	}
	return false
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// prepareResources computes the node and virtual-target candidate of every
// resource of t, once per request.
func (a *Aggregator) prepareResources(t *otlpwire.Traces) {
	a.res = a.res[:0]
	for i := range t.Resources {
		r := &t.Resources[i]
		var inst, zone, region, ns, vt []byte
		vp := noVirtual
		for _, at := range r.Attrs {
			switch string(at.Key) {
			case "service.instance.id":
				inst = at.Value
			case "cloud.availability_zone":
				zone = at.Value
			case "cloud.region":
				region = at.Value
			case "service.namespace":
				ns = at.Value
			default:
				if p := virtualPriority(at.Key); p < vp && len(at.Value) > 0 {
					vp, vt = p, at.Value
				}
			}
		}
		var svc []byte
		svc, a.svcBuf = ServiceName(a.svcBuf[:0], r)
		a.res = append(a.res, resInfo{node: a.in.node(svc, inst, zone, region, ns), virtPrio: vp, virt: vt})
	}
	a.unknownRes = resInfo{node: a.in.node(unknownService, nil, nil, nil, nil), virtPrio: noVirtual}
}

// noVirtual is the priority of "no virtual-target attribute".
const noVirtual = 6

// virtualPriority ranks the attributes that name an uninstrumented callee
// (DESIGN.md "Flow graph shape"); noVirtual for other keys.
func virtualPriority(key []byte) int {
	switch string(key) {
	case "peer.service":
		return 0
	case "db.namespace":
		return 1
	case "db.name":
		return 2
	case "db.system":
		return 3
	case "messaging.destination.name":
		return 4
	case "server.address":
		return 5
	}
	return noVirtual
}

// virtualTarget returns the interned virtual-target name of client span s
// (0 if none): the highest-priority key present, looked up on the span
// first and then on its resource.
func (a *Aggregator) virtualTarget(s *otlpwire.Span, r *resInfo) uint32 {
	sp, sv := noVirtual, []byte(nil)
	for _, at := range s.Attrs {
		if p := virtualPriority(at.Key); p < sp && len(at.Value) > 0 {
			sp, sv = p, at.Value
		}
	}
	switch {
	case sp != noVirtual && sp <= r.virtPrio:
		return a.in.str(sv)
	case r.virtPrio != noVirtual:
		return a.in.str(r.virt)
	}
	return 0
}

func (a *Aggregator) windowStart(startNs int64) int64 {
	return startNs / a.widthNs * a.widthSec
}

// window returns the open window holding a span that started at startNs.
func (a *Aggregator) window(startNs int64) *openWindow {
	ws := a.windowStart(startNs)
	if a.last != nil && a.last.start == ws {
		return a.last
	}
	ow := a.windows[ws]
	if ow == nil {
		ow = &openWindow{start: ws, series: map[seriesID]*Rollup{}, edges: map[edgeID]*Rollup{}}
		a.windows[ws] = ow
	}
	a.last = ow
	return ow
}

// recordEdge records one call src→dst, a retry if retry; nothing while
// rebuilding.
func (a *Aggregator) recordEdge(src, dst, name uint32, startNs, dur int64, isErr, retry bool, ex Exemplar) {
	if a.rebuilding {
		return
	}
	ow := a.window(startNs)
	k := edgeID{src: src, dst: dst, name: name}
	r := ow.edges[k]
	if r == nil {
		r = a.geom.NewRollup()
		ow.edges[k] = r
	}
	if retry {
		r.Retried++
	}
	if dur == durUnknown {
		r.RecordUntimed(isErr)
		return
	}
	c := r.Clamped
	ex.Time = startNs
	r.Record(dur, isErr, ex)
	a.st.Clamped += r.Clamped - c
}

// Expire resolves the pairing state committed before nowNs-PairWait: a
// client half becomes a call to its virtual node, or is counted in
// UnpairedClients when it names none; a server half is counted in
// UnpairedServers; a remembered parent is forgotten.
//
// For crash replay to be exact, nowNs must not exceed the commit time of a
// chunk given to Apply afterwards (see the package documentation).
func (a *Aggregator) Expire(nowNs int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.watermark = max(a.watermark, nowNs-a.pairWait)
	a.expireNow = max(a.expireNow, nowNs)
	a.expireSiblings()
	for n := 0; ; n++ {
		if n%touchBlock == 0 {
			a.touchFront(touchBlock)
		}
		e, id := a.q.front()
		if e == nil || (e.flags&flagDead == 0 && e.commit >= a.watermark) {
			return
		}
		a.popFront(e, id)
	}
}

// Flush returns the window deltas since the previous Flush (resetting
// them) and the replay checkpoint that goes with them. The store persists
// both atomically.
func (a *Aggregator) Flush() Checkpoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	cp := Checkpoint{AppliedSeq: a.applied, Windows: make([]*Window, 0, len(a.windows))}
	for _, ow := range a.windows {
		cp.Windows = append(cp.Windows, a.export(ow, false))
	}
	slices.SortFunc(cp.Windows, func(x, y *Window) int { return int(sign(x.Start - y.Start)) })
	clear(a.windows)
	a.last = nil
	a.recentSeries = [4]recentSeries{}

	for {
		e, id := a.q.front()
		if e == nil || e.flags&flagDead == 0 {
			break
		}
		a.popFront(e, id)
	}
	// Replay must rebuild the queued state (from PairWait before the
	// oldest entry, for the spans that met it) and the parents that a
	// later lookup can accept: those committed at or after c-PairWait for
	// a span committed at c ≥ min(lastCommit, ExpiredBefore) — the spans
	// applied after the crash, and the rebuilt ones that EndRebuild keeps.
	// Spans applied after the crash are committed at or after
	// max(lastCommit, expireNow); rebuilt spans that EndRebuild keeps, at
	// or after ExpiredBefore when that is not after lastCommit.
	floor := max(a.lastCommit, a.expireNow)
	if e, _ := a.q.front(); e != nil {
		cp.ExpiredBefore = max(e.commit, a.watermark)
		floor = min(floor, e.commit)
	} else {
		cp.ExpiredBefore = a.watermark
	}
	if cp.ExpiredBefore <= a.lastCommit {
		floor = min(floor, cp.ExpiredBefore)
	}
	cp.ReplayFrom = a.replayFrom(floor - a.pairWait)
	if a.in.needsCompaction() {
		a.compactTables()
	}
	a.q.shrink()
	a.shrinkLinks()
	return cp
}

func sign(x int64) int64 {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func (a *Aggregator) noteChunk(seq uint64, commit int64) {
	if a.chunkHead > 1024 && a.chunkHead*2 > len(a.chunks) {
		n := copy(a.chunks, a.chunks[a.chunkHead:])
		a.chunks = a.chunks[:n]
		a.chunkHead = 0
	}
	a.chunks = append(a.chunks, chunkRec{seq: seq, commit: commit})
}

// pruneChunks forgets the chunks committed before minCommit.
func (a *Aggregator) pruneChunks(minCommit int64) {
	recs := a.chunks[a.chunkHead:]
	a.chunkHead += sort.Search(len(recs), func(i int) bool { return recs[i].commit >= minCommit })
}

// replayFrom returns the first chunk committed at or after minCommit, and
// forgets the ones before.
func (a *Aggregator) replayFrom(minCommit int64) uint64 {
	a.pruneChunks(minCommit)
	if a.chunkHead < len(a.chunks) {
		return a.chunks[a.chunkHead].seq
	}
	return a.applied + 1
}

// compactTables rebuilds the intern tables with the entries still
// referenced. It runs when no window is open (right after Flush).
func (a *Aggregator) compactTables() {
	a.recentSeries = [4]recentSeries{} // keyed by the old indices
	m := a.in.beginCompaction()
	for id := a.q.head; id < a.q.tail; id++ {
		e := a.q.get(id)
		if e.flags&flagDead != 0 {
			continue
		}
		e.node = m.node(e.node)
		e.name = m.str(e.name)
		e.target = m.str(e.target)
	}
	a.parents.compact(a.lastCommit-a.pairWait, m)
	a.remapProv(m)
	m.end()
}

// Open returns deep copies of the unflushed window deltas that overlap
// [from, to) (Unix seconds). The caller owns them.
func (a *Aggregator) Open(from, to int64) []*Window {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.open(from, to)
}

func (a *Aggregator) open(from, to int64) []*Window {
	var out []*Window
	for _, ow := range a.windows {
		if ow.start < to && ow.start+a.widthSec > from {
			out = append(out, a.export(ow, true))
		}
	}
	slices.SortFunc(out, func(x, y *Window) int { return int(sign(x.Start - y.Start)) })
	return out
}

// export converts an open window to a Window, cloning the rollups if asked
// (otherwise the Window takes them over).
func (a *Aggregator) export(ow *openWindow, clone bool) *Window {
	w := &Window{Start: ow.start, Width: a.widthSec,
		Series: make(map[SeriesKey]*Rollup, len(ow.series)), Edges: make(map[EdgeKey]*Rollup, len(ow.edges))}
	for k, r := range ow.series {
		if clone {
			r = r.Clone()
		}
		w.Series[SeriesKey{Node: a.in.nodes[k.node], Operation: a.in.strs[k.name], Kind: k.kind, Status: k.status}] = r
	}
	for k, r := range ow.edges {
		if clone {
			r = r.Clone()
		}
		w.Edges[EdgeKey{Source: a.in.nodes[k.src], Target: a.in.nodes[k.dst], Operation: a.in.strs[k.name]}] = r
	}
	return w
}

// Stats returns the current gauges and counters.
func (a *Aggregator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.st
	st.RememberedParents = a.parents.live(max(a.lastCommit, a.expireNow) - a.pairWait)
	return st
}
