// Merging Zipkin v1 span objects of the same ID and converting a planned
// object into OTLP spans, with its binary annotations as attributes.

package zipkin

import (
	"slices"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

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
