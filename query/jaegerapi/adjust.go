package jaegerapi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file applies, in Jaeger's order, the adjusters Jaeger's query
// service runs on every trace it returns (unless raw=true): Zipkin shared
// span IDs made unique, tags and log fields sorted, identical spans
// removed, clock skew (disabled, as Jaeger's default max_clock_skew_adjust
// of 0s: only its warnings), IP tags as dotted strings, OpenTelemetry SDK
// tags moved to the process, invalid references removed, the parent
// reference first.

// Warnings Jaeger's adjusters add to spans.
const (
	warningTooManySpans       = "cannot assign unique span ID, too many spans in the trace"
	warningDuplicateSpanID    = "duplicate span IDs; skipping clock skew adjustment"
	warningFmtInvalidParentID = "invalid parent span IDs=%s; skipping clock skew adjustment"
	warningFmtSkewDisabled    = "clock skew adjustment disabled; not applying calculated delta of %v"
	// warningFmtInvalidRef is Jaeger's "%+v" of its SpanRef struct.
	warningFmtInvalidRef = "Invalid span reference removed {TraceID:%s SpanID:%s RefType:%s XXX_NoUnkeyedLiteral:{} XXX_unrecognized:[] XXX_sizecache:0}"
)

// adjust runs the adjusters on the spans of one trace and returns them
// (some may be removed).
func adjust(spans []*span) []*span {
	uniquifyServerSpanIDs(spans)
	for _, s := range spans {
		sortTagsAndLogFields(s)
	}
	spans = dedupe(spans)
	clockSkewWarnings(spans)
	for _, s := range spans {
		ipTags(s.tags)
		ipTags(s.process.tags)
		sortKeyValues(s.process.tags)
	}
	for _, s := range spans {
		moveSDKTags(s)
	}
	for _, s := range spans {
		dropInvalidReferences(s)
		parentReferenceFirst(s)
	}
	return spans
}

// compareKeyValues orders tags by key, then type, then value.
func compareKeyValues(a, b *keyValue) int {
	if c := strings.Compare(a.key, b.key); c != 0 {
		return c
	}
	if a.typ != b.typ {
		if a.typ < b.typ {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.str, b.str); c != 0 {
		return c
	}
	if a.b != b.b {
		if !a.b {
			return -1
		}
		return 1
	}
	if a.i != b.i {
		if a.i < b.i {
			return -1
		}
		return 1
	}
	if a.f != b.f {
		if a.f < b.f {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.bin, b.bin)
}

func sortKeyValues(kvs []keyValue) {
	slices.SortStableFunc(kvs, func(a, b keyValue) int { return compareKeyValues(&a, &b) })
}

// sortTagsAndLogFields sorts the span's and its process's tags, and each
// log's fields with a string "event" field first.
func sortTagsAndLogFields(s *span) {
	sortKeyValues(s.tags)
	sortKeyValues(s.process.tags)
	for i := range s.logs {
		fields := s.logs[i].fields
		offset := 0
		for j, f := range fields {
			if f.key == logEventField && f.typ == typeString {
				fields[0], fields[j] = fields[j], fields[0]
				offset = 1
				break
			}
		}
		if len(fields) > 1 {
			sortKeyValues(fields[offset:])
		}
	}
}

// hasKind reports whether the span's first span.kind tag reads kind.
func (s *span) hasKind(kind string) bool {
	for i := range s.tags {
		if s.tags[i].key == tagSpanKind {
			return s.tags[i].text() == kind
		}
	}
	return false
}

// text is the value as Jaeger's KeyValue.AsString gives it.
func (kv *keyValue) text() string {
	switch kv.typ {
	case typeString:
		return kv.str
	case typeBool:
		return strconv.FormatBool(kv.b)
	case typeInt64:
		return strconv.FormatInt(kv.i, 10)
	case typeFloat64:
		return strconv.FormatFloat(kv.f, 'g', 10, 64)
	}
	return fmt.Sprintf("%x", kv.bin)
}

// parentID is the first CHILD_OF reference in the span's trace, else the
// first FOLLOWS_FROM one, else 0 (Jaeger's Span.ParentSpanID).
func (s *span) parentID() uint64 {
	var follows *spanRef
	for i := range s.refs {
		r := &s.refs[i]
		if r.traceID != s.traceID {
			continue
		}
		if r.typ == refChildOf {
			return r.spanID
		}
		if follows == nil {
			follows = r
		}
	}
	if follows != nil {
		return follows.spanID
	}
	return 0
}

// replaceParentID points the span's parent reference at id, adding a
// CHILD_OF reference first when it has none.
func (s *span) replaceParentID(id uint64) {
	old := s.parentID()
	for i := range s.refs {
		if s.refs[i].spanID == old && s.refs[i].traceID == s.traceID {
			s.refs[i].spanID = id
			return
		}
	}
	if id == 0 {
		return
	}
	for _, r := range s.refs {
		if r.spanID == id && r.traceID == s.traceID {
			return
		}
	}
	s.refs = append([]spanRef{{traceID: s.traceID, spanID: id, typ: refChildOf}}, s.refs...)
}

// uniquifyServerSpanIDs gives a server span that shares its ID with a
// client span (Zipkin's shared spans) a new ID, child of the shared one.
func uniquifyServerSpanIDs(spans []*span) {
	byID := map[uint64][]*span{}
	for _, s := range spans {
		byID[s.spanID] = append(byID[s.spanID], s)
	}
	sharedWithClient := func(id uint64) bool {
		for _, s := range byID[id] {
			if s.hasKind("client") {
				return true
			}
		}
		return false
	}
	var maxUsed uint64
	renamed := map[uint64]uint64{}
	for _, s := range spans {
		if !s.hasKind("server") || !sharedWithClient(s.spanID) {
			continue
		}
		newID, ok := uint64(0), false
		for id := maxUsed + 1; id < math.MaxUint64; id++ {
			if _, taken := byID[id]; !taken {
				maxUsed, newID, ok = id, id, true
				break
			}
		}
		if !ok {
			s.warnings = append(s.warnings, warningTooManySpans)
			continue
		}
		renamed[s.spanID] = newID
		s.replaceParentID(s.spanID)
		s.spanID = newID
	}
	for _, s := range spans {
		if id, ok := renamed[s.parentID()]; ok && s.spanID != id {
			s.replaceParentID(id)
		}
	}
}

// dedupe removes spans identical in every field to an earlier one.
func dedupe(spans []*span) []*span {
	if len(spans) < 2 {
		return spans
	}
	seen := make(map[string]bool, len(spans))
	out := spans[:0]
	var buf []byte
	for _, s := range spans {
		buf = s.appendIdentity(buf[:0])
		if seen[string(buf)] {
			continue
		}
		seen[string(buf)] = true
		out = append(out, s)
	}
	return out
}

// appendIdentity appends an encoding of every field of the span, equal
// for two spans exactly when they are identical.
func (s *span) appendIdentity(b []byte) []byte {
	b = binary.AppendUvarint(b, s.traceID.high)
	b = binary.AppendUvarint(b, s.traceID.low)
	b = binary.AppendUvarint(b, s.spanID)
	b = appendString(b, s.name)
	b = binary.AppendUvarint(b, uint64(len(s.refs)))
	for _, r := range s.refs {
		b = binary.AppendUvarint(b, r.traceID.high)
		b = binary.AppendUvarint(b, r.traceID.low)
		b = binary.AppendUvarint(b, r.spanID)
		b = append(b, byte(r.typ))
	}
	b = binary.AppendVarint(b, s.start.UnixNano())
	b = binary.AppendVarint(b, int64(s.duration))
	b = appendKeyValues(b, s.tags)
	b = binary.AppendUvarint(b, uint64(len(s.logs)))
	for _, l := range s.logs {
		b = binary.AppendVarint(b, l.ts.UnixNano())
		b = appendKeyValues(b, l.fields)
	}
	b = s.process.appendIdentity(b)
	b = binary.AppendUvarint(b, uint64(len(s.warnings)))
	for _, w := range s.warnings {
		b = appendString(b, w)
	}
	return b
}

// appendIdentity appends an encoding of the process, equal for two
// processes exactly when they are identical.
func (p *process) appendIdentity(b []byte) []byte {
	return appendKeyValues(appendString(b, p.service), p.tags)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendKeyValues(b []byte, kvs []keyValue) []byte {
	b = binary.AppendUvarint(b, uint64(len(kvs)))
	for _, kv := range kvs {
		b = append(appendString(b, kv.key), byte(kv.typ))
		switch kv.typ {
		case typeString:
			b = appendString(b, kv.str)
		case typeBool:
			if kv.b {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case typeInt64:
			b = binary.AppendVarint(b, kv.i)
		case typeFloat64:
			b = binary.AppendUvarint(b, math.Float64bits(kv.f))
		default:
			b = appendString(b, string(kv.bin))
		}
	}
	return b
}

// hostKey is the host of the span's process: its "ip" tag as text.
func hostKey(s *span) string {
	for i := range s.process.tags {
		t := &s.process.tags[i]
		if t.key != "ip" {
			continue
		}
		switch t.typ {
		case typeString:
			return t.str
		case typeInt64:
			var ip [4]byte
			binary.BigEndian.PutUint32(ip[:], uint32(t.i))
			return net.IP(ip[:]).String()
		case typeBinary:
			if l := len(t.bin); l == 4 || l == 16 {
				return net.IP(t.bin).String()
			}
		}
		return ""
	}
	return ""
}

// clockSkewWarnings adds the warnings of Jaeger's clock skew adjuster
// with adjustment disabled: on spans with a duplicate ID or a missing
// parent, and on spans whose times do not fit in their parent's (from
// another host) the delta it would have applied. No time changes.
func clockSkewWarnings(spans []*span) {
	type node struct {
		s        *span
		host     string
		children []*node
	}
	nodes := make(map[uint64]*node, len(spans))
	var order []*node
	for _, s := range spans {
		if _, dup := nodes[s.spanID]; dup {
			s.warnings = append(s.warnings, warningDuplicateSpanID)
			continue
		}
		n := &node{s: s, host: hostKey(s)}
		nodes[s.spanID] = n
		order = append(order, n)
	}
	var roots []*node
	for _, n := range order {
		pid := n.s.parentID()
		if pid == 0 {
			roots = append(roots, n)
			continue
		}
		if p, ok := nodes[pid]; ok {
			p.children = append(p.children, n)
			continue
		}
		n.s.warnings = append(n.s.warnings, fmt.Sprintf(warningFmtInvalidParentID, formatSpanID(pid)))
		roots = append(roots, n)
	}
	type visit struct {
		n, parent *node
		host      string
		delta     time.Duration
	}
	var stack []visit
	for _, r := range roots {
		stack = append(stack, visit{n: r, host: r.host})
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v.parent != nil && (v.n.host != v.host || v.n.host == "") {
			v.host, v.delta = v.n.host, skew(v.n.s, v.parent.s)
		}
		if v.delta != 0 {
			v.n.s.warnings = append(v.n.s.warnings, fmt.Sprintf(warningFmtSkewDisabled, v.delta))
		}
		for _, c := range v.n.children {
			stack = append(stack, visit{n: c, parent: v.n, host: v.host, delta: v.delta})
		}
	}
}

// skew is the delta Jaeger would move child by to fit it in parent.
func skew(child, parent *span) time.Duration {
	pEnd := parent.start.Add(parent.duration)
	cEnd := child.start.Add(child.duration)
	if child.duration > parent.duration {
		if child.start.Before(parent.start) {
			return parent.start.Sub(child.start)
		}
		return 0
	}
	if !child.start.Before(parent.start) && !cEnd.After(pEnd) {
		return 0
	}
	latency := (parent.duration - child.duration) / 2
	return parent.start.Add(latency).Sub(child.start)
}

// ipTags rewrites numeric "ip" and "peer.ipv4" tags as dotted IPv4.
func ipTags(tags []keyValue) {
	for i, t := range tags {
		if t.key != "ip" && t.key != "peer.ipv4" {
			continue
		}
		var v uint32
		switch t.typ {
		case typeInt64:
			v = uint32(t.i)
		case typeFloat64:
			v = uint32(t.f)
		default:
			continue
		}
		tags[i] = stringTag(t.key, fmt.Sprintf("%d.%d.%d.%d", byte(v>>24), byte(v>>16), byte(v>>8), byte(v)))
	}
}

// sdkTagKeys are the span tags Jaeger moves to the process.
var sdkTagKeys = map[string]bool{
	"telemetry.sdk.language":   true,
	"telemetry.sdk.name":       true,
	"telemetry.sdk.version":    true,
	"telemetry.distro.name":    true,
	"telemetry.distro.version": true,
}

// moveSDKTags moves the OpenTelemetry SDK's tags from the span to its
// process.
func moveSDKTags(s *span) {
	kept := s.tags[:0]
	for _, t := range s.tags {
		if sdkTagKeys[t.key] {
			s.process.tags = append(s.process.tags, t)
			continue
		}
		kept = append(kept, t)
	}
	s.tags = kept
	sortKeyValues(s.process.tags)
}

// dropInvalidReferences removes references with a zero trace ID.
func dropInvalidReferences(s *span) {
	if !slices.ContainsFunc(s.refs, func(r spanRef) bool { return r.traceID == traceID{} }) {
		return
	}
	kept := make([]spanRef, 0, len(s.refs)-1)
	for _, r := range s.refs {
		if r.traceID == (traceID{}) {
			s.warnings = append(s.warnings, fmt.Sprintf(warningFmtInvalidRef, r.traceID, formatSpanID(r.spanID), r.typ))
			continue
		}
		kept = append(kept, r)
	}
	s.refs = kept
}

// parentReferenceFirst moves the first CHILD_OF reference in the span's
// trace (else the first other reference in it) to the front.
func parentReferenceFirst(s *span) {
	child, other := -1, -1
	for i, r := range s.refs {
		if r.traceID != s.traceID {
			continue
		}
		if r.typ == refChildOf {
			child = i
			break
		}
		if other == -1 {
			other = i
		}
	}
	swap := child
	if swap == -1 {
		swap = other
	}
	if swap > 0 {
		s.refs[swap], s.refs[0] = s.refs[0], s.refs[swap]
	}
}
