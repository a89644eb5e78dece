package zipkin

import (
	"hash/fnv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// v2Annotation is a v2 annotation (an OTLP span event).
type v2Annotation struct {
	ts    int64 // µs
	value string
}

// tag is a v2 tag (an OTLP string attribute).
type tag struct {
	key, value string
}

// v2Span is a v2 span object.
type v2Span struct {
	traceID   [16]byte
	id        [8]byte
	parentID  [8]byte
	hasParent bool
	kind      tracepb.Span_SpanKind
	name      string
	ts, dur   int64 // µs; 0 = absent
	local     endpoint
	remote    endpoint
	hasRemote bool
	anns      []v2Annotation
	tags      []tag
	shared    bool

	index int   // position in the input array
	off   int64 // and byte offset
}

func (sp *v2Span) reset() {
	*sp = v2Span{anns: reuse(sp.anns), tags: reuse(sp.tags)}
}

// isSharedServer reports whether sp is the server side of a span ID it
// shares with its client.
func (sp *v2Span) isSharedServer() bool {
	return sp.shared && sp.kind == tracepb.Span_SPAN_KIND_SERVER
}

// parseV2 reads a v2 span object at the current position (at its '{').
func (d *decoder) parseV2(sp *v2Span) error {
	s := d.s
	objOff := s.offset()
	s.pos++
	var hasTrace, hasID bool
	sp.kind = tracepb.Span_SPAN_KIND_INTERNAL
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
		case "kind":
			sp.kind, err = d.kind()
			err = inField(err, "kind")
		case "name":
			sp.name, err = d.internStr("a string")
			err = inField(err, "name")
		case "timestamp":
			sp.ts, err = s.micros()
			err = inField(err, "timestamp")
		case "duration":
			sp.dur, err = s.micros()
			err = inField(err, "duration")
		case "localEndpoint":
			_, err = d.endpoint(&sp.local)
			err = inField(err, "localEndpoint")
		case "remoteEndpoint":
			sp.hasRemote, err = d.endpoint(&sp.remote)
			err = inField(err, "remoteEndpoint")
		case "annotations":
			err = inField(d.v2Annotations(sp), "annotations")
		case "tags":
			err = inField(d.tags(sp), "tags")
		case "shared":
			sp.shared, err = s.boolean()
			err = inField(err, "shared")
		case "binaryAnnotations":
			return inField(s.errAt(s.offset(),
				"a Zipkin v1 member: this looks like Zipkin v1 JSON (POST it to /api/v1/spans)"), "binaryAnnotations")
		default: // debug and unknown members
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
		sp.hasParent = false
	}
	return nil
}

// kind reads a v2 span kind; null is INTERNAL.
func (d *decoder) kind() (tracepb.Span_SpanKind, error) {
	s := d.s
	off := s.offset()
	b, _, err := s.str("a string")
	if err != nil || len(b) == 0 {
		return tracepb.Span_SPAN_KIND_INTERNAL, err
	}
	switch {
	case strings.EqualFold(string(b), "CLIENT"):
		return tracepb.Span_SPAN_KIND_CLIENT, nil
	case strings.EqualFold(string(b), "SERVER"):
		return tracepb.Span_SPAN_KIND_SERVER, nil
	case strings.EqualFold(string(b), "PRODUCER"):
		return tracepb.Span_SPAN_KIND_PRODUCER, nil
	case strings.EqualFold(string(b), "CONSUMER"):
		return tracepb.Span_SPAN_KIND_CONSUMER, nil
	}
	return 0, s.errAt(off, "want CLIENT, SERVER, PRODUCER or CONSUMER, got %q", b)
}

func (d *decoder) v2Annotations(sp *v2Span) error {
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
		a, err := d.v2Annotation()
		if err != nil {
			return inElem(err, i)
		}
		sp.anns = append(sp.anns, a)
	}
}

func (d *decoder) v2Annotation() (a v2Annotation, err error) {
	s := d.s
	off := s.offset()
	if s.cur() != '{' {
		return a, s.typeErr("an annotation object")
	}
	s.pos++
	var hasValue bool
	for first := true; ; first = false {
		key, ok, err := s.nextKey(first)
		if err != nil {
			return a, err
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
		default:
			err = s.skipValue(0)
		}
		if err != nil {
			return a, err
		}
	}
	switch {
	case a.ts == 0:
		return a, s.errAt(off, `missing "timestamp"`)
	case !hasValue:
		return a, s.errAt(off, `missing "value"`)
	}
	return a, nil
}

// tags reads the tags object: string values (numbers and bools are kept
// as their JSON text, null skips the tag); a repeated key keeps the last
// value.
func (d *decoder) tags(sp *v2Span) error {
	s := d.s
	if null, err := s.isNull(); null || err != nil {
		return err
	}
	if s.cur() != '{' {
		return s.typeErr("an object of string tags")
	}
	s.pos++
	for first := true; ; first = false {
		key, ok, err := s.nextKey(first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		k := d.intern(key)
		var v string
		switch c := s.cur(); {
		case c == '"':
			b, err := s.readString()
			if err != nil {
				return inField(err, k)
			}
			v = string(b)
		case c == 't' || c == 'f' || c == 'n':
			lit, err := s.readLiteral()
			switch {
			case err != nil:
				return inField(err, k)
			case lit == 'n':
				continue
			case lit == 't':
				v = "true"
			default:
				v = "false"
			}
		case c == '-' || c >= '0' && c <= '9':
			num, err := s.readNumber()
			if err != nil {
				return inField(err, k)
			}
			v = string(num)
		default:
			return inField(s.typeErr("a string"), k)
		}
		if len(sp.tags) >= maxAnnotations {
			return s.errAt(s.offset(), "more than %d tags", maxAnnotations)
		}
		sp.tags = append(sp.tags, tag{k, v})
	}
	sp.tags = dedupeLast(sp.tags, func(t tag) string { return t.key }, &d.attrIdx)
	return nil
}

// serviceHash is the hash of a service name kept in the ID memory.
func serviceHash(service string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(service))
	return h.Sum32()
}

// sharedParent resolves the parent of a v2 span that is not itself a
// shared server: when its parent ID is that of a shared server span in
// the same service (in the buffer, or remembered), the child hangs under
// the server's derived ID.
func (d *decoder) sharedParent(tb *traceBuf, sp *v2Span) ([8]byte, bool) {
	for _, j := range tb.sharedV2(sp.parentID) {
		if p := tb.v2[j]; p.local.service == sp.local.service {
			return DerivedSpanID(tb.id, p.id, 1), true
		}
	}
	if e, ok := d.mem.get(spanKey{tb.id, sp.parentID}); ok && e.service == serviceHash(sp.local.service) {
		d.stats.ParentsRemembered++
		return e.target, true
	}
	return [8]byte{}, false
}

// convertV2 converts sp into one OTLP span appended to d.out.
func (d *decoder) convertV2(tb *traceBuf, sp *v2Span, traceID []byte) error {
	start := sp.ts
	if start == 0 {
		for _, a := range sp.anns {
			if start == 0 || a.ts < start {
				start = a.ts
			}
		}
	}
	if start == 0 {
		return d.spanErr(sp.index, sp.off, `no timestamp: the span has neither "timestamp" nor annotations`)
	}
	if start+sp.dur > maxMicros {
		return d.spanErr(sp.index, sp.off, `"timestamp" + "duration" is out of range (after year 2262)`)
	}
	span := d.newSpans(1)[0]
	span.TraceId = traceID
	switch {
	case sp.isSharedServer():
		id := DerivedSpanID(tb.id, sp.id, 1)
		span.SpanId = d.id8(id)
		span.ParentSpanId = d.id8(sp.id)
		d.stats.SharedSplit++
		d.remember(tb.id, sp.id, memEntry{target: id, service: serviceHash(sp.local.service)})
	case sp.hasParent:
		span.SpanId = d.id8(sp.id)
		if p, ok := d.sharedParent(tb, sp); ok {
			span.ParentSpanId = d.id8(p)
		} else {
			span.ParentSpanId = d.id8(sp.parentID)
		}
	default:
		span.SpanId = d.id8(sp.id)
	}
	span.Name = sp.name
	if span.Name == "" {
		span.Name = "unknown"
	}
	span.Kind = sp.kind
	span.StartTimeUnixNano = uint64(start) * 1000
	span.EndTimeUnixNano = uint64(start+sp.dur) * 1000
	for _, a := range sp.anns {
		span.Events = append(span.Events, &tracepb.Span_Event{TimeUnixNano: uint64(a.ts) * 1000, Name: a.value})
	}
	if len(sp.tags) > 0 {
		span.Attributes = make([]*commonpb.KeyValue, 0, len(sp.tags)+4)
	}
	for _, t := range sp.tags {
		span.Attributes = append(span.Attributes, strAttr(t.key, t.value))
		if t.key == "error" {
			span.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: t.value}
		}
	}
	if sp.hasRemote {
		r := &sp.remote
		if r.service != "" {
			addAttr(span, strAttr("peer.service", r.service))
		}
		switch sp.kind {
		case tracepb.Span_SPAN_KIND_CLIENT, tracepb.Span_SPAN_KIND_PRODUCER:
			addressAttrs(span, r, "server.address", "server.port", addAttr)
		case tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CONSUMER:
			addressAttrs(span, r, "client.address", "client.port", addAttr)
		}
	}
	if sp.dur == 0 {
		setAttr(span, durationUnknownAttr)
		d.stats.Incomplete++
	}
	if sp.local.service == "" {
		d.stats.EmptyServiceNames++
	}
	d.out = append(d.out, outSpan{res: d.resource(sp.local.service), span: span})
	return nil
}
