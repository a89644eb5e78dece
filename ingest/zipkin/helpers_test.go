package zipkin

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// decodeRequest unmarshals an emitted request.
func decodeRequest(t testing.TB, b []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	req := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		t.Fatalf("emitted request does not unmarshal: %v", err)
	}
	return req
}

// flatSpan is a converted span with its resource's service and instance.
type flatSpan struct {
	service, instance string
	hasService        bool
	span              *tracepb.Span
}

func flatten(reqs ...*coltracepb.ExportTraceServiceRequest) []flatSpan {
	var out []flatSpan
	for _, req := range reqs {
		for _, rs := range req.ResourceSpans {
			var f flatSpan
			for _, a := range rs.GetResource().GetAttributes() {
				switch a.Key {
				case "service.name":
					f.service, f.hasService = a.Value.GetStringValue(), true
				case "service.instance.id":
					f.instance = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					f.span = sp
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// attr returns the value of attribute k of span (string, int64, float64
// or bool), or nil.
func attr(span *tracepb.Span, k string) any {
	for _, a := range span.Attributes {
		if a.Key != k {
			continue
		}
		switch v := a.Value.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			return v.StringValue
		case *commonpb.AnyValue_IntValue:
			return v.IntValue
		case *commonpb.AnyValue_DoubleValue:
			return v.DoubleValue
		case *commonpb.AnyValue_BoolValue:
			return v.BoolValue
		}
		return a.Value.String()
	}
	return nil
}

// durationUnknown reports whether span carries flowscope.duration_unknown.
func durationUnknown(span *tracepb.Span) bool {
	for _, a := range span.Attributes {
		if a.Key == AttrDurationUnknown && a.Value.GetBoolValue() {
			return true
		}
	}
	return false
}

// shapes renders spans one per line, ordered by start time: kind, service
// (and instance), name, ID and parent labelled ("4" is span 4, "4#1" its
// DerivedSpanID hop 1), times in µs from the earliest start ("?" for an
// unknown end) and the error status.
func shapes(spans []flatSpan) []string {
	if len(spans) == 0 {
		return nil
	}
	known := map[string][][8]byte{} // trace → IDs seen
	t0 := spans[0].span.StartTimeUnixNano
	for _, f := range spans {
		tr := string(f.span.TraceId)
		for _, id := range [][]byte{f.span.SpanId, f.span.ParentSpanId} {
			if len(id) == 8 {
				known[tr] = append(known[tr], [8]byte(id))
			}
		}
		t0 = min(t0, f.span.StartTimeUnixNano)
	}
	label := func(trace, id []byte) string {
		if len(id) == 0 {
			return "-"
		}
		for _, base := range known[string(trace)] {
			for hop := 1; hop <= 4; hop++ {
				if d := DerivedSpanID([16]byte(trace), base, hop); bytes.Equal(d[:], id) {
					return short(base[:]) + "#" + fmt.Sprint(hop)
				}
			}
		}
		return short(id)
	}
	type line struct {
		start uint64
		text  string
	}
	var lines []line
	for _, f := range spans {
		sp := f.span
		svc := f.service
		if f.instance != "" {
			svc += "/" + f.instance
		}
		end := fmt.Sprint((sp.EndTimeUnixNano - t0) / 1000)
		if durationUnknown(sp) {
			end = "?"
		}
		text := fmt.Sprintf("%s %s %q id=%s parent=%s t=%d..%s",
			strings.TrimPrefix(sp.Kind.String(), "SPAN_KIND_"), svc, sp.Name,
			label(sp.TraceId, sp.SpanId), label(sp.TraceId, sp.ParentSpanId),
			(sp.StartTimeUnixNano-t0)/1000, end)
		if sp.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
			text += fmt.Sprintf(" error=%q", sp.Status.GetMessage())
		}
		lines = append(lines, line{sp.StartTimeUnixNano, text})
	}
	slices.SortFunc(lines, func(a, b line) int {
		if a.start != b.start {
			return cmpU64(a.start, b.start)
		}
		return strings.Compare(a.text, b.text)
	})
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func short(id []byte) string {
	s := strings.TrimLeft(hex.EncodeToString(id), "0")
	if s == "" {
		return "0"
	}
	return s
}

// decodeAll runs Decode and returns the unmarshaled requests.
func decodeAll(t testing.TB, input []byte, v Version, opts Options) ([]*coltracepb.ExportTraceServiceRequest, Stats, error) {
	t.Helper()
	var reqs []*coltracepb.ExportTraceServiceRequest
	st, err := Decode(bytes.NewReader(input), v, opts, func(b []byte, n int) error {
		req := decodeRequest(t, b)
		if got := len(flatten(req)); got != n {
			t.Errorf("emit reported %d spans, request holds %d", n, got)
		}
		reqs = append(reqs, req)
		return nil
	})
	return reqs, st, err
}
