package aggregate

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/otlpwire"
)

// t0 is the base time of test spans (a multiple of every window width).
var t0 = time.Unix(1_700_000_040, 0)

const ms = int64(time.Millisecond)

// kv is a string attribute.
type kv struct{ k, v string }

// tspan describes a test span. IDs are small numbers mapped through
// otlptest.TraceID/SpanID; parent 0 means a root.
type tspan struct {
	svc      string // service.name; "" leaves it out
	resAttrs []kv   // more resource attributes
	trace    uint64
	id       uint64
	parent   uint64
	name     string
	kind     tracepb.Span_SpanKind
	start    int64 // ns after t0
	dur      int64 // ns
	err      bool
	attrs    []kv
}

func strAttrs(kvs []kv) []*commonpb.KeyValue {
	out := make([]*commonpb.KeyValue, 0, len(kvs))
	for _, a := range kvs {
		out = append(out, otlptest.Str(a.k, a.v))
	}
	return out
}

// request builds an export request; consecutive spans of the same resource
// share a ResourceSpans.
func request(spans ...tspan) *coltracepb.ExportTraceServiceRequest {
	req := &coltracepb.ExportTraceServiceRequest{}
	var last string
	for _, s := range spans {
		resKey := fmt.Sprint(s.svc, s.resAttrs)
		if len(req.ResourceSpans) == 0 || resKey != last {
			var attrs []*commonpb.KeyValue
			if s.svc != "" {
				attrs = append(attrs, otlptest.Str("service.name", s.svc))
			}
			attrs = append(attrs, strAttrs(s.resAttrs)...)
			req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
				Resource:   &resourcepb.Resource{Attributes: attrs},
				ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "test"}}},
			})
			last = resKey
		}
		ss := req.ResourceSpans[len(req.ResourceSpans)-1].ScopeSpans[0]
		sp := &tracepb.Span{
			TraceId:           otlptest.TraceID(s.trace),
			SpanId:            otlptest.SpanID(s.id),
			Name:              s.name,
			Kind:              s.kind,
			StartTimeUnixNano: uint64(t0.UnixNano() + s.start),
			EndTimeUnixNano:   uint64(t0.UnixNano() + s.start + s.dur),
			Attributes:        strAttrs(s.attrs),
		}
		if s.parent != 0 {
			sp.ParentSpanId = otlptest.SpanID(s.parent)
		}
		if s.err {
			sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
		}
		ss.Spans = append(ss.Spans, sp)
	}
	return req
}

// parse marshals req and parses it as the store does.
func parse(tb testing.TB, req proto.Message) *otlpwire.Traces {
	tb.Helper()
	raw, err := proto.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	t := &otlpwire.Traces{}
	if err := otlpwire.Parse(t, raw); err != nil {
		tb.Fatal(err)
	}
	return t
}

func traces(tb testing.TB, spans ...tspan) *otlpwire.Traces {
	tb.Helper()
	return parse(tb, request(spans...))
}

// loadJSON reads an OTLP/JSON fixture from testdata and parses it.
func loadJSON(tb testing.TB, name string) *coltracepb.ExportTraceServiceRequest {
	tb.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := otlpjson.UnmarshalTraces(data)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return req
}

// testOptions are small, fast options for tests.
func testOptions() Options {
	o := DefaultOptions()
	o.PairWait = 10 * time.Second
	return o
}

// commitAt returns the commit time d after t0.
func commitAt(d time.Duration) int64 { return t0.UnixNano() + int64(d) }

// mergeAll merges windows into one window per Start.
func mergeAll(ws []*Window) map[int64]*Window {
	out := map[int64]*Window{}
	for _, w := range ws {
		m := out[w.Start]
		if m == nil {
			m = NewWindow(w.Start, w.Width)
			out[w.Start] = m
		}
		m.Merge(w)
	}
	return out
}

// edgeLines summarizes the edges of windows, merged over windows: one line
// per edge "src->dst op n=calls err=errors max=slowest exemplar".
// A virtual target is marked with '*'.
func edgeLines(ws []*Window) []string {
	merged := NewWindow(0, 1)
	for _, w := range ws {
		merged.Merge(w)
	}
	var out []string
	for k, r := range merged.Edges {
		dst := k.Target.Service
		if k.Target.Virtual {
			dst = "*" + dst
		}
		var slow int64
		if len(r.Exemplars) > 0 {
			slow = r.Exemplars[0].Value
		}
		out = append(out, fmt.Sprintf("%s->%s %s n=%d err=%d max=%s", k.Source.Service, dst, k.Operation, r.Count, r.Errors, time.Duration(slow)))
	}
	slices.Sort(out)
	return out
}

// seriesLines summarizes series merged over windows.
func seriesLines(ws []*Window) []string {
	merged := NewWindow(0, 1)
	for _, w := range ws {
		merged.Merge(w)
	}
	var out []string
	for k, r := range merged.Series {
		out = append(out, fmt.Sprintf("%s %s kind=%d status=%d n=%d err=%d", k.Node.Service, k.Operation, k.Kind, k.Status, r.Count, r.Errors))
	}
	slices.Sort(out)
	return out
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// canonical encodes merged windows for exact comparison.
func canonical(ws []*Window) map[int64]string {
	out := map[int64]string{}
	for s, w := range mergeAll(ws) {
		out[s] = string(AppendWindow(nil, w))
	}
	return out
}

// rollupBytes is the exact content of r, for comparisons.
func rollupBytes(r *Rollup) []byte {
	b, _ := appendRollup(nil, r, nil)
	return b
}
