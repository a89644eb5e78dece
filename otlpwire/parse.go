package otlpwire

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers from opentelemetry/proto (trace/v1, resource/v1, common/v1).
const (
	fReqResourceSpans = 1

	fRSResource   = 1
	fRSScopeSpans = 2
	fRSSchemaURL  = 3

	fResAttributes = 1

	fSSScope     = 1
	fSSSpans     = 2
	fSSSchemaURL = 3

	fSpanTraceID      = 1
	fSpanSpanID       = 2
	fSpanParentSpanID = 4
	fSpanName         = 5
	fSpanKind         = 6
	fSpanStart        = 7
	fSpanEnd          = 8
	fSpanAttributes   = 9
	fSpanStatus       = 15

	fStatusCode = 3

	fKVKey   = 1
	fKVValue = 2

	fAnyString = 1
	fAnyBool   = 2
	fAnyInt    = 3
	fAnyDouble = 4
	fAnyArray  = 5
	fAnyKVList = 6
	fAnyBytes  = 7

	fArrayValues = 1
)

// Input limits. Parse refuses (marks Invalid) every span beyond them, so
// that no index key derived from a span comes near bbolt's 32 KiB key limit
// (the longest, service \x00 span name \x00 kind, stays under 8.2 KiB) and
// the work per span is bounded whatever the request holds.
const (
	// MaxNameBytes is the longest span name, and the longest service.name
	// value of a resource, that is accepted.
	MaxNameBytes = 4096
	// MaxAttrKeyBytes is the longest attribute key of a span or resource
	// that is accepted. Index terms hold the key and a value of at most 256
	// bytes.
	MaxAttrKeyBytes = 1024
	// MaxAttributes is the most attributes a span, or a resource, may have.
	// Past it Parse only counts the attributes (a wire skip each), so a span
	// with a million attributes costs a scan of its bytes, not a million
	// decoded attributes.
	MaxAttributes = 1024
	// MaxArrayElements is the most elements collected from one array
	// attribute (Span.Elems, Resource.Elems); later elements are ignored,
	// and so are elements past MaxAttributes in all for one span or
	// resource. The span stays valid either way.
	MaxArrayElements = 64
)

// Status codes of opentelemetry.proto.trace.v1.Status.
const (
	StatusUnset = 0
	StatusOK    = 1
	StatusError = 2
)

// Attr is an attribute with a scalar value rendered as text: strings as they
// are, ints in decimal, bools as true/false, doubles in Go's 'g' format.
// Key-value lists and bytes values are not collected. In Span.Elems and
// Resource.Elems an Attr is one scalar element of an array attribute, under
// the array's key.
type Attr struct {
	Key   []byte
	Value []byte
}

// Resource is one ResourceSpans' resource.
type Resource struct {
	Raw       []byte // the encoded opentelemetry.proto.resource.v1.Resource (may be empty)
	SchemaURL []byte // ResourceSpans.schema_url
	Service   []byte // value of the service.name attribute; empty if absent
	Attrs     []Attr // scalar attributes of the resource
	Elems     []Attr // scalar elements of the resource's array attributes (see Span.Elems)

	// Invalid is non-empty when the resource exceeds a limit (MaxNameBytes
	// for service.name, MaxAttrKeyBytes, MaxAttributes); it names the
	// problem. Every span of the resource is then invalid, and Service,
	// Attrs and Elems are empty, so that nothing of the resource reaches an
	// index.
	Invalid string
}

// Scope is one ScopeSpans' instrumentation scope.
type Scope struct {
	Resource  int    // index into Traces.Resources
	Raw       []byte // the encoded InstrumentationScope (may be empty)
	SchemaURL []byte // ScopeSpans.schema_url
}

// Span is one span with the fields the store indexes.
type Span struct {
	Raw      []byte // the encoded opentelemetry.proto.trace.v1.Span
	Scope    int    // index into Traces.Scopes
	TraceID  [16]byte
	SpanID   [8]byte
	ParentID [8]byte // zero when the span is a root
	Name     []byte
	Kind     int32
	Start    uint64 // Unix nanoseconds
	End      uint64
	Status   int32
	Attrs    []Attr // scalar attributes of the span
	// Elems holds the scalar elements of the span's array attributes, one
	// Attr per element under the array's key, in order (package doc,
	// "Array values"). They are kept apart from Attrs so that code reading
	// an attribute as one value never sees an element.
	Elems []Attr

	// Invalid is non-empty when the span failed validation; it names the problem.
	Invalid string
}

// HasParent reports whether the span has a non-zero parent span ID.
func (s *Span) HasParent() bool { return s.ParentID != [8]byte{} }

// Traces is a parsed ExportTraceServiceRequest. Reuse one value across
// requests (call Reset or let Parse do it) to avoid allocations.
type Traces struct {
	Resources []Resource
	Scopes    []Scope
	Spans     []Span
	// Invalid counts spans with a non-empty Span.Invalid.
	Invalid int

	scratch []byte   // rendering of non-string attribute values
	arr     [][]byte // elements of the array value being decoded
}

// Reset empties t, keeping its capacity. Attribute slices are kept for reuse.
func (t *Traces) Reset() {
	t.Resources = t.Resources[:0]
	t.Scopes = t.Scopes[:0]
	t.Spans = t.Spans[:0]
	t.Invalid = 0
	t.scratch = t.scratch[:0]
}

// ErrMalformed is wrapped by every decoding error of Parse.
var ErrMalformed = errors.New("malformed OTLP protobuf")

func malformed(what string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}

// Parse decodes an ExportTraceServiceRequest (or a TracesData, which has the
// same wire layout) into t, replacing its previous content.
func Parse(t *Traces, b []byte) error {
	t.Reset()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("request tag", protowire.ParseError(n))
		}
		b = b[n:]
		if num == fReqResourceSpans && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("resource_spans", protowire.ParseError(n))
			}
			b = b[n:]
			if err := t.parseResourceSpans(v); err != nil {
				return err
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return malformed("request field "+strconv.Itoa(int(num)), protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

func (t *Traces) parseResourceSpans(b []byte) error {
	ri := len(t.Resources)
	if ri < cap(t.Resources) {
		t.Resources = t.Resources[:ri+1]
		r := &t.Resources[ri]
		*r = Resource{Attrs: r.Attrs[:0], Elems: r.Elems[:0]}
	} else {
		t.Resources = append(t.Resources, Resource{})
	}
	res := &t.Resources[ri]
	firstSpan := len(t.Spans)
	var lim attrLimits
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("resource_spans tag", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == fRSResource || num == fRSScopeSpans || num == fRSSchemaURL) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("resource_spans field", protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case fRSResource:
				res.Raw = v
				attrs, elems, err := t.parseAttrList(res.Attrs, res.Elems, v, fResAttributes, &lim)
				if err != nil {
					return fmt.Errorf("resource: %w", err)
				}
				res.Attrs, res.Elems = attrs, elems
			case fRSScopeSpans:
				if err := t.parseScopeSpans(ri, v); err != nil {
					return err
				}
				res = &t.Resources[ri]
			case fRSSchemaURL:
				res.SchemaURL = v
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return malformed("resource_spans field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	for _, a := range res.Attrs {
		if string(a.Key) == "service.name" {
			res.Service = a.Value
		}
	}
	switch {
	case len(res.Service) > MaxNameBytes:
		res.Invalid = fmt.Sprintf("resource service.name is %d bytes, the limit is %d", len(res.Service), MaxNameBytes)
	case lim.longKey > 0:
		res.Invalid = fmt.Sprintf("resource attribute key is %d bytes, the limit is %d", lim.longKey, MaxAttrKeyBytes)
	case lim.n > MaxAttributes:
		res.Invalid = fmt.Sprintf("resource has %d attributes, the limit is %d", lim.n, MaxAttributes)
	}
	if res.Invalid != "" {
		res.Service, res.Attrs, res.Elems = nil, res.Attrs[:0], res.Elems[:0]
		for i := firstSpan; i < len(t.Spans); i++ {
			if s := &t.Spans[i]; s.Invalid == "" {
				s.Invalid = fmt.Sprintf("span %s: %s", quoteName(s.Name), res.Invalid)
				t.Invalid++
			}
		}
	}
	return nil
}

// attrLimits counts the attributes of a span or resource against
// MaxAttributes and MaxAttrKeyBytes while they are walked.
type attrLimits struct {
	n       int // attributes seen, collected or not
	longKey int // length of the first key over MaxAttrKeyBytes; 0 if none
	elems   int // array elements collected
}

// collect reports whether the next attribute is worth decoding: not once
// the owner is known to be refused. It counts the attribute.
func (l *attrLimits) collect() bool {
	l.n++
	return l.n <= MaxAttributes && l.longKey == 0
}

// checkKey records a key over MaxAttrKeyBytes and reports whether key is
// within the limit.
func (l *attrLimits) checkKey(key []byte) bool {
	if len(key) > MaxAttrKeyBytes {
		l.longKey = len(key)
		return false
	}
	return true
}

// quoteName quotes a span name for a message, cut to 128 bytes.
func quoteName(name []byte) string {
	const maxQuoted = 128
	if len(name) <= maxQuoted {
		return strconv.Quote(string(name))
	}
	return strconv.Quote(string(name[:maxQuoted])) + "…"
}

func (t *Traces) parseScopeSpans(ri int, b []byte) error {
	si := len(t.Scopes)
	t.Scopes = append(t.Scopes, Scope{Resource: ri})
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("scope_spans tag", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == fSSScope || num == fSSSpans || num == fSSSchemaURL) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("scope_spans field", protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case fSSScope:
				t.Scopes[si].Raw = v
			case fSSSpans:
				if err := t.parseSpan(si, v); err != nil {
					return err
				}
			case fSSSchemaURL:
				t.Scopes[si].SchemaURL = v
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return malformed("scope_spans field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return nil
}

func (t *Traces) parseSpan(si int, raw []byte) error {
	i := len(t.Spans)
	if i < cap(t.Spans) {
		t.Spans = t.Spans[:i+1]
		s := &t.Spans[i]
		*s = Span{Attrs: s.Attrs[:0], Elems: s.Elems[:0]}
	} else {
		t.Spans = append(t.Spans, Span{})
	}
	s := &t.Spans[i]
	s.Raw = raw
	s.Scope = si
	var traceID, spanID, parentID []byte
	var haveTrace, haveSpan bool
	var lim attrLimits
	b := raw
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("span tag", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && (num == fSpanTraceID || num == fSpanSpanID || num == fSpanParentSpanID || num == fSpanName || num == fSpanAttributes || num == fSpanStatus):
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("span field "+strconv.Itoa(int(num)), protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case fSpanTraceID:
				traceID, haveTrace = v, true
			case fSpanSpanID:
				spanID, haveSpan = v, true
			case fSpanParentSpanID:
				parentID = v
			case fSpanName:
				s.Name = v
			case fSpanAttributes:
				if !lim.collect() {
					break // the span is refused below; only count the rest
				}
				a, kind, err := t.parseKeyValue(v, &lim)
				if err != nil {
					return fmt.Errorf("span attribute: %w", err)
				}
				if lim.checkKey(a.Key) {
					switch kind {
					case valueScalar:
						s.Attrs = append(s.Attrs, a)
					case valueArray:
						s.Elems = t.appendElems(s.Elems, a.Key, &lim)
					}
				}
			case fSpanStatus:
				code, err := parseStatusCode(v)
				if err != nil {
					return err
				}
				s.Status = code
			}
		case typ == protowire.VarintType && num == fSpanKind:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed("span kind", protowire.ParseError(n))
			}
			b = b[n:]
			s.Kind = int32(v)
		case typ == protowire.Fixed64Type && (num == fSpanStart || num == fSpanEnd):
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return malformed("span time", protowire.ParseError(n))
			}
			b = b[n:]
			if num == fSpanStart {
				s.Start = v
			} else {
				s.End = v
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return malformed("span field "+strconv.Itoa(int(num)), protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	switch {
	case !haveTrace || len(traceID) != 16:
		s.Invalid = fmt.Sprintf("span %s: trace ID must be 16 bytes, got %d", quoteName(s.Name), len(traceID))
	case isZero(traceID):
		s.Invalid = fmt.Sprintf("span %s: trace ID is all zero", quoteName(s.Name))
	case !haveSpan || len(spanID) != 8:
		s.Invalid = fmt.Sprintf("span %s: span ID must be 8 bytes, got %d", quoteName(s.Name), len(spanID))
	case isZero(spanID):
		s.Invalid = fmt.Sprintf("span %s: span ID is all zero", quoteName(s.Name))
	case len(parentID) != 0 && len(parentID) != 8:
		s.Invalid = fmt.Sprintf("span %s: parent span ID must be empty or 8 bytes, got %d", quoteName(s.Name), len(parentID))
	case len(s.Name) == 0:
		s.Invalid = "span name is missing"
	case s.Start == 0:
		s.Invalid = fmt.Sprintf("span %s: start time is missing", quoteName(s.Name))
	case s.End < s.Start:
		s.Invalid = fmt.Sprintf("span %s: end time is before start time", quoteName(s.Name))
	case len(s.Name) > MaxNameBytes:
		s.Invalid = fmt.Sprintf("span %s: name is %d bytes, the limit is %d", quoteName(s.Name), len(s.Name), MaxNameBytes)
	case lim.longKey > 0:
		s.Invalid = fmt.Sprintf("span %s: attribute key is %d bytes, the limit is %d", quoteName(s.Name), lim.longKey, MaxAttrKeyBytes)
	case lim.n > MaxAttributes:
		s.Invalid = fmt.Sprintf("span %s: has %d attributes, the limit is %d", quoteName(s.Name), lim.n, MaxAttributes)
	}
	if s.Invalid != "" {
		t.Invalid++
		return nil
	}
	copy(s.TraceID[:], traceID)
	copy(s.SpanID[:], spanID)
	copy(s.ParentID[:], parentID)
	return nil
}

func parseStatusCode(b []byte) (int32, error) {
	var code int32
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, malformed("status tag", protowire.ParseError(n))
		}
		b = b[n:]
		if num == fStatusCode && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, malformed("status code", protowire.ParseError(n))
			}
			b = b[n:]
			code = int32(v)
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, malformed("status field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return code, nil
}

// parseAttrList appends the attributes found in field `field` of message b
// (a Resource or similar) to attrs and their array elements to elems, counting
// them in lim; it stops decoding them once lim says the owner is refused.
func (t *Traces) parseAttrList(attrs, elems []Attr, b []byte, field protowire.Number, lim *attrLimits) ([]Attr, []Attr, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return attrs, elems, malformed("tag", protowire.ParseError(n))
		}
		b = b[n:]
		if num == field && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return attrs, elems, malformed("attribute", protowire.ParseError(n))
			}
			b = b[n:]
			if !lim.collect() {
				continue
			}
			a, kind, err := t.parseKeyValue(v, lim)
			if err != nil {
				return attrs, elems, err
			}
			if lim.checkKey(a.Key) {
				switch kind {
				case valueScalar:
					attrs = append(attrs, a)
				case valueArray:
					elems = t.appendElems(elems, a.Key, lim)
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return attrs, elems, malformed("field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return attrs, elems, nil
}

// Kinds of a decoded AnyValue.
const (
	valueNone   = iota // unset, or a value that is not collected (kvlist, bytes)
	valueScalar        // string, bool, int or double, rendered as text
	valueArray         // array_value; its scalar elements are collected
)

// parseKeyValue decodes the KeyValue b: a.Value is set for a scalar value
// (kind valueScalar); for an array value (kind valueArray) its scalar
// elements are left in t.arr, within MaxArrayElements and lim's total, for
// appendElems. A repeated value field is merged as protobuf merges
// messages.
func (t *Traces) parseKeyValue(b []byte, lim *attrLimits) (a Attr, kind int, err error) {
	var v anyValue
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return a, valueNone, malformed("key_value tag", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == fKVKey || num == fKVValue) {
			f, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return a, valueNone, malformed("key_value field", protowire.ParseError(n))
			}
			b = b[n:]
			switch {
			case num == fKVKey:
				a.Key = f
			case len(f) > 1 && f[0] == fAnyString<<3|byte(protowire.BytesType) && int(f[1]) == len(f)-2 && f[1] < 0x80:
				// The common case, a short string and nothing else.
				v.kind, v.scalar = valueScalar, f[2:]
			default:
				if err := t.mergeAnyValue(&v, f, lim); err != nil {
					return a, valueNone, err
				}
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return a, valueNone, malformed("key_value field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	a.Value = v.scalar
	return a, v.kind, nil
}

// appendElems appends the elements parseKeyValue left in t.arr to elems
// under key, counting them in lim.
func (t *Traces) appendElems(elems []Attr, key []byte, lim *attrLimits) []Attr {
	for _, e := range t.arr {
		elems = append(elems, Attr{Key: key, Value: e})
	}
	lim.elems += len(t.arr)
	return elems
}

// anyValue is the AnyValue of a KeyValue as decoded so far. The elements
// of an array value are in Traces.arr.
type anyValue struct {
	kind   int // valueNone, valueScalar or valueArray
	scalar []byte
}

// mergeAnyValue merges the AnyValue b into v: as in protobuf, the last
// field of the oneof wins, and an array merged into an array appends to it.
func (t *Traces) mergeAnyValue(v *anyValue, b []byte, lim *attrLimits) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("any_value tag", protowire.ParseError(n))
		}
		b = b[n:]
		if num == fAnyString && typ == protowire.BytesType { // the common case, inline
			f, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("string_value", protowire.ParseError(n))
			}
			b = b[n:]
			v.kind, v.scalar = valueScalar, f
			continue
		}
		if num == fAnyArray && typ == protowire.BytesType {
			f, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed("array_value", protowire.ParseError(n))
			}
			b = b[n:]
			if v.kind != valueArray {
				t.arr = t.arr[:0]
			}
			v.kind, v.scalar = valueArray, nil
			t.appendArrayElems(f, lim)
			continue
		}
		f, kind, n, err := t.anyValueField(num, typ, b)
		if err != nil {
			return err
		}
		b = b[n:]
		if kind != kindUnknownField {
			v.kind, v.scalar = kind, f
		}
	}
	return nil
}

// kindUnknownField is returned by anyValueField for a field that is not
// part of AnyValue's oneof, which leaves the value as it is.
const kindUnknownField = -1

// anyValueField decodes the AnyValue field whose tag was just read from b,
// except array_value: a scalar is rendered as text (valueScalar), a kvlist
// or bytes value gives valueNone, any other field kindUnknownField. n is
// the number of bytes of b consumed.
func (t *Traces) anyValueField(num protowire.Number, typ protowire.Type, b []byte) (out []byte, kind, n int, err error) {
	switch {
	case num == fAnyString && typ == protowire.BytesType:
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, 0, 0, malformed("string_value", protowire.ParseError(n))
		}
		return v, valueScalar, n, nil
	case (num == fAnyBool || num == fAnyInt) && typ == protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return nil, 0, 0, malformed("scalar value", protowire.ParseError(n))
		}
		start := len(t.scratch)
		if num == fAnyBool {
			t.scratch = strconv.AppendBool(t.scratch, v != 0)
		} else {
			t.scratch = strconv.AppendInt(t.scratch, int64(v), 10)
		}
		return t.scratchSlice(start), valueScalar, n, nil
	case num == fAnyDouble && typ == protowire.Fixed64Type:
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return nil, 0, 0, malformed("double_value", protowire.ParseError(n))
		}
		start := len(t.scratch)
		t.scratch = strconv.AppendFloat(t.scratch, math.Float64frombits(v), 'g', -1, 64)
		return t.scratchSlice(start), valueScalar, n, nil
	}
	n = protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return nil, 0, 0, malformed("any_value field", protowire.ParseError(n))
	}
	if (num == fAnyArray || num == fAnyKVList || num == fAnyBytes) && typ == protowire.BytesType {
		return nil, valueNone, n, nil
	}
	return nil, kindUnknownField, n, nil
}

// appendArrayElems appends the scalar elements of the ArrayValue b to
// t.arr, until it holds MaxArrayElements or lim's total reaches
// MaxAttributes. Nested arrays, kvlists, bytes and empty values are
// skipped. An array that does not decode is dropped whole (t.arr emptied),
// not reported: Parse accepted such requests before it collected elements,
// and the receivers' validation refuses them.
func (t *Traces) appendArrayElems(b []byte, lim *attrLimits) {
	for len(b) > 0 {
		if n := len(t.arr); n >= MaxArrayElements || lim.elems+n >= MaxAttributes {
			return
		}
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.arr = t.arr[:0]
			return
		}
		b = b[n:]
		if num != fArrayValues || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				t.arr = t.arr[:0]
				return
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			t.arr = t.arr[:0]
			return
		}
		b = b[n:]
		out, ok, err := t.renderAnyValue(v)
		if err != nil {
			t.arr = t.arr[:0]
			return
		}
		if ok {
			t.arr = append(t.arr, out)
		}
	}
}

// renderAnyValue renders a scalar AnyValue as text; ok is false for an
// unset or non-scalar value. The last field of the oneof wins.
func (t *Traces) renderAnyValue(b []byte) (out []byte, ok bool, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false, malformed("any_value tag", protowire.ParseError(n))
		}
		b = b[n:]
		v, kind, n, err := t.anyValueField(num, typ, b)
		if err != nil {
			return nil, false, err
		}
		b = b[n:]
		if kind != kindUnknownField {
			out, ok = v, kind == valueScalar
		}
	}
	return out, ok, nil
}

// scratchSlice returns t.scratch[start:] as a stable sub-slice. When the
// append above had to grow the buffer, earlier sub-slices still point into
// the old array, which stays alive and unchanged, so they remain valid.
func (t *Traces) scratchSlice(start int) []byte {
	return t.scratch[start:len(t.scratch):len(t.scratch)]
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
