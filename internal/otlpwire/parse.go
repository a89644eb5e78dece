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
)

// Status codes of opentelemetry.proto.trace.v1.Status.
const (
	StatusUnset = 0
	StatusOK    = 1
	StatusError = 2
)

// Attr is an attribute with a scalar value rendered as text: strings as they
// are, ints in decimal, bools as true/false, doubles in Go's 'g' format.
// Arrays, key-value lists and bytes values are not collected.
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

	// Invalid is non-empty when the resource exceeds a limit (MaxNameBytes
	// for service.name, MaxAttrKeyBytes, MaxAttributes); it names the
	// problem. Every span of the resource is then invalid, and Service and
	// Attrs are empty, so that nothing of the resource reaches an index.
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

	scratch []byte // rendering of non-string attribute values
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
		attrs := t.Resources[ri].Attrs[:0]
		t.Resources[ri] = Resource{Attrs: attrs}
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
				attrs, err := t.parseAttrList(res.Attrs, v, fResAttributes, &lim)
				if err != nil {
					return fmt.Errorf("resource: %w", err)
				}
				res.Attrs = attrs
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
		res.Service, res.Attrs = nil, res.Attrs[:0]
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
		attrs := t.Spans[i].Attrs[:0]
		t.Spans[i] = Span{Attrs: attrs}
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
				a, ok, err := t.parseKeyValue(v)
				if err != nil {
					return fmt.Errorf("span attribute: %w", err)
				}
				if lim.checkKey(a.Key) && ok {
					s.Attrs = append(s.Attrs, a)
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

// parseAttrList appends the scalar attributes found in field `field` of
// message b (a Resource or similar) to dst, counting them in lim; it stops
// decoding them once lim says the owner is refused.
func (t *Traces) parseAttrList(dst []Attr, b []byte, field protowire.Number, lim *attrLimits) ([]Attr, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return dst, malformed("tag", protowire.ParseError(n))
		}
		b = b[n:]
		if num == field && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return dst, malformed("attribute", protowire.ParseError(n))
			}
			b = b[n:]
			if !lim.collect() {
				continue
			}
			a, ok, err := t.parseKeyValue(v)
			if err != nil {
				return dst, err
			}
			if lim.checkKey(a.Key) && ok {
				dst = append(dst, a)
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return dst, malformed("field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return dst, nil
}

// parseKeyValue decodes a KeyValue; ok is false for non-scalar values.
func (t *Traces) parseKeyValue(b []byte) (a Attr, ok bool, err error) {
	var value []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return a, false, malformed("key_value tag", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == fKVKey || num == fKVValue) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return a, false, malformed("key_value field", protowire.ParseError(n))
			}
			b = b[n:]
			if num == fKVKey {
				a.Key = v
			} else {
				value = v
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return a, false, malformed("key_value field", protowire.ParseError(n))
		}
		b = b[n:]
	}
	a.Value, ok, err = t.renderAnyValue(value)
	return a, ok, err
}

// renderAnyValue renders a scalar AnyValue as text.
func (t *Traces) renderAnyValue(b []byte) ([]byte, bool, error) {
	var out []byte
	ok := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false, malformed("any_value tag", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == fAnyString && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false, malformed("string_value", protowire.ParseError(n))
			}
			b = b[n:]
			out, ok = v, true
		case (num == fAnyBool || num == fAnyInt) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false, malformed("scalar value", protowire.ParseError(n))
			}
			b = b[n:]
			start := len(t.scratch)
			if num == fAnyBool {
				t.scratch = strconv.AppendBool(t.scratch, v != 0)
			} else {
				t.scratch = strconv.AppendInt(t.scratch, int64(v), 10)
			}
			out, ok = t.scratchSlice(start)
		case num == fAnyDouble && typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return nil, false, malformed("double_value", protowire.ParseError(n))
			}
			b = b[n:]
			start := len(t.scratch)
			t.scratch = strconv.AppendFloat(t.scratch, math.Float64frombits(v), 'g', -1, 64)
			out, ok = t.scratchSlice(start)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, false, malformed("any_value field", protowire.ParseError(n))
			}
			b = b[n:]
			out, ok = nil, false
		}
	}
	return out, ok, nil
}

// scratchSlice returns t.scratch[start:] as a stable sub-slice. When the
// append above had to grow the buffer, earlier sub-slices still point into
// the old array, which stays alive and unchanged, so they remain valid.
func (t *Traces) scratchSlice(start int) ([]byte, bool) {
	return t.scratch[start:len(t.scratch):len(t.scratch)], true
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
