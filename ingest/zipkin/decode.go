package zipkin

import (
	"fmt"
	"strings"

	"github.com/flowscope/flowscope/ingest/spigo"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Attribute keys and names this package writes.
const (
	// AttrDurationUnknown marks (with bool true) an OTLP span whose end is
	// unknown: its end time equals its start time and is not a duration.
	AttrDurationUnknown = "flowscope.duration_unknown"
	// ScopeName is the instrumentation scope name of converted spans.
	ScopeName = "zipkin"
)

// Bounds of the buffer of Decode, in multiples of the batch size.
const (
	// bigTraceFactor: a trace whose spans reach this many batches is
	// emitted without waiting for its end.
	bigTraceFactor = 4
	// itemFactor: the buffer is emitted when its annotations, binary
	// annotations and tags reach this many times the batch size.
	itemFactor = 64
	// maxInterned and maxInternLen bound the interned strings.
	maxInterned  = 1 << 16
	maxInternLen = 256
	// maxResources bounds the cache of resources by service name.
	maxResources = 1 << 12
	// linearLimit: traces with at most this many spans are searched
	// linearly, larger ones through a map.
	linearLimit = 16
)

var (
	durationUnknownAttr = &commonpb.KeyValue{Key: AttrDurationUnknown,
		Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}
	zipkinScope = &commonpb.InstrumentationScope{Name: ScopeName}
)

// traceBuf holds the buffered span objects of one trace.
type traceBuf struct {
	id     [16]byte
	v1     []*v1Span
	v2     []*v2Span
	byID   map[[8]byte]int   // v1 span ID → index, past linearLimit spans
	shared map[[8]byte][]int // v2 shared server ID → indexes, past linearLimit spans
	weight int               // planned OTLP spans
	items  int               // annotations, binary annotations and tags
}

func (tb *traceBuf) findV1(id [8]byte) int {
	if tb.byID != nil {
		if j, ok := tb.byID[id]; ok {
			return j
		}
		return -1
	}
	for j, sp := range tb.v1 {
		if sp.id == id {
			return j
		}
	}
	return -1
}

func (tb *traceBuf) addV1(sp *v1Span) {
	tb.v1 = append(tb.v1, sp)
	switch {
	case tb.byID != nil:
		tb.byID[sp.id] = len(tb.v1) - 1
	case len(tb.v1) > linearLimit:
		tb.byID = make(map[[8]byte]int, 2*len(tb.v1))
		for j, s := range tb.v1 {
			tb.byID[s.id] = j
		}
	}
}

func (tb *traceBuf) addV2(sp *v2Span) {
	tb.v2 = append(tb.v2, sp)
	switch {
	case tb.shared != nil:
		if sp.isSharedServer() {
			tb.shared[sp.id] = append(tb.shared[sp.id], len(tb.v2)-1)
		}
	case len(tb.v2) > linearLimit:
		tb.shared = make(map[[8]byte][]int)
		for j, s := range tb.v2 {
			if s.isSharedServer() {
				tb.shared[s.id] = append(tb.shared[s.id], j)
			}
		}
	}
}

// sharedV2 returns the indexes of the shared server spans with ID id.
func (tb *traceBuf) sharedV2(id [8]byte) []int {
	if tb.shared != nil {
		return tb.shared[id]
	}
	var out []int
	for j, s := range tb.v2 {
		if s.id == id && s.isSharedServer() {
			out = append(out, j)
		}
	}
	return out
}

// resource is an OTLP resource built from an endpoint service name.
type resource struct {
	key string // canonical form of the attributes: equal keys, equal resources
	pb  *resourcepb.Resource
}

// outSpan is a converted span and its resource.
type outSpan struct {
	res  *resource
	span *tracepb.Span
}

// decoder converts one input. It is not safe for concurrent use.
type decoder struct {
	v       Version
	s       *scanner
	batch   int  // most OTLP spans per request
	bounded bool // emit batches while reading (Decode), or all at the end
	mem     *idMemory
	seen    traceSet
	emit    func(req []byte, spans int) error
	stats   Stats

	// The buffer: traces in order of first appearance.
	traces  []*traceBuf
	byTrace map[[16]byte]*traceBuf
	weight  int // planned OTLP spans in the buffer
	items   int
	last    [16]byte // trace ID of the previous object
	hasLast bool

	freeTraces []*traceBuf
	freeV1     []*v1Span
	freeV2     []*v2Span

	strs      map[string]string    // interned strings
	resources map[string]*resource // by service name
	resByKey  map[string]*resource // by attribute set

	// Conversion scratch.
	plan          []halfPlan
	roles         []int8
	tooManyHalves bool
	attrIdx       map[string]int
	ids           [][8]byte
	out           []outSpan
	memKeys       []spanKey
	memVals       []memEntry
	idSlab        []byte
	spanSlab      []tracepb.Span
	spanPtrs      []*tracepb.Span
	groups        map[string]*tracepb.ScopeSpans
	marshal       []byte
	fresh         bool // marshal every request into a new slice
}

func newDecoder(v Version, batch int, bounded bool, mem *idMemory, keepTraces int) *decoder {
	return &decoder{
		v: v, batch: batch, bounded: bounded, mem: mem, seen: traceSet{size: keepTraces},
		byTrace:   make(map[[16]byte]*traceBuf),
		strs:      make(map[string]string),
		resources: make(map[string]*resource),
		resByKey:  make(map[string]*resource),
		groups:    make(map[string]*tracepb.ScopeSpans),
	}
}

// run decodes the whole input.
func (d *decoder) run() error {
	s := d.s
	c, err := s.skipWS()
	if err != nil {
		return d.emptyErr(err)
	}
	if c == 0xEF { // a UTF-8 byte order mark
		for _, want := range []byte{0xEF, 0xBB, 0xBF} {
			if b, err := s.nextByte(); err != nil || b != want {
				return &DecodeError{Version: d.v, Span: -1, Offset: 0, Msg: "want a JSON array of spans, got invalid bytes"}
			}
		}
		if c, err = s.skipWS(); err != nil {
			return d.emptyErr(err)
		}
	}
	if c != '[' {
		msg := "want a JSON array of spans, got " + describe(c)
		if c == '{' {
			msg += ` (a Zipkin body is an array: [{"traceId":…}, …])`
		}
		return &DecodeError{Version: d.v, Span: -1, Offset: s.offset(), Msg: msg}
	}
	s.pos++
	for i := 0; ; i++ {
		s.mark = s.offset()
		ok, err := s.nextElem(i == 0)
		if err != nil {
			if i > 0 {
				return d.wrapErr(err, -1, fmt.Sprintf(" after span %d", i-1))
			}
			return d.wrapErr(err, -1, "")
		}
		if !ok {
			break
		}
		off := s.offset()
		if c := s.cur(); c != '{' {
			return &DecodeError{Version: d.v, Span: i, Offset: off, Msg: "want a span object, got " + describe(c)}
		}
		if d.v == V1 {
			err = d.readV1(i, off)
		} else {
			err = d.readV2(i, off)
		}
		if err != nil {
			return err
		}
	}
	s.mark = -1
	if eof, err := s.atEOF(); err != nil {
		return d.wrapErr(err, -1, "")
	} else if !eof {
		return &DecodeError{Version: d.v, Span: -1, Offset: s.offset(),
			Msg: "want the end of input after the array of spans, got " + describe(s.cur())}
	}
	return d.flush(true)
}

// emptyErr is the error for an input without any value.
func (d *decoder) emptyErr(err error) error {
	if pe, ok := err.(*parseError); ok {
		return &DecodeError{Version: d.v, Span: -1, Offset: pe.off, Msg: "empty input: want a JSON array of spans"}
	}
	return d.wrapErr(err, -1, "")
}

// wrapErr turns a scanner error into a DecodeError of span span (with
// suffix appended to its message), or a read error into a wrapped one.
func (d *decoder) wrapErr(err error, span int, suffix string) error {
	switch e := err.(type) {
	case *parseError:
		return &DecodeError{Version: d.v, Span: span, Offset: e.off, Field: e.path, Msg: e.msg + suffix}
	case *readError:
		return fmt.Errorf("%v: %w", d.v, e)
	}
	return err
}

// spanErr is a DecodeError about a whole span object.
func (d *decoder) spanErr(index int, off int64, msg string) error {
	return &DecodeError{Version: d.v, Span: index, Offset: off, Msg: msg}
}

// readV1 parses a v1 span object and adds it to the buffer.
func (d *decoder) readV1(index int, off int64) error {
	var sp *v1Span
	if n := len(d.freeV1); n > 0 {
		sp, d.freeV1 = d.freeV1[n-1], d.freeV1[:n-1]
	} else {
		sp = new(v1Span)
	}
	sp.index, sp.off = index, off
	if err := d.parseV1(sp); err != nil {
		d.recycleV1(sp)
		return d.wrapErr(err, index, "")
	}
	d.stats.Objects++
	if err := d.boundary(sp.traceID); err != nil {
		return err
	}
	tb := d.traceBuf(sp.traceID)
	items := len(sp.anns) + len(sp.bins)
	if j := tb.findV1(sp.id); j >= 0 {
		old := tb.v1[j]
		if err := d.mergeV1(old, sp); err != nil {
			d.recycleV1(sp)
			return d.wrapErr(err, index, "")
		}
		d.stats.Merged++
		d.recycleV1(sp)
		d.weight -= old.halves
		tb.weight -= old.halves
		sp = old
	} else {
		tb.addV1(sp)
		d.stats.Spans++
	}
	halves, ok := d.planSpanV1(sp)
	if !ok {
		return d.spanErr(index, off, fmt.Sprintf("more than %d cs, sr, ms and mr annotations in one span", maxHalves))
	}
	sp.halves = halves
	d.weight += sp.halves
	tb.weight += sp.halves
	d.items += items
	tb.items += items
	return d.overflow()
}

// readV2 parses a v2 span object and adds it to the buffer.
func (d *decoder) readV2(index int, off int64) error {
	var sp *v2Span
	if n := len(d.freeV2); n > 0 {
		sp, d.freeV2 = d.freeV2[n-1], d.freeV2[:n-1]
	} else {
		sp = new(v2Span)
	}
	sp.index, sp.off = index, off
	if err := d.parseV2(sp); err != nil {
		d.recycleV2(sp)
		return d.wrapErr(err, index, "")
	}
	d.stats.Objects++
	d.stats.Spans++
	if err := d.boundary(sp.traceID); err != nil {
		return err
	}
	tb := d.traceBuf(sp.traceID)
	tb.addV2(sp)
	items := len(sp.anns) + len(sp.tags)
	d.weight++
	tb.weight++
	d.items += items
	tb.items += items
	return d.overflow()
}

// boundary emits full batches when an object of another trace than the
// previous object's arrives and the buffer holds a batch.
func (d *decoder) boundary(trace [16]byte) error {
	var err error
	if d.bounded && d.hasLast && trace != d.last && d.weight >= d.batch {
		err = d.flush(false)
	}
	d.last, d.hasLast = trace, true
	return err
}

// overflow emits the whole buffer when one trace made it too large.
func (d *decoder) overflow() error {
	if d.bounded && (d.weight >= bigTraceFactor*d.batch || d.items >= itemFactor*d.batch) {
		return d.flush(true)
	}
	return nil
}

// traceBuf returns the buffer of trace id, creating it.
func (d *decoder) traceBuf(id [16]byte) *traceBuf {
	if tb := d.byTrace[id]; tb != nil {
		return tb
	}
	var tb *traceBuf
	if n := len(d.freeTraces); n > 0 {
		tb, d.freeTraces = d.freeTraces[n-1], d.freeTraces[:n-1]
	} else {
		tb = new(traceBuf)
	}
	tb.id = id
	d.byTrace[id] = tb
	d.traces = append(d.traces, tb)
	if d.seen.add(id) {
		d.stats.Traces++
	}
	return tb
}

func (d *decoder) recycleV1(sp *v1Span) {
	sp.reset()
	d.freeV1 = append(d.freeV1, sp)
}

func (d *decoder) recycleV2(sp *v2Span) {
	sp.reset()
	d.freeV2 = append(d.freeV2, sp)
}

// flush converts and emits buffered traces: all of them, or (all false)
// batches of whole traces as long as the buffer holds at least a batch.
// Traces are packed in order into requests of at most d.batch spans; a
// trace larger than a batch is split over several requests.
func (d *decoder) flush(all bool) error {
	done := 0
	for done < len(d.traces) {
		if !all && d.weight < d.batch {
			break
		}
		n, k := 0, done
		for k < len(d.traces) && n+d.traces[k].weight <= d.batch {
			n += d.traces[k].weight
			k++
		}
		if k == done {
			k++ // one trace larger than a batch
		}
		if err := d.convertAndEmit(d.traces[done:k]); err != nil {
			return err
		}
		for _, tb := range d.traces[done:k] {
			d.weight -= tb.weight
			d.items -= tb.items
			d.release(tb)
		}
		done = k
	}
	d.traces = append(d.traces[:0], d.traces[done:]...)
	return nil
}

// release returns a converted trace's buffers to the free lists.
func (d *decoder) release(tb *traceBuf) {
	delete(d.byTrace, tb.id)
	for _, sp := range tb.v1 {
		d.recycleV1(sp)
	}
	for _, sp := range tb.v2 {
		d.recycleV2(sp)
	}
	*tb = traceBuf{v1: reuse(tb.v1), v2: reuse(tb.v2)}
	d.freeTraces = append(d.freeTraces, tb)
}

// convertAndEmit converts traces and emits them in requests of at most
// d.batch spans, then remembers their IDs.
func (d *decoder) convertAndEmit(traces []*traceBuf) error {
	d.out = d.out[:0]
	d.memKeys, d.memVals = d.memKeys[:0], d.memVals[:0]
	for _, tb := range traces {
		traceID := d.idBytes(tb.id[:])
		for _, sp := range tb.v1 {
			sp.hopBase = d.hopBase(tb, sp) // before any child resolves its target
		}
		for _, sp := range tb.v1 {
			parent, hasParent := d.v1Parent(tb, sp)
			if err := d.convertV1(tb, sp, traceID, parent, hasParent); err != nil {
				return err
			}
		}
		for _, sp := range tb.v2 {
			if err := d.convertV2(tb, sp, traceID); err != nil {
				return err
			}
		}
	}
	for i := 0; i < len(d.out); i += d.batch {
		if err := d.emitRequest(d.out[i:min(i+d.batch, len(d.out))]); err != nil {
			return err
		}
	}
	clear(d.out) // drop the references to the converted spans
	d.mem.put(d.memKeys, d.memVals)
	return nil
}

// v1Parent resolves the parent of a v1 span's first half: the half its
// parent's children hang under (v1Span.target), found in the buffer, else
// in the ID memory, else the v1 parent ID itself. A parent not seen yet
// may be a span that is not split (a root server span, a local span) or
// a shared span whose children belong under its server half: nothing in
// the child tells which, so the child keeps the ID as reported and the
// trace read path shows it under the server half when there is one in
// its service (store: "Shared spans").
func (d *decoder) v1Parent(tb *traceBuf, sp *v1Span) ([8]byte, bool) {
	if !sp.hasParent {
		return [8]byte{}, false
	}
	if j := tb.findV1(sp.parentID); j >= 0 {
		return tb.v1[j].target(tb.id), true
	}
	if e, ok := d.mem.get(spanKey{tb.id, sp.parentID}); ok {
		d.stats.ParentsRemembered++
		return e.target, true
	}
	d.stats.ParentsUnresolved++
	return sp.parentID, true
}

// hopBase returns the hop of the first OTLP span of a v1 span: 1 when
// the span starts with a server (consumer) half and is the server side of
// a call whose client half is reported apart (another object, batch or
// request), that is when it has a parentId or the ID memory knows a
// client half of its ID; else 0. The server half of a shared span then
// gets the same ID, DerivedSpanID(trace, id, 1), and the same parent, the
// client half (the v1 ID), as when both halves come in one object,
// whichever arrives first. A server half without parentId whose client
// half is not known is a root span and keeps the v1 ID.
func (d *decoder) hopBase(tb *traceBuf, sp *v1Span) int {
	switch {
	case !sp.calleeFirst:
		return 0
	case sp.hasParent:
		return 1
	}
	if e, ok := d.mem.get(spanKey{tb.id, sp.id}); ok && e.client {
		return 1
	}
	return 0
}

// remember records a converted span for parent resolution in later
// batches.
func (d *decoder) remember(trace [16]byte, span [8]byte, e memEntry) {
	d.memKeys = append(d.memKeys, spanKey{trace, span})
	d.memVals = append(d.memVals, e)
}

// emitRequest groups spans by resource into one export request, encodes
// it and emits it.
func (d *decoder) emitRequest(spans []outSpan) error {
	req := &coltracepb.ExportTraceServiceRequest{}
	clear(d.groups)
	for _, o := range spans {
		ss := d.groups[o.res.key]
		if ss == nil {
			ss = &tracepb.ScopeSpans{Scope: zipkinScope}
			req.ResourceSpans = append(req.ResourceSpans,
				&tracepb.ResourceSpans{Resource: o.res.pb, ScopeSpans: []*tracepb.ScopeSpans{ss}})
			d.groups[o.res.key] = ss
		}
		ss.Spans = append(ss.Spans, o.span)
	}
	var buf []byte
	if !d.fresh {
		buf = d.marshal[:0]
	}
	b, err := proto.MarshalOptions{}.MarshalAppend(buf, req)
	if err != nil {
		return fmt.Errorf("%v: encode export request: %w", d.v, err)
	}
	if !d.fresh {
		d.marshal = b
	}
	if err := d.emit(b, len(spans)); err != nil {
		return err
	}
	d.stats.Requests++
	d.stats.OTLPSpans += int64(len(spans))
	return nil
}

// resource returns the resource of an endpoint service name.
func (d *decoder) resource(service string) *resource {
	if r := d.resources[service]; r != nil {
		return r
	}
	if len(d.resources) >= maxResources {
		clear(d.resources)
		clear(d.resByKey)
	}
	attrs := spigo.ResourceAttrs(service)
	var key strings.Builder
	for _, a := range attrs {
		key.WriteString(a.Key)
		key.WriteByte(0)
		key.WriteString(a.Value)
		key.WriteByte(0)
	}
	r := d.resByKey[key.String()]
	if r == nil {
		r = &resource{key: key.String(), pb: &resourcepb.Resource{}}
		for _, a := range attrs {
			r.pb.Attributes = append(r.pb.Attributes, strAttr(a.Key, a.Value))
		}
		d.resByKey[r.key] = r
	}
	d.resources[strings.Clone(service)] = r
	return r
}

// intern returns b as a string, shared with earlier equal short strings.
func (d *decoder) intern(b []byte) string {
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	if len(d.strs) >= maxInterned {
		clear(d.strs)
	}
	s := string(b)
	d.strs[s] = s
	return s
}

// internStr reads a string value (null reads as "") and interns it.
func (d *decoder) internStr(want string) (string, error) {
	b, _, err := d.s.str(want)
	if err != nil || len(b) == 0 {
		return "", err
	}
	return d.intern(b), nil
}

// idBytes copies an ID into a slab shared by the converted spans.
func (d *decoder) idBytes(id []byte) []byte {
	if len(d.idSlab) < len(id) {
		d.idSlab = make([]byte, 4096)
	}
	b := d.idSlab[:len(id):len(id)]
	copy(b, id)
	d.idSlab = d.idSlab[len(id):]
	return b
}

func (d *decoder) id8(id [8]byte) []byte { return d.idBytes(id[:]) }

// newSpans returns n new spans, allocated from a slab. The slice is
// valid until the next call.
func (d *decoder) newSpans(n int) []*tracepb.Span {
	d.spanPtrs = d.spanPtrs[:0]
	for range n {
		if len(d.spanSlab) == 0 {
			d.spanSlab = make([]tracepb.Span, 256)
		}
		d.spanPtrs = append(d.spanPtrs, &d.spanSlab[0])
		d.spanSlab = d.spanSlab[1:]
	}
	return d.spanPtrs
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// setAttr sets kv on span, replacing an attribute with the same key.
func setAttr(span *tracepb.Span, kv *commonpb.KeyValue) {
	for i, a := range span.Attributes {
		if a.Key == kv.Key {
			span.Attributes[i] = kv
			return
		}
	}
	span.Attributes = append(span.Attributes, kv)
}

// appendAttr appends kv to span's attributes (see dedupeLast).
func appendAttr(span *tracepb.Span, kv *commonpb.KeyValue) {
	span.Attributes = append(span.Attributes, kv)
}

func kvKey(kv *commonpb.KeyValue) string { return kv.Key }

// dedupeLast removes the elements of s whose key appears again later,
// keeping the last value at the position of the first occurrence, in
// place. idx is a scratch map used for long slices.
func dedupeLast[T any](s []T, key func(T) string, idx *map[string]int) []T {
	if len(s) < 2 {
		return s
	}
	out := s[:0]
	useMap := false
	for _, e := range s {
		k := key(e)
		j := -1
		if useMap {
			if i, ok := (*idx)[k]; ok {
				j = i
			}
		} else {
			for i := range out {
				if key(out[i]) == k {
					j = i
					break
				}
			}
		}
		if j >= 0 {
			out[j] = e
			continue
		}
		out = append(out, e)
		if useMap {
			(*idx)[k] = len(out) - 1
		} else if len(out) > linearLimit {
			useMap = true
			if *idx == nil {
				*idx = make(map[string]int)
			}
			clear(*idx)
			for i := range out {
				(*idx)[key(out[i])] = i
			}
		}
	}
	clear(s[len(out):])
	return out
}

// addAttr adds kv to span unless it has an attribute with the same key.
func addAttr(span *tracepb.Span, kv *commonpb.KeyValue) {
	for _, a := range span.Attributes {
		if a.Key == kv.Key {
			return
		}
	}
	span.Attributes = append(span.Attributes, kv)
}
