package zipkinapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// memStore is a store of one trace that evaluates TraceQuery.SpanFilter
// on each of its spans, as the store does on candidates.
type memStore struct{ td *tracepb.TracesData }

func (m memStore) FindTraces(_ context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	for _, rs := range m.td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				if q.SpanFilter == nil || q.SpanFilter(store.SpanView{Span: sp, Resource: rs.Resource, Scope: ss.Scope}) {
					return []store.TraceSummary{{TraceID: store.TraceID(sp.TraceId)}}, nil
				}
			}
		}
	}
	return nil, nil
}

func (m memStore) Trace(context.Context, store.TraceID) (*tracepb.TracesData, error) {
	return m.td, nil
}

func (m memStore) Services(context.Context, time.Time, time.Time) ([]store.ServiceStats, error) {
	return []store.ServiceStats{{Name: "Svc"}}, nil
}

func (m memStore) Operations(context.Context, string) ([]store.Operation, error) {
	return []store.Operation{{Name: "Op"}, {Name: "op"}}, nil
}

func (m memStore) FlowGraph(context.Context, time.Time, time.Time, aggregate.GraphQuery) (*aggregate.Graph, error) {
	return &aggregate.Graph{}, nil
}

// fuzzTrace is a small trace with tags, events and endpoints.
func fuzzTrace() *tracepb.TracesData {
	start := uint64(t0.Add(-time.Minute).UnixNano())
	return &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "Svc"), str("env", "prod")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "lib"}, Spans: []*tracepb.Span{{
			TraceId: make16(1), SpanId: make8(1), Name: "Op", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: start, EndTimeUnixNano: start + 5_000_000,
			Attributes: []*commonpb.KeyValue{str("peer.service", "db"), str("k", "v"), intKV("n", 3)},
			Events:     []*tracepb.Span_Event{{TimeUnixNano: start + 1000, Name: "retry"}},
			Status:     &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR},
		}}}},
	}}}
}

// FuzzParseQuery feeds arbitrary query strings to /api/v2/traces: the
// handler answers 200 with a list of traces or 400 with a message, never
// panics, and a valid query's fields keep their invariants.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "serviceName=svc&spanName=op&limit=5", "annotationQuery=error+and+k%3Dv", "minDuration=1&maxDuration=2",
		"endTs=1&lookback=1", "limit=abc", "remoteServiceName=DB", "minDuration=9223372036854775807",
		"endTs=9223372036854775807&lookback=9223372036854775807", "limit=-1&limit=2", "annotationQuery=%3D and %3D",
	} {
		f.Add(s)
	}
	h := NewHandler(Options{Store: memStore{fuzzTrace()}, Now: func() time.Time { return t0 }})
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 4096 {
			return
		}
		v, _ := url.ParseQuery(raw)
		q, err := parseTraceQuery(v, t0, time.Hour)
		if err == nil {
			switch {
			case q.Limit < 1 || q.Limit > MaxLimit, q.EndTs <= 0, q.Lookback <= 0,
				q.MinDuration < 0, q.MaxDuration < 0, q.MaxDuration > 0 && q.MaxDuration < q.MinDuration,
				q.MaxDuration > 0 && q.MinDuration == 0,
				q.ServiceName != strings.ToLower(q.ServiceName), q.SpanName == "all":
				t.Fatalf("%q: invalid query %+v", raw, q)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v2/traces?"+url.Values(v).Encode(), nil))
		switch {
		case err != nil && (rec.Code != 400 || rec.Body.String() != err.Error()):
			t.Fatalf("%q: %d %q, want 400 %q", raw, rec.Code, rec.Body, err)
		case err == nil && rec.Code != 200:
			t.Fatalf("%q: %d %q", raw, rec.Code, rec.Body)
		case err == nil:
			var traces [][]model.SpanModel
			if err := json.Unmarshal(rec.Body.Bytes(), &traces); err != nil {
				t.Fatalf("%q: %v in %s", raw, err, rec.Body)
			}
		}
	})
}

// FuzzAnnotationQuery checks that parsing never panics, keeps at most 100
// terms with unique, trimmed keys, and that rendering the terms back
// parses to the same terms.
func FuzzAnnotationQuery(f *testing.F) {
	for _, s := range []string{"", "error", "a=b and c", " a = b  and c ", "a=1 and a and a=2", "=", " and ", "a=b=c and and"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms := parseAnnotationQuery(s)
		if len(terms) > maxAnnotationTerms {
			t.Fatalf("%d terms", len(terms))
		}
		seen := map[string]bool{}
		roundTrips := len(terms) < maxAnnotationTerms
		for _, tm := range terms {
			if seen[tm.Key] {
				t.Fatalf("%q: key %q twice in %q", s, tm.Key, terms)
			}
			seen[tm.Key] = true
			if tm.Key != javaTrim(tm.Key) || tm.Value != javaTrim(tm.Value) || strings.Contains(tm.Key, "=") {
				t.Fatalf("%q: untrimmed or split term %q", s, tm)
			}
			if tm.Key == "" {
				roundTrips = false
			}
		}
		if roundTrips {
			if back := parseAnnotationQuery(annotationQueryString(terms)); !reflect.DeepEqual(back, terms) {
				t.Fatalf("%q: %q renders as %q, which parses as %q", s, terms, annotationQueryString(terms), back)
			}
		}
	})
}

// FuzzTraceID checks trace ID normalization against zipkin-go's parsing:
// a valid ID normalizes to 16 or 32 lower-case hex digits that parse to
// the same ID and print as zipkin-go prints it.
func FuzzTraceID(f *testing.F) {
	for _, s := range []string{"463ac35c9f6413ad", "0000000000000000463ac35c9f6413ad", "ABC", "0", "", "x", strings.Repeat("f", 33)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, text, err := parseTraceID(s)
		if err != nil {
			if _, ok := err.(*badRequest); !ok {
				t.Fatalf("%q: error %T", s, err)
			}
			return
		}
		if len(text) != 16 && len(text) != 32 || text != strings.ToLower(text) || id == (store.TraceID{}) {
			t.Fatalf("%q: %q", s, text)
		}
		id2, text2, err := parseTraceID(text)
		if err != nil || id2 != id || text2 != text {
			t.Fatalf("%q: %q reparses as %q, %v", s, text, text2, err)
		}
		zid, err := model.TraceIDFromHex(strings.ToLower(s))
		if err != nil || zid.String() != text {
			t.Fatalf("%q: zipkin-go reads %v (%v), we %q", s, zid, err, text)
		}
	})
}

// FuzzAppendString checks that any string becomes a JSON string that
// decodes to it (each invalid UTF-8 byte as U+FFFD, as encoding/json writes it).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\u2028", "\xff", "\x00\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var back string
		if err := json.Unmarshal(appendString(nil, s), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if back != string([]rune(s)) {
			t.Fatalf("%q decodes to %q", s, back)
		}
	})
}
