package jaegerapi

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// splitTraces splits td by trace ID, keeping each span's resource and
// scope, in order of first appearance.
func splitTraces(td *tracepb.TracesData) (ids []string, traces map[string]*tracepb.TracesData) {
	traces = map[string]*tracepb.TracesData{}
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				id := hex.EncodeToString(sp.TraceId)
				t := traces[id]
				if t == nil {
					t = &tracepb.TracesData{}
					traces[id] = t
					ids = append(ids, id)
				}
				t.ResourceSpans = append(t.ResourceSpans, &tracepb.ResourceSpans{Resource: rs.Resource,
					ScopeSpans: []*tracepb.ScopeSpans{{Scope: ss.Scope, Spans: []*tracepb.Span{sp}}}})
			}
		}
	}
	return ids, traces
}

// TestConvertGolden pins the conversion of each fixture trace, as stored
// spans (sanitized, adjusted) and raw, to testdata/golden/convert-*.json.
// Unlike TestHandlerGolden it converts the spans as sent, so the two
// spans sharing ID c01 in trace beef (which the store keeps once) reach
// the Zipkin span ID adjuster.
func TestConvertGolden(t *testing.T) {
	ids, traces := splitTraces(fixture(t))
	for _, id := range ids {
		for _, raw := range []bool{false, true} {
			name := "convert-" + id
			if raw {
				name += "-raw"
			}
			t.Run(name, func(t *testing.T) {
				b, err := json.MarshalIndent(convertTrace(traces[id], raw), "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, name+".json", append(b, '\n'))
			})
		}
	}
}

// TestAdjusters checks the adjusters' effects one by one.
func TestAdjusters(t *testing.T) {
	tid := traceID{high: 1, low: 2}
	ms := func(n int) time.Time { return time.Unix(0, 0).Add(time.Duration(n) * time.Millisecond) }
	mk := func(id uint64, parent uint64, kind string, start, dur int, host string) *span {
		s := &span{traceID: tid, spanID: id, start: ms(start), duration: time.Duration(dur) * time.Millisecond, process: &process{service: "s"}}
		if parent != 0 {
			s.refs = []spanRef{{traceID: tid, spanID: parent}}
		}
		if kind != "" {
			s.tags = []keyValue{stringTag(tagSpanKind, kind)}
		}
		if host != "" {
			s.process.tags = []keyValue{stringTag("ip", host)}
		}
		return s
	}
	t.Run("clock skew", func(t *testing.T) {
		for _, tc := range []struct {
			name                   string
			child                  *span
			parentHost, childHost  string
			want                   []string
			childStart, childDur   int
			parentStart, parentDur int
		}{
			{name: "inside", childStart: 10, childDur: 5, parentStart: 0, parentDur: 100},
			{name: "before, shorter", childStart: -10, childDur: 20, parentStart: 0, parentDur: 100,
				want: []string{"clock skew adjustment disabled; not applying calculated delta of 50ms"}},
			{name: "longer, starts before", childStart: -5, childDur: 200, parentStart: 0, parentDur: 100,
				want: []string{"clock skew adjustment disabled; not applying calculated delta of 5ms"}},
			{name: "longer, starts after", childStart: 50, childDur: 200, parentStart: 0, parentDur: 100},
			{name: "same host", childStart: -10, childDur: 20, parentStart: 0, parentDur: 100, parentHost: "h", childHost: "h"},
			{name: "other host", childStart: -10, childDur: 20, parentStart: 0, parentDur: 100, parentHost: "h", childHost: "k",
				want: []string{"clock skew adjustment disabled; not applying calculated delta of 50ms"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := mk(1, 0, "", tc.parentStart, tc.parentDur, tc.parentHost)
				c := mk(2, 1, "", tc.childStart, tc.childDur, tc.childHost)
				clockSkewWarnings([]*span{c, p})
				if p.warnings != nil || !equalStrings(c.warnings, tc.want) {
					t.Errorf("warnings: parent %q, child %q, want child %q", p.warnings, c.warnings, tc.want)
				}
			})
		}
	})
	t.Run("duplicate and missing parents", func(t *testing.T) {
		a, b, c := mk(1, 0, "", 0, 10, ""), mk(1, 0, "", 0, 11, ""), mk(3, 9, "", 0, 1, "")
		clockSkewWarnings([]*span{a, b, c})
		if a.warnings != nil || !equalStrings(b.warnings, []string{warningDuplicateSpanID}) ||
			!equalStrings(c.warnings, []string{"invalid parent span IDs=0000000000000009; skipping clock skew adjustment"}) {
			t.Errorf("warnings %q %q %q", a.warnings, b.warnings, c.warnings)
		}
	})
	t.Run("shared span IDs", func(t *testing.T) {
		client, server, child := mk(5, 4, "client", 0, 10, ""), mk(5, 0, "server", 1, 8, ""), mk(6, 5, "", 2, 1, "")
		uniquifyServerSpanIDs([]*span{client, server, child})
		if client.spanID != 5 || server.spanID != 1 || server.parentID() != 5 || child.parentID() != 1 {
			t.Errorf("IDs: client %d, server %d (parent %d), child's parent %d; want 5, 1 (5), 1",
				client.spanID, server.spanID, server.parentID(), child.parentID())
		}
	})
	t.Run("parent reference first", func(t *testing.T) {
		s := &span{traceID: tid, refs: []spanRef{
			{traceID: traceID{low: 9}, spanID: 1, typ: refChildOf},
			{traceID: tid, spanID: 2, typ: refFollowsFrom},
			{traceID: tid, spanID: 3, typ: refChildOf},
		}}
		parentReferenceFirst(s)
		if s.refs[0].spanID != 3 || s.refs[2].spanID != 1 {
			t.Errorf("refs %+v", s.refs)
		}
	})
	t.Run("ip tags", func(t *testing.T) {
		tags := []keyValue{{key: "ip", typ: typeInt64, i: 0x0a000102}, {key: "peer.ipv4", typ: typeFloat64, f: 3232235777}, {key: "other", typ: typeInt64, i: 5}}
		ipTags(tags)
		if tags[0].str != "10.0.1.2" || tags[1].str != "192.168.1.1" || tags[2].typ != typeInt64 {
			t.Errorf("tags %+v", tags)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRenderValues checks how tag values are written: int64 outside
// JavaScript's safe range as strings, NaN and infinities as strings,
// bytes as base64, maps and arrays as JSON text.
func TestRenderValues(t *testing.T) {
	kv := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: v} }
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "s"}})}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: make([]byte, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, 1}, Name: "n", StartTimeUnixNano: 1000, EndTimeUnixNano: 3000,
			Attributes: []*commonpb.KeyValue{
				kv("a.safe", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1<<53 - 1}}),
				kv("b.unsafe", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -(1 << 53)}}),
				kv("c.nan", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.NaN()}}),
				kv("d.inf", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.Inf(-1)}}),
				kv("e.bytes", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte("hi")}}),
				kv("f.map", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
					kv("z", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1e21}}), kv("a", &commonpb.AnyValue{})}}}}),
				kv("g.nanarray", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
					{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.NaN()}}}}}}),
			},
		}}}},
	}}}
	b, err := json.Marshal(convertTrace(td, false).Spans[0].Tags)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"key":"a.safe","type":"int64","value":9007199254740991},{"key":"b.unsafe","type":"int64","value":"-9007199254740992"},` +
		`{"key":"c.nan","type":"float64","value":"NaN"},{"key":"d.inf","type":"float64","value":"-Inf"},{"key":"e.bytes","type":"binary","value":"aGk="},` +
		`{"key":"f.map","type":"string","value":"{\"a\":null,\"z\":1e+21}"},{"key":"g.nanarray","type":"string","value":""}]`
	if string(b) != want {
		t.Errorf("tags\n got %s\nwant %s", b, want)
	}
}
