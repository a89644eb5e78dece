package otlpwire

import (
	"errors"
	"fmt"
	"unicode/utf8"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxDepth is how deep ValidateTraces and ValidateMetrics let messages
// nest, counting the request itself as 1. OTLP's fixed structure needs at
// most 9 levels (a metrics request down to an exemplar's attribute value);
// the rest is for AnyValue nesting, where each level of a kvlist_value or
// array_value costs 3 (AnyValue, KeyValueList or ArrayValue, KeyValue), so
// an attribute value may hold at least 18 nested kvlists. proto.Unmarshal
// allows protowire.DefaultRecursionLimit (10,000): data nested between the
// two limits would decode, but make every reader and JSON encoder recurse
// thousands of frames deep.
const MaxDepth = 64

// ValidateTraces reports whether b decodes as an ExportTraceServiceRequest
// (or TracesData) with messages nested at most MaxDepth deep. It allocates
// nothing when b is valid.
//
// Receivers call it on every protobuf body before the store sees it: Parse
// walks only the fields it needs and checks no UTF-8, while readers decode
// the stored bytes with proto.Unmarshal, which refuses what this refuses.
//
// It accepts exactly what proto.UnmarshalOptions{RecursionLimit: MaxDepth}
// accepts (FuzzValidate checks the two agree):
//
//   - every tag is a valid varint with a field number in [1, 2^29-1];
//     end-group tags outside a group are errors;
//   - a known field with the wire type of its kind is decoded: varints,
//     fixed32/fixed64 and length-delimited values must be complete, packed
//     repeated scalars must hold whole elements, strings must be UTF-8
//     (proto3), and messages are checked recursively;
//   - a known field with another wire type, and any unknown field, is
//     skipped as proto.Unmarshal does with unknown fields
//     (protowire.ConsumeFieldValue, which checks groups and reserved wire
//     types);
//   - messages nest at most MaxDepth deep.
//
// Checking with proto.Unmarshal instead would build the whole message tree
// only to drop it, doubling the decode cost of the ingest hot path (about
// 3.5 µs and 22 allocations per span).
func ValidateTraces(b []byte) error {
	return traceRequestSchema.validate(b, MaxDepth)
}

// ValidateMetrics reports whether b decodes as an
// ExportMetricsServiceRequest (or MetricsData) with messages nested at most
// MaxDepth deep, like ValidateTraces.
func ValidateMetrics(b []byte) error {
	return metricsRequestSchema.validate(b, MaxDepth)
}

// fieldClass says how a known field's value is checked.
type fieldClass uint8

const (
	classUnknown fieldClass = iota // skipped as an unknown field
	classVarint
	classFixed32
	classFixed64
	classBytes
	classString
	classMessage
)

type fieldSchema struct {
	class    fieldClass
	repeated bool // scalars: may also come packed
	name     protoreflect.Name
	msg      *msgSchema // classMessage
}

// msgSchema is a message descriptor flattened for checking: fields indexed
// by number (OTLP numbers are small and dense).
type msgSchema struct {
	name   protoreflect.FullName
	fields []fieldSchema
}

var (
	traceRequestSchema   = newSchema((&coltracepb.ExportTraceServiceRequest{}).ProtoReflect().Descriptor())
	metricsRequestSchema = newSchema((&colmetricspb.ExportMetricsServiceRequest{}).ProtoReflect().Descriptor())
)

func newSchema(md protoreflect.MessageDescriptor) *msgSchema {
	return buildSchema(md, map[protoreflect.FullName]*msgSchema{})
}

// buildSchema flattens md; memo breaks the cycles of recursive messages
// (AnyValue → ArrayValue → AnyValue).
func buildSchema(md protoreflect.MessageDescriptor, memo map[protoreflect.FullName]*msgSchema) *msgSchema {
	if s, ok := memo[md.FullName()]; ok {
		return s
	}
	s := &msgSchema{name: md.FullName()}
	memo[md.FullName()] = s
	fds := md.Fields()
	maxNum := 0
	for i := range fds.Len() {
		maxNum = max(maxNum, int(fds.Get(i).Number()))
	}
	if maxNum > 1024 {
		panic(fmt.Sprintf("BUG: %s has field number %d; the flat schema expects small numbers", md.FullName(), maxNum))
	}
	s.fields = make([]fieldSchema, maxNum+1)
	for i := range fds.Len() {
		fd := fds.Get(i)
		f := fieldSchema{repeated: fd.IsList(), name: fd.Name()}
		switch fd.Kind() {
		case protoreflect.BoolKind, protoreflect.EnumKind,
			protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind,
			protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
			f.class = classVarint
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			f.class = classFixed32
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			f.class = classFixed64
		case protoreflect.BytesKind:
			f.class = classBytes
		case protoreflect.StringKind:
			f.class = classBytes
			if fd.Syntax() == protoreflect.Proto3 {
				f.class = classString
			}
		case protoreflect.MessageKind:
			if fd.IsMap() {
				panic(fmt.Sprintf("BUG: map field %s not supported by the flat schema", fd.FullName()))
			}
			f.class = classMessage
			f.msg = buildSchema(fd.Message(), memo)
		default:
			// Groups: OTLP has none; checked as unknown fields (more
			// lenient than proto.Unmarshal, never stricter).
			f.class = classUnknown
		}
		s.fields[fd.Number()] = f
	}
	return s
}

// validate checks that b is a valid encoding of the message s describes.
func (s *msgSchema) validate(b []byte, depth int) error {
	if depth--; depth < 0 {
		return fmt.Errorf("%s: messages nested more than %d deep", s.name, MaxDepth)
	}
	for len(b) > 0 {
		tag, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return fmt.Errorf("%s: field tag: %w", s.name, protowire.ParseError(n))
		}
		b = b[n:]
		if tag>>3 < uint64(protowire.MinValidNumber) || tag>>3 > uint64(protowire.MaxValidNumber) {
			return fmt.Errorf("%s: invalid field number %d", s.name, tag>>3)
		}
		num, typ := protowire.Number(tag>>3), protowire.Type(tag&7)
		if typ == protowire.EndGroupType {
			return fmt.Errorf("%s: field %d: unexpected end of group", s.name, num)
		}
		var f *fieldSchema
		if int(num) < len(s.fields) {
			f = &s.fields[num]
		}
		n = -1 // not decoded as a known field: skip as unknown
		switch {
		case f != nil && f.class == classMessage && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("%s.%s: %w", s.name, f.name, protowire.ParseError(m))
			}
			// Returned unwrapped: it names the innermost field already,
			// and wrapping at every level would cost O(depth²).
			if err := f.msg.validate(v, depth); err != nil {
				return err
			}
			n = m
		case f != nil:
			var err error
			if n, err = f.check(typ, b); err != nil {
				return fmt.Errorf("%s.%s: %w", s.name, f.name, err)
			}
		}
		if n < 0 {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return fmt.Errorf("%s: field %d: %w", s.name, num, protowire.ParseError(n))
			}
		}
		b = b[n:]
	}
	return nil
}

// check decodes the value of the non-message field f at the start of b,
// with wire type typ, and returns its length, or -1 when the wire type is
// not f's (the value is then an unknown field).
func (f *fieldSchema) check(typ protowire.Type, b []byte) (int, error) {
	switch f.class {
	case classString, classBytes:
		if typ != protowire.BytesType {
			return -1, nil
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		if f.class == classString && !utf8.Valid(v) {
			return 0, errors.New("string field contains invalid UTF-8")
		}
		return n, nil
	case classVarint, classFixed32, classFixed64:
		scalarType, consume := protowire.VarintType, consumeVarint
		switch f.class {
		case classFixed32:
			scalarType, consume = protowire.Fixed32Type, consumeFixed32
		case classFixed64:
			scalarType, consume = protowire.Fixed64Type, consumeFixed64
		}
		switch {
		case typ == scalarType:
			if n := consume(b); n < 0 {
				return 0, protowire.ParseError(n)
			} else {
				return n, nil
			}
		case typ == protowire.BytesType && f.repeated: // packed
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, protowire.ParseError(n)
			}
			for len(v) > 0 {
				m := consume(v)
				if m < 0 {
					return 0, fmt.Errorf("packed element: %w", protowire.ParseError(m))
				}
				v = v[m:]
			}
			return n, nil
		}
	}
	return -1, nil
}

func consumeVarint(b []byte) int {
	_, n := protowire.ConsumeVarint(b)
	return n
}

func consumeFixed32(b []byte) int {
	_, n := protowire.ConsumeFixed32(b)
	return n
}

func consumeFixed64(b []byte) int {
	_, n := protowire.ConsumeFixed64(b)
	return n
}
