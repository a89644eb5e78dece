package store

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/otlpwire"
)

// wb builds protobuf bytes field by field, invalid UTF-8 included (the
// protobuf library refuses to encode that).
type wb []byte

func (w wb) str(num protowire.Number, s string) wb {
	return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), []byte(s))
}
func (w wb) msg(num protowire.Number, inner []byte) wb {
	return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), inner)
}
func (w wb) varint(num protowire.Number, v uint64) wb {
	return protowire.AppendVarint(protowire.AppendTag(w, num, protowire.VarintType), v)
}
func (w wb) fixed64(num protowire.Number, v uint64) wb {
	return protowire.AppendFixed64(protowire.AppendTag(w, num, protowire.Fixed64Type), v)
}

// kv is an encoded KeyValue with an encoded AnyValue.
func kv(key string, value wb) wb { return wb{}.str(1, key).msg(2, value) }

// strValue is an encoded AnyValue holding s.
func strValue(s string) wb { return wb{}.str(1, s) }

// deepKVList is an AnyValue of k kvlists nested in each other around a
// string (3k + 1 messages deep), built in linear time.
func deepKVList(k int) wb {
	leaf := strValue("leaf")
	anyLen, listLen, kvLen := make([]int, k+1), make([]int, k+1), make([]int, k+1)
	anyLen[0] = len(leaf)
	for i := 1; i <= k; i++ {
		kvLen[i] = 3 + 1 + protowire.SizeBytes(anyLen[i-1])
		listLen[i] = 1 + protowire.SizeBytes(kvLen[i])
		anyLen[i] = 1 + protowire.SizeBytes(listLen[i])
	}
	v := make(wb, 0, anyLen[k])
	for i := k; i >= 1; i-- {
		v = protowire.AppendVarint(protowire.AppendTag(v, 6, protowire.BytesType), uint64(listLen[i]))
		v = protowire.AppendVarint(protowire.AppendTag(v, 1, protowire.BytesType), uint64(kvLen[i]))
		v = v.str(1, "k")
		v = protowire.AppendVarint(protowire.AppendTag(v, 2, protowire.BytesType), uint64(anyLen[i-1]))
	}
	return append(v, leaf...)
}

// poisonSpan is the encoding of a valid span with the given name, parent
// (0 = root) and extra fields appended.
func poisonSpan(trace, span, parent uint64, name string, extra wb) wb {
	w := wb{}.str(1, string(otlptest.TraceID(trace))).str(2, string(otlptest.SpanID(span)))
	if parent != 0 {
		w = w.str(4, string(otlptest.SpanID(parent)))
	}
	start := uint64(t0.UnixNano()) + span*1000
	w = w.str(5, name).varint(6, 2).fixed64(7, start).fixed64(8, start+500)
	return append(w, extra...)
}

// poisonedRequest is an export request as an older version could store it
// from a gRPC client (receivers now refuse it): in trace 1, spans 1 and 4
// are valid, span 2 has invalid UTF-8 in its name and an attribute value,
// span 3 an attribute of 10,000 nested kvlists; the first scope's name is
// invalid UTF-8; a second resource has invalid UTF-8 in an attribute value
// and holds span 5, valid.
func poisonedRequest() []byte {
	scope1 := wb{}.str(1, "scope\xff").str(2, "1.0")
	spans1 := wb{}.msg(1, scope1).
		msg(2, poisonSpan(1, 1, 0, "root", wb{}.msg(9, kv("http.route", strValue("/a"))))).
		msg(2, poisonSpan(1, 2, 1, "bad\xffname", wb{}.msg(9, kv("ok", strValue("fine"))).msg(9, kv("bad", strValue("x\xc3"))).
			msg(15, wb{}.varint(3, 2)))).
		msg(2, poisonSpan(1, 3, 1, "deep", wb{}.msg(9, kv("n", wb{}.varint(3, 7))).msg(9, kv("deep", deepKVList(10_000))))).
		msg(2, poisonSpan(1, 4, 1, "leaf", nil))
	rs1 := wb{}.msg(1, wb{}.msg(1, kv("service.name", strValue("poisoned")))).msg(2, spans1)
	rs2 := wb{}.msg(1, wb{}.msg(1, kv("service.name", strValue("other"))).msg(1, kv("host", strValue("h\xfe")))).
		msg(2, wb{}.msg(2, poisonSpan(1, 5, 1, "elsewhere", nil)))
	return wb{}.msg(1, rs1).msg(1, rs2)
}

// TestReadPoisonedSpans writes spans whose bytes proto.Unmarshal refuses
// straight into the store (WriteTraces does not check UTF-8 or depth; the
// receivers do) and checks the trace is still served whole: valid spans
// unchanged, the others rebuilt from the parsed fields with
// DecodeErrorAttribute, everything encodable as protobuf and OTLP/JSON.
func TestReadPoisonedSpans(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ctx := context.Background()
	res, err := db.WriteTraces(ctx, poisonedRequest())
	if err != nil || res.Rejected != 0 || res.Accepted != 5 {
		t.Fatalf("write: %+v, %v", res, err)
	}
	var id TraceID
	copy(id[:], otlptest.TraceID(1))

	check := func(phase string) {
		td, err := db.Trace(ctx, id)
		if err != nil {
			t.Fatalf("%s: Trace: %v", phase, err)
		}
		spans := map[string]*tracepb.Span{}
		scopes := map[string]*commonpb.InstrumentationScope{}
		resources := map[string][]*commonpb.KeyValue{}
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					spans[sp.Name] = sp
					scopes[sp.Name] = ss.Scope
					resources[sp.Name] = rs.Resource.GetAttributes()
				}
			}
		}
		if len(spans) != 5 {
			t.Fatalf("%s: %d spans: %q", phase, len(spans), slices.Collect(maps.Keys(spans)))
		}
		decodeError := func(attrs []*commonpb.KeyValue) string {
			for _, a := range attrs {
				if a.Key == DecodeErrorAttribute {
					return a.Value.GetStringValue()
				}
			}
			return ""
		}
		attr := func(attrs []*commonpb.KeyValue, key string) string {
			for _, a := range attrs {
				if a.Key == key {
					return a.Value.GetStringValue()
				}
			}
			return ""
		}
		// Valid spans decode as stored.
		for _, name := range []string{"root", "leaf", "elsewhere"} {
			sp := spans[name]
			if sp == nil || decodeError(sp.Attributes) != "" || sp.Kind != tracepb.Span_SPAN_KIND_SERVER {
				t.Fatalf("%s: span %q: %v", phase, name, sp)
			}
		}
		if attr(spans["root"].Attributes, "http.route") != "/a" {
			t.Fatalf("%s: root attributes %v", phase, spans["root"].Attributes)
		}
		// Span 2: name and attribute made valid, status kept.
		bad := spans["bad\uFFFDname"]
		if bad == nil {
			t.Fatalf("%s: span with invalid UTF-8 name missing", phase)
		}
		if msg := decodeError(bad.Attributes); !strings.Contains(msg, "invalid UTF-8") {
			t.Fatalf("%s: decode error %q", phase, msg)
		}
		if attr(bad.Attributes, "ok") != "fine" || attr(bad.Attributes, "bad") != "x\uFFFD" ||
			bad.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || string(bad.ParentSpanId) != string(otlptest.SpanID(1)) ||
			string(bad.TraceId) != string(otlptest.TraceID(1)) || string(bad.SpanId) != string(otlptest.SpanID(2)) ||
			bad.StartTimeUnixNano == 0 || bad.EndTimeUnixNano != bad.StartTimeUnixNano+500 || bad.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Fatalf("%s: rebuilt span %v", phase, bad)
		}
		// Span 3: too deep; its scalar attribute kept as text.
		deep := spans["deep"]
		if decodeError(deep.Attributes) == "" || attr(deep.Attributes, "n") != "7" {
			t.Fatalf("%s: deep span %v", phase, deep)
		}
		// The scope of the first resource: name made valid, version kept.
		if sc := scopes["root"]; sc.GetName() != "scope\uFFFD" || sc.GetVersion() != "1.0" || decodeError(sc.GetAttributes()) == "" {
			t.Fatalf("%s: scope %v", phase, sc)
		}
		// The second resource: attributes made valid, service kept.
		if r := resources["elsewhere"]; attr(r, "service.name") != "other" || attr(r, "host") != "h\uFFFD" || decodeError(r) == "" {
			t.Fatalf("%s: resource %v", phase, r)
		}
		if r := resources["root"]; attr(r, "service.name") != "poisoned" || decodeError(r) != "" {
			t.Fatalf("%s: first resource %v", phase, r)
		}
		// What the query service and the REST gateway do with it.
		b, err := proto.Marshal(td)
		if err != nil {
			t.Fatalf("%s: encode: %v", phase, err)
		}
		var again tracepb.TracesData
		if err := proto.Unmarshal(b, &again); err != nil {
			t.Fatalf("%s: decode again: %v", phase, err)
		}
		if _, err := otlpjson.MarshalTracesData(&again); err != nil {
			t.Fatalf("%s: OTLP/JSON: %v", phase, err)
		}
		// Search still finds the trace, by either service.
		for _, svc := range []string{"poisoned", "other"} {
			sums, err := db.FindTraces(ctx, TraceQuery{Service: svc})
			if err != nil || len(sums) != 1 || sums[0].SpanCount != 5 {
				t.Fatalf("%s: search %s: %+v, %v", phase, svc, sums, err)
			}
		}
	}
	check("tail")
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	check("checkpointed")
}

// TestReadDepthLimit checks that a span nested as deep as the receivers
// allow is read back as stored, and one level deeper (only an older
// version could store it) is rebuilt.
func TestReadDepthLimit(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ctx := context.Background()
	// Request, ResourceSpans, ScopeSpans, Span, KeyValue, then the value:
	// 5 + 1 + 3k messages deep.
	deepest := (otlpwire.MaxDepth - 6) / 3
	for i, k := range []int{deepest, deepest + 1} {
		req := wb{}.msg(1, wb{}.msg(2, wb{}.msg(2, poisonSpan(uint64(10+i), 1, 0, "op", wb{}.msg(9, kv("v", deepKVList(k)))))))
		if err := otlpwire.ValidateTraces(req); (err == nil) != (k == deepest) {
			t.Fatalf("%d kvlists: ValidateTraces: %v", k, err)
		}
		if _, err := db.WriteTraces(ctx, req); err != nil {
			t.Fatal(err)
		}
		var id TraceID
		copy(id[:], otlptest.TraceID(uint64(10+i)))
		td, err := db.Trace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sp := td.ResourceSpans[0].ScopeSpans[0].Spans[0]
		rebuilt := slices.ContainsFunc(sp.Attributes, func(a *commonpb.KeyValue) bool { return a.Key == DecodeErrorAttribute })
		if rebuilt != (k > deepest) {
			t.Fatalf("%d kvlists: rebuilt = %v", k, rebuilt)
		}
		b, err := proto.Marshal(td)
		if err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(b, &tracepb.TracesData{}); err != nil {
			t.Fatalf("%d kvlists: the gateway could not decode it: %v", k, err)
		}
	}
}
