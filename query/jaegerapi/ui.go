package jaegerapi

import (
	"math"
	"strconv"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// JavaScript's safe integer range: int64 tags outside it are rendered as
// strings, so that the UI does not round them.
const (
	jsMaxSafeInteger = int64(1)<<53 - 1
	jsMinSafeInteger = -jsMaxSafeInteger
)

// convertTrace renders the spans of one stored trace as Jaeger's query
// API does: sanitized and translated, adjusted unless raw, processes numbered p1, p2, …
// in span order.
func convertTrace(td *tracepb.TracesData, raw bool) *uiTrace {
	spans := fromOTLP(td, true)
	if !raw {
		spans = adjust(spans)
	}
	return renderTrace(spans)
}

// renderTrace renders translated spans.
func renderTrace(spans []*span) *uiTrace {
	t := &uiTrace{Spans: make([]uiSpan, len(spans)), Processes: map[string]uiProcess{}}
	var procs processTable
	for i, s := range spans {
		if i == 0 {
			t.TraceID = s.traceID.String()
		}
		id := procs.key(s.process)
		t.Spans[i] = renderSpan(s, id)
	}
	for i, p := range procs.list {
		t.Processes[processKey(i)] = uiProcess{ServiceName: p.service, Tags: renderKeyValues(p.tags)}
	}
	return t
}

func processKey(i int) string { return "p" + strconv.Itoa(i+1) }

// processTable numbers distinct processes in order of first use.
type processTable struct {
	list  []*process
	index map[string]int
}

// key returns the ID of p, an earlier equal process's if there is one. A
// process with a NaN tag equals no other (as in Jaeger).
func (pt *processTable) key(p *process) string {
	if pt.index == nil {
		pt.index = map[string]int{}
	}
	id := string(p.appendIdentity(nil))
	nan := false
	for _, t := range p.tags {
		nan = nan || (t.typ == typeFloat64 && math.IsNaN(t.f))
	}
	if i, ok := pt.index[id]; ok && !nan {
		return processKey(i)
	}
	pt.list = append(pt.list, p)
	if !nan {
		pt.index[id] = len(pt.list) - 1
	}
	return processKey(len(pt.list) - 1)
}

func renderSpan(s *span, processID string) uiSpan {
	refs := make([]uiReference, 0, len(s.refs))
	for _, r := range s.refs {
		refs = append(refs, uiReference{RefType: r.typ.String(), TraceID: r.traceID.String(), SpanID: formatSpanID(r.spanID)})
	}
	logs := make([]uiLog, len(s.logs))
	for i, l := range s.logs {
		logs[i] = uiLog{Timestamp: micros(l.ts.UnixNano()), Fields: renderKeyValues(l.fields)}
	}
	return uiSpan{
		TraceID:       s.traceID.String(),
		SpanID:        formatSpanID(s.spanID),
		OperationName: s.name,
		References:    refs,
		StartTime:     micros(s.start.UnixNano()),
		Duration:      micros(s.duration.Nanoseconds()),
		Tags:          renderKeyValues(s.tags),
		Logs:          logs,
		ProcessID:     processID,
		Warnings:      s.warnings,
	}
}

// micros converts nanoseconds to microseconds as Jaeger does (a negative
// value wraps around).
func micros(ns int64) uint64 { return uint64(ns / 1000) }

// renderKeyValues renders tags with their JSON value. A NaN or infinite
// float64 is rendered as the string "NaN", "+Inf" or "-Inf" (Jaeger fails
// the whole answer on it).
func renderKeyValues(kvs []keyValue) []uiKeyValue {
	out := make([]uiKeyValue, len(kvs))
	for i, kv := range kvs {
		var v any
		switch kv.typ {
		case typeString:
			v = kv.str
		case typeBool:
			v = kv.b
		case typeInt64:
			v = kv.i
			if kv.i > jsMaxSafeInteger || kv.i < jsMinSafeInteger {
				v = strconv.FormatInt(kv.i, 10)
			}
		case typeFloat64:
			v = kv.f
			if math.IsNaN(kv.f) || math.IsInf(kv.f, 0) {
				v = strconv.FormatFloat(kv.f, 'g', -1, 64)
			}
		default:
			v = kv.bin
		}
		out[i] = uiKeyValue{Key: kv.key, Type: typeNames[kv.typ], Value: v}
	}
	return out
}
