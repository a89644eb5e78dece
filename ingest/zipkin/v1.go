package zipkin

import (
	"math"
	"slices"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// maxAnnotations bounds the annotations, binary annotations and tags of one
// span (after merging), so that one huge object cannot take unbounded
// memory.
const maxAnnotations = 1 << 16

// maxHalves bounds the OTLP spans one v1 span becomes (cs/sr/ms/mr
// annotations); spigo writes at most 4.
const maxHalves = 256

// endpoint is a Zipkin endpoint.
type endpoint struct {
	service    string
	ipv4, ipv6 string
	port       int
}

// address returns the endpoint's IP address, IPv4 preferred.
func (e *endpoint) address() string {
	if e.ipv4 != "" {
		return e.ipv4
	}
	return e.ipv6
}

// v1Annotation is a timed v1 annotation.
type v1Annotation struct {
	ts    int64 // µs
	value string
	ep    endpoint
	hasEP bool
}

// attrKind is the type of a binary annotation's value.
type attrKind uint8

const (
	attrNone attrKind = iota
	attrString
	attrInt
	attrDouble
	attrBool
)

// attrValue is a binary annotation's (or tag's) value.
type attrValue struct {
	kind attrKind
	s    string
	i    int64
	f    float64
	b    bool
}

// text is the value as a string (the message of an "error" status).
func (v attrValue) text() string {
	switch v.kind {
	case attrString:
		return v.s
	case attrInt:
		return strconv.FormatInt(v.i, 10)
	case attrDouble:
		return strconv.FormatFloat(v.f, 'g', -1, 64)
	case attrBool:
		return strconv.FormatBool(v.b)
	}
	return ""
}

// pb returns the value as an OTLP AnyValue.
func (v attrValue) pb() *commonpb.AnyValue {
	switch v.kind {
	case attrInt:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v.i}}
	case attrDouble:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v.f}}
	case attrBool:
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v.b}}
	}
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v.s}}
}

// v1Binary is a v1 binary annotation.
type v1Binary struct {
	key   string
	val   attrValue
	ep    endpoint
	hasEP bool
}

// v1Span is a v1 span object, possibly merged from several objects.
type v1Span struct {
	traceID   [16]byte
	id        [8]byte
	parentID  [8]byte
	hasParent bool
	name      string
	ts, dur   int64 // span-level timestamp and duration, µs; 0 = absent
	anns      []v1Annotation
	bins      []v1Binary
	merged    bool // from several objects: annotations sorted by time

	// tsSide and durSide are the sides (objectSide) of the objects whose
	// ts and dur were kept, once merged: a client side's win.
	tsSide, durSide int8

	index int   // position of the first object in the input array
	off   int64 // and its byte offset

	halves      int  // planned OTLP spans
	targetHop   int  // plan index of the half children hang under
	isCall      bool // planned from cs, sr, ss, cr, ms or mr (not a local span)
	callee      bool // the plan has a server or consumer half
	calleeFirst bool // its first half is a server or consumer half
	hopBase     int  // hop of the first half: 1 for a server half reported apart (decoder.hopBase)
}

func (sp *v1Span) reset() {
	*sp = v1Span{anns: reuse(sp.anns), bins: reuse(sp.bins)}
}

// maxReusedCap is the largest capacity kept when a slice is reused, so
// that one huge span does not pin its memory for the whole decode.
const maxReusedCap = 1024

// reuse returns s emptied for reuse, or nil if it grew too large.
func reuse[T any](s []T) []T {
	if cap(s) > maxReusedCap {
		return nil
	}
	clear(s)
	return s[:0]
}

// parseV1 reads a v1 span object at the current position (at its '{').
func (d *decoder) parseV1(sp *v1Span) error {
	s := d.s
	objOff := s.offset()
	s.pos++
	var hasTrace, hasID bool
	for first := true; ; first = false {
		key, ok, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "traceId":
			hasTrace, err = s.hexID(sp.traceID[:], true)
			err = inField(err, "traceId")
		case "id":
			hasID, err = s.hexID(sp.id[:], false)
			err = inField(err, "id")
		case "parentId":
			sp.hasParent, err = s.parentID(sp.parentID[:])
			err = inField(err, "parentId")
		case "name":
			sp.name, err = d.internStr("a string")
			err = inField(err, "name")
		case "timestamp":
			sp.ts, err = s.micros()
			err = inField(err, "timestamp")
		case "duration":
			sp.dur, err = s.micros()
			err = inField(err, "duration")
		case "annotations":
			err = inField(d.v1Annotations(sp), "annotations")
		case "binaryAnnotations":
			err = inField(d.v1Binaries(sp), "binaryAnnotations")
		case "localEndpoint", "remoteEndpoint":
			name := string(key)
			return inField(s.errAt(s.offset(),
				"a Zipkin v2 member: this looks like Zipkin v2 JSON (POST it to /api/v2/spans)"), name)
		default:
			err = s.skipValue(0)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case !hasTrace:
		return s.errAt(objOff, `missing "traceId"`)
	case !hasID:
		return s.errAt(objOff, `missing "id"`)
	}
	if sp.hasParent && sp.parentID == sp.id {
		sp.hasParent = false // a span cannot be its own parent (Zipkin drops it too)
	}
	return nil
}

// parentID reads an optional parent ID: null, "" and all zeros mean root.
func (s *scanner) parentID(dst []byte) (bool, error) {
	present, err := s.hexID(dst, false)
	if pe, ok := err.(*parseError); ok && present && pe.msg == errAllZero {
		return false, nil
	}
	return present, err
}

func (d *decoder) v1Annotations(sp *v1Span) error {
	s := d.s
	if null, err := s.isNull(); null || err != nil {
		return err
	}
	if s.cur() != '[' {
		return s.typeErr("an array of annotations")
	}
	s.pos++
	for i := 0; ; i++ {
		ok, err := s.nextElem(i == 0)
		if err != nil || !ok {
			return err
		}
		if len(sp.anns) >= maxAnnotations {
			return s.errAt(s.offset(), "more than %d annotations", maxAnnotations)
		}
		sp.anns = append(sp.anns, v1Annotation{})
		if err := d.v1Annotation(&sp.anns[len(sp.anns)-1]); err != nil {
			return inElem(err, i)
		}
	}
}

func (d *decoder) v1Annotation(a *v1Annotation) error {
	s := d.s
	off := s.offset()
	if s.cur() != '{' {
		return s.typeErr("an annotation object")
	}
	s.pos++
	var hasValue bool
	for first := true; ; first = false {
		key, ok, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "timestamp":
			a.ts, err = s.micros()
			err = inField(err, "timestamp")
		case "value":
			var b []byte
			if b, hasValue, err = s.str("a string"); err == nil {
				a.value = d.intern(b)
			}
			err = inField(err, "value")
		case "endpoint":
			a.hasEP, err = d.endpoint(&a.ep)
			err = inField(err, "endpoint")
		default:
			err = s.skipValue(0)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case a.ts == 0:
		return s.errAt(off, `missing "timestamp"`)
	case !hasValue:
		return s.errAt(off, `missing "value"`)
	}
	return nil
}

// endpoint reads an endpoint object; null reports false.
func (d *decoder) endpoint(e *endpoint) (bool, error) {
	s := d.s
	if null, err := s.isNull(); null || err != nil {
		return false, err
	}
	if s.cur() != '{' {
		return false, s.typeErr("an endpoint object")
	}
	s.pos++
	for first := true; ; first = false {
		key, ok, err := s.nextKey(first)
		if err != nil {
			return false, err
		}
		if !ok {
			return true, nil
		}
		switch string(key) {
		case "serviceName":
			e.service, err = d.internStr("a string")
			err = inField(err, "serviceName")
		case "ipv4":
			e.ipv4, err = d.internStr("a string")
			err = inField(err, "ipv4")
		case "ipv6":
			e.ipv6, err = d.internStr("a string")
			err = inField(err, "ipv6")
		case "port":
			e.port, err = s.port()
			err = inField(err, "port")
		default:
			err = s.skipValue(0)
		}
		if err != nil {
			return false, err
		}
	}
}

func (d *decoder) v1Binaries(sp *v1Span) error {
	s := d.s
	if null, err := s.isNull(); null || err != nil {
		return err
	}
	if s.cur() != '[' {
		return s.typeErr("an array of binary annotations")
	}
	s.pos++
	for i := 0; ; i++ {
		ok, err := s.nextElem(i == 0)
		if err != nil || !ok {
			return err
		}
		if len(sp.bins) >= maxAnnotations {
			return s.errAt(s.offset(), "more than %d binary annotations", maxAnnotations)
		}
		sp.bins = append(sp.bins, v1Binary{})
		b := &sp.bins[len(sp.bins)-1]
		keep, err := d.v1Binary(b)
		if err != nil {
			return inElem(err, i)
		}
		if !keep {
			sp.bins = sp.bins[:len(sp.bins)-1]
		}
	}
}

// v1Binary reads a binary annotation; keep is false for a null value.
func (d *decoder) v1Binary(b *v1Binary) (keep bool, err error) {
	s := d.s
	off := s.offset()
	if s.cur() != '{' {
		return false, s.typeErr("a binary annotation object")
	}
	s.pos++
	var typ string
	var hasKey bool
	for first := true; ; first = false {
		key, ok, err := s.nextKey(first)
		if err != nil {
			return false, err
		}
		if !ok {
			break
		}
		switch string(key) {
		case "key":
			var k []byte
			if k, hasKey, err = s.str("a string"); err == nil {
				b.key = d.intern(k)
			}
			err = inField(err, "key")
		case "value":
			b.val, err = d.anyValue()
			err = inField(err, "value")
		case "type":
			typ, err = d.internStr("a string")
			err = inField(err, "type")
		case "endpoint":
			b.hasEP, err = d.endpoint(&b.ep)
			err = inField(err, "endpoint")
		default:
			err = s.skipValue(0)
		}
		if err != nil {
			return false, err
		}
	}
	if !hasKey || b.key == "" {
		return false, s.errAt(off, `missing "key"`)
	}
	if b.val.kind == attrString {
		coerce(&b.val, typ)
	}
	return b.val.kind != attrNone, nil
}

// coerce converts a string value to the binary annotation type typ when
// it parses as one (Zipkin v1 JSON writers quote some numbers).
func coerce(v *attrValue, typ string) {
	switch typ {
	case "I16", "I32", "I64":
		if i, err := strconv.ParseInt(v.s, 10, 64); err == nil {
			*v = attrValue{kind: attrInt, i: i}
		}
	case "DOUBLE":
		if f, err := strconv.ParseFloat(v.s, 64); err == nil {
			*v = attrValue{kind: attrDouble, f: f}
		}
	case "BOOL":
		if b, err := strconv.ParseBool(v.s); err == nil {
			*v = attrValue{kind: attrBool, b: b}
		}
	}
}

// anyValue reads a string, number or bool value; null gives attrNone.
func (d *decoder) anyValue() (attrValue, error) {
	s := d.s
	switch c := s.cur(); {
	case c == '"':
		b, err := s.readString()
		if err != nil {
			return attrValue{}, err
		}
		return attrValue{kind: attrString, s: string(b)}, nil
	case c == 't' || c == 'f' || c == 'n':
		lit, err := s.readLiteral()
		switch {
		case err != nil:
			return attrValue{}, err
		case lit == 'n':
			return attrValue{}, nil
		}
		return attrValue{kind: attrBool, b: lit == 't'}, nil
	case c == '-' || c >= '0' && c <= '9':
		num, err := s.readNumber()
		if err != nil {
			return attrValue{}, err
		}
		return numberValue(num), nil
	}
	return attrValue{}, s.typeErr("a string, number or bool")
}

// numberValue is an int if num is integral and fits, else a double.
func numberValue(num []byte) attrValue {
	if i, err := strconv.ParseInt(string(num), 10, 64); err == nil {
		return attrValue{kind: attrInt, i: i}
	}
	f, _ := strconv.ParseFloat(string(num), 64) // the grammar was checked; ±Inf on overflow
	if f >= -(1<<63) && f < 1<<63 && f == math.Trunc(f) {
		return attrValue{kind: attrInt, i: int64(f)}
	}
	return attrValue{kind: attrDouble, f: f}
}

// halfPlan is one OTLP span planned for a v1 span object.
type halfPlan struct {
	kind   tracepb.Span_SpanKind
	ep     *endpoint
	hasEP  bool
	start  int64 // µs
	end    int64 // µs, valid if hasEnd
	hasEnd bool
	parent int // index of the parent half; -1: the v1 span's parent
}

// Roles of v1 annotations in a plan.
const (
	roleEvent int8 = iota
	roleStart
	roleEnd
)

var noEndpoint endpoint

// planV1 walks the annotations of sp in order and plans its OTLP spans
// into d.plan, with the role of every annotation in d.roles (see the
// package documentation, "Zipkin v1"). It returns false if sp has no
// cs/sr/ss/cr/ms/mr annotation (a local span: the caller plans it).
func (d *decoder) planV1(sp *v1Span) bool {
	plan := d.plan[:0]
	roles := slices.Grow(d.roles[:0], len(sp.anns))[:len(sp.anns)]
	clear(roles)
	pending, lastCallee := -1, -1 // unanswered client half, last server half
	tooMany := false
	startCallee := func(i int, kind tracepb.Span_SpanKind) {
		if len(plan) == maxHalves {
			tooMany = true
			return
		}
		a := &sp.anns[i]
		parent := -1
		if pending >= 0 {
			parent = pending
		} else if len(plan) > 0 {
			parent = len(plan) - 1
		}
		plan = append(plan, halfPlan{kind: kind, ep: &a.ep, hasEP: a.hasEP, start: a.ts, parent: parent})
		pending, lastCallee = -1, len(plan)-1
		roles[i] = roleStart
	}
	startCaller := func(i int, kind tracepb.Span_SpanKind) {
		if len(plan) == maxHalves {
			tooMany = true
			return
		}
		a := &sp.anns[i]
		parent := -1
		if lastCallee >= 0 {
			parent = lastCallee
		} else if pending >= 0 {
			parent = plan[pending].parent
		}
		plan = append(plan, halfPlan{kind: kind, ep: &a.ep, hasEP: a.hasEP, start: a.ts, parent: parent})
		pending = len(plan) - 1
		roles[i] = roleStart
	}
	for i := range sp.anns {
		a := &sp.anns[i]
		switch a.value {
		case "cs":
			startCaller(i, tracepb.Span_SPAN_KIND_CLIENT)
		case "ms":
			startCaller(i, tracepb.Span_SPAN_KIND_PRODUCER)
		case "sr":
			startCallee(i, tracepb.Span_SPAN_KIND_SERVER)
		case "mr":
			startCallee(i, tracepb.Span_SPAN_KIND_CONSUMER)
		case "cr":
			if j := matchEnd(plan, tracepb.Span_SPAN_KIND_CLIENT, a); j >= 0 {
				plan[j].end, plan[j].hasEnd = a.ts, true
				roles[i] = roleEnd
			} else if len(plan) == 0 {
				startCaller(i, tracepb.Span_SPAN_KIND_CLIENT) // cr alone: a client of unknown duration
			}
		case "ss":
			if j := matchEnd(plan, tracepb.Span_SPAN_KIND_SERVER, a); j >= 0 {
				plan[j].end, plan[j].hasEnd = a.ts, true
				roles[i] = roleEnd
			} else if !slices.ContainsFunc(plan, func(h halfPlan) bool { return h.kind == tracepb.Span_SPAN_KIND_SERVER }) {
				startCallee(i, tracepb.Span_SPAN_KIND_SERVER) // ss without sr: a server of unknown duration
			}
		}
	}
	d.plan, d.roles, d.tooManyHalves = plan, roles, tooMany
	if len(plan) == 0 {
		return false
	}
	sp.targetHop, sp.callee = 0, false
	for j := len(plan) - 1; j >= 0; j-- {
		if isCallee(plan[j].kind) {
			sp.targetHop, sp.callee = j, true
			break
		}
	}
	sp.isCall, sp.calleeFirst = true, isCallee(plan[0].kind)
	return true
}

// isCallee reports whether k is the kind of a server (consumer) half.
func isCallee(k tracepb.Span_SpanKind) bool {
	return k == tracepb.Span_SPAN_KIND_SERVER || k == tracepb.Span_SPAN_KIND_CONSUMER
}

// matchEnd returns the half an end annotation a (cr or ss) closes: the
// latest open half of kind that started at or before a, preferring one in
// a's service; -1 if none.
func matchEnd(plan []halfPlan, kind tracepb.Span_SpanKind, a *v1Annotation) int {
	best := -1
	for j := len(plan) - 1; j >= 0; j-- {
		h := &plan[j]
		if h.kind != kind || h.hasEnd || h.start > a.ts {
			continue
		}
		if h.ep.service == a.ep.service {
			return j
		}
		if best < 0 {
			best = j
		}
	}
	return best
}

// planLocalV1 plans a v1 span without core annotations as one INTERNAL
// span: in the service of its "lc" binary annotation, else of its first
// annotation or binary annotation with an endpoint.
func (d *decoder) planLocalV1(sp *v1Span) {
	h := halfPlan{kind: tracepb.Span_SPAN_KIND_INTERNAL, ep: &noEndpoint, parent: -1}
	found := false
	for i := range sp.bins {
		if b := &sp.bins[i]; b.key == "lc" && b.hasEP {
			h.ep, h.hasEP, found = &b.ep, true, true
			break
		}
	}
	for i := 0; i < len(sp.anns) && !found; i++ {
		if a := &sp.anns[i]; a.hasEP {
			h.ep, h.hasEP, found = &a.ep, true, true
		}
	}
	for i := 0; i < len(sp.bins) && !found; i++ {
		if b := &sp.bins[i]; b.hasEP {
			h.ep, h.hasEP, found = &b.ep, true, true
		}
	}
	for i := range sp.anns {
		if ts := sp.anns[i].ts; h.start == 0 || ts < h.start {
			h.start = ts
		}
	}
	d.plan = append(d.plan[:0], h)
	sp.targetHop, sp.isCall, sp.callee, sp.calleeFirst = 0, false, false, false
}

// planSpanV1 plans sp (sorting merged annotations by time first) and
// returns its number of OTLP spans; false if it has more than maxHalves.
func (d *decoder) planSpanV1(sp *v1Span) (int, bool) {
	if sp.merged {
		cmp := cmpAnnTime
		if oneCall(sp.anns) {
			cmp = cmpAnnSideTime
		}
		if !slices.IsSortedFunc(sp.anns, cmp) {
			slices.SortStableFunc(sp.anns, cmp)
		}
	}
	if !d.planV1(sp) {
		d.planLocalV1(sp)
	}
	return len(d.plan), !d.tooManyHalves
}

func cmpAnnTime(a, b v1Annotation) int {
	switch {
	case a.ts < b.ts:
		return -1
	case a.ts > b.ts:
		return 1
	}
	return 0
}

// cmpAnnSideTime orders the client's core annotations (cs, cr, ms) before
// all others, then by time: the halves of one call merged from objects
// reported by each side then plan as client → server even when the
// server's clock is behind the client's or their times are equal.
func cmpAnnSideTime(a, b v1Annotation) int {
	if ca, cb := callerSide(a.value), callerSide(b.value); ca != cb {
		if ca {
			return -1
		}
		return 1
	}
	return cmpAnnTime(a, b)
}

// callerSide reports whether an annotation value is a caller's core
// annotation.
func callerSide(v string) bool { return v == "cs" || v == "cr" || v == "ms" }

// oneCall reports whether anns hold at most one cs or ms and at most one
// sr or mr: the halves of a single call (not a forwarded chain), whose
// order of planning need not follow time.
func oneCall(anns []v1Annotation) bool {
	callers, callees := 0, 0
	for i := range anns {
		switch anns[i].value {
		case "cs", "ms":
			callers++
		case "sr", "mr":
			callees++
		}
	}
	return callers <= 1 && callees <= 1
}

// objectSide is the side of a v1 span object that reported anns: 1 (the
// callee) when its first cs, sr, ss, cr, ms or mr annotation is sr, ss or
// mr, else 0.
func objectSide(anns []v1Annotation) int8 {
	for i := range anns {
		switch anns[i].value {
		case "cs", "cr", "ms":
			return 0
		case "sr", "ss", "mr":
			return 1
		}
	}
	return 0
}

// mergeV1 merges the later object from into sp (same trace and span ID):
// annotations concatenated, binary annotations unioned, the first
// non-empty name and parent kept, and the first timestamp and duration,
// a client-side object's preferred (see objectSide).
func (d *decoder) mergeV1(sp, from *v1Span) error {
	if len(sp.anns)+len(from.anns) > maxAnnotations || len(sp.bins)+len(from.bins) > maxAnnotations {
		return d.s.errAt(from.off, "span merged with earlier objects of the same id has more than %d annotations", maxAnnotations)
	}
	if !sp.merged {
		side := objectSide(sp.anns)
		sp.tsSide, sp.durSide = side, side
	}
	// The span-level timestamp and duration are the first half's: the
	// client's when both sides reported them, whatever came first.
	fromSide := objectSide(from.anns)
	if from.ts != 0 && (sp.ts == 0 || fromSide < sp.tsSide) {
		sp.ts, sp.tsSide = from.ts, fromSide
	}
	if from.dur != 0 && (sp.dur == 0 || fromSide < sp.durSide) {
		sp.dur, sp.durSide = from.dur, fromSide
	}
	sp.anns = append(sp.anns, from.anns...)
	if len(sp.bins)+len(from.bins) <= linearLimit {
		for _, b := range from.bins {
			if !slices.Contains(sp.bins, b) {
				sp.bins = append(sp.bins, b)
			}
		}
	} else {
		set := make(map[v1Binary]bool, len(sp.bins)+len(from.bins))
		for _, b := range sp.bins {
			set[b] = true
		}
		for _, b := range from.bins {
			if !set[b] {
				set[b] = true
				sp.bins = append(sp.bins, b)
			}
		}
	}
	if sp.name == "" {
		sp.name = from.name
	}
	if !sp.hasParent && from.hasParent {
		sp.parentID, sp.hasParent = from.parentID, true
	}
	sp.merged = true
	return nil
}

// coreV1 lists Zipkin's core v1 annotation values; others are counted in
// Stats.UnknownAnnotations.
var coreV1 = map[string]bool{
	"cs": true, "sr": true, "ss": true, "cr": true, "ms": true, "mr": true,
	"ws": true, "wr": true, "csf": true, "crf": true, "ssf": true, "srf": true,
	"error": true,
}

// convertV1 converts sp into OTLP spans appended to d.out. parent is the
// resolved parent of its first half.
func (d *decoder) convertV1(tb *traceBuf, sp *v1Span, traceID []byte, parent [8]byte, hasParent bool) error {
	d.planSpanV1(sp) // checked when sp was buffered
	plan := d.plan
	h0 := &plan[0]
	if sp.ts > 0 {
		h0.start = sp.ts
	}
	if h0.start == 0 {
		return d.spanErr(sp.index, sp.off, `no timestamp: the span has neither "timestamp" nor annotations`)
	}
	if sp.dur > 0 {
		if h0.start+sp.dur > maxMicros {
			return d.spanErr(sp.index, sp.off, `"timestamp" + "duration" is out of range (after year 2262)`)
		}
		h0.end, h0.hasEnd = h0.start+sp.dur, true
	}
	name := sp.name
	if name == "" {
		name = "unknown"
	}
	spans := d.newSpans(len(plan))
	ids := d.ids[:0]
	for k := range plan {
		ids = append(ids, DerivedSpanID(tb.id, sp.id, k+sp.hopBase))
	}
	d.ids = ids
	if len(plan) > 1 || sp.hopBase > 0 {
		d.stats.SharedSplit++
	}
	for k := range plan {
		h := &plan[k]
		span := spans[k]
		span.TraceId = traceID
		span.SpanId = d.id8(ids[k])
		switch {
		case h.parent >= 0:
			span.ParentSpanId = d.id8(ids[h.parent])
		case sp.hopBase > 0:
			span.ParentSpanId = d.id8(sp.id) // the client half, reported separately
		case hasParent:
			span.ParentSpanId = d.id8(parent)
		}
		span.Name = name
		span.Kind = h.kind
		span.StartTimeUnixNano = uint64(h.start) * 1000
		span.EndTimeUnixNano = span.StartTimeUnixNano
		if h.hasEnd && h.end >= h.start {
			span.EndTimeUnixNano = uint64(h.end) * 1000
		} else {
			h.hasEnd = false
		}
	}
	// Annotations that neither open nor close a half become events.
	for i := range sp.anns {
		if d.roles[i] != roleEvent {
			continue
		}
		a := &sp.anns[i]
		if !coreV1[a.value] {
			d.stats.UnknownAnnotations++
		}
		k := eventHalf(plan, a)
		spans[k].Events = append(spans[k].Events, &tracepb.Span_Event{TimeUnixNano: uint64(a.ts) * 1000, Name: a.value})
		if a.value == "error" && spans[k].Status == nil {
			spans[k].Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
		}
	}
	d.applyBinaries(sp, plan, spans)
	for k := range plan {
		h := &plan[k]
		if !h.hasEnd {
			spans[k].Attributes = append(spans[k].Attributes, durationUnknownAttr)
			d.stats.Incomplete++
		}
		spans[k].Attributes = dedupeLast(spans[k].Attributes, kvKey, &d.attrIdx)
		if h.ep.service == "" {
			d.stats.EmptyServiceNames++
		}
		d.out = append(d.out, outSpan{res: d.resource(h.ep.service), span: spans[k]})
	}
	d.remember(tb.id, sp.id, memEntry{target: sp.target(tb.id), client: sp.clientFirst(),
		guess: sp.clientFirst() && !sp.callee})
	return nil
}

// clientFirst reports whether the first half of sp is a client
// (producer) half: the half that owns the v1 span ID.
func (sp *v1Span) clientFirst() bool { return sp.isCall && !sp.calleeFirst }

// target returns the ID of the OTLP span the v1 children of sp hang
// under: its last server (consumer) half; for a span with only client
// halves, the ID its server half has when reported separately (the hop
// after its last half), so that children resolve alike whichever half
// arrives first and whether the server half is reported at all; else (a
// local span) its own ID.
func (sp *v1Span) target(trace [16]byte) [8]byte {
	switch {
	case sp.callee:
		return DerivedSpanID(trace, sp.id, sp.targetHop+sp.hopBase)
	case sp.isCall:
		return DerivedSpanID(trace, sp.id, sp.halves)
	}
	return sp.id
}

// eventHalf returns the half an event annotation a belongs to: the latest
// half of a's service started at or before it, else the first half of
// a's service, else the first half.
func eventHalf(plan []halfPlan, a *v1Annotation) int {
	if !a.hasEP {
		return 0
	}
	first := -1
	for k := len(plan) - 1; k >= 0; k-- {
		if plan[k].ep.service != a.ep.service {
			continue
		}
		if plan[k].start <= a.ts {
			return k
		}
		first = k
	}
	return max(first, 0)
}

// applyBinaries turns the binary annotations of sp into attributes and
// statuses of its halves.
func (d *decoder) applyBinaries(sp *v1Span, plan []halfPlan, spans []*tracepb.Span) {
	for i := range sp.bins {
		b := &sp.bins[i]
		switch b.key {
		case "sa": // server address: the callee of the last client half
			if k := lastHalf(plan, tracepb.Span_SPAN_KIND_CLIENT, tracepb.Span_SPAN_KIND_PRODUCER); k >= 0 && b.hasEP {
				if b.ep.service != "" {
					appendAttr(spans[k], strAttr("peer.service", b.ep.service))
				}
				addressAttrs(spans[k], &b.ep, "server.address", "server.port", appendAttr)
			}
			continue
		case "ca": // client address: the caller of the first server half
			if k := firstHalf(plan, tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CONSUMER); k >= 0 && b.hasEP {
				addressAttrs(spans[k], &b.ep, "client.address", "client.port", appendAttr)
			}
			continue
		case "ma": // message broker address: not mapped
			continue
		}
		// Halves in the binary annotation's service, else all halves.
		matched := false
		if b.hasEP {
			for k := range plan {
				if plan[k].ep.service == b.ep.service {
					matched = true
					d.binaryOn(spans[k], b)
				}
			}
		}
		if !matched {
			for k := range plan {
				d.binaryOn(spans[k], b)
			}
		}
	}
}

// lastHalf returns the index of the last half of kind k1 or k2, or -1.
func lastHalf(plan []halfPlan, k1, k2 tracepb.Span_SpanKind) int {
	for k := len(plan) - 1; k >= 0; k-- {
		if plan[k].kind == k1 || plan[k].kind == k2 {
			return k
		}
	}
	return -1
}

// firstHalf returns the index of the first half of kind k1 or k2, or -1.
func firstHalf(plan []halfPlan, k1, k2 tracepb.Span_SpanKind) int {
	for k := range plan {
		if plan[k].kind == k1 || plan[k].kind == k2 {
			return k
		}
	}
	return -1
}

// binaryOn applies one binary annotation to span.
func (d *decoder) binaryOn(span *tracepb.Span, b *v1Binary) {
	if b.key == "error" {
		span.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: b.val.text()}
	}
	appendAttr(span, &commonpb.KeyValue{Key: b.key, Value: b.val.pb()})
}

// addressAttrs puts the address and port attributes of ep on span.
func addressAttrs(span *tracepb.Span, ep *endpoint, addrKey, portKey string, put func(*tracepb.Span, *commonpb.KeyValue)) {
	if a := ep.address(); a != "" {
		put(span, strAttr(addrKey, a))
	}
	if ep.port > 0 {
		put(span, &commonpb.KeyValue{Key: portKey,
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(ep.port)}}})
	}
}
