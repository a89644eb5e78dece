// Parsing Zipkin v1 span objects: annotations, binary annotations and
// endpoints, into v1Span.

package zipkin

import (
	"math"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
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
