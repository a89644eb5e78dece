package zipkinapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/openzipkin/zipkin-go/model"
)

// traceIDsOf decodes a list of traces with zipkin-go's model and returns
// their trace IDs, checking that each trace's spans share one.
func traceIDsOf(t *testing.T, body []byte) []string {
	t.Helper()
	var traces [][]model.SpanModel
	if err := json.Unmarshal(body, &traces); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	ids := []string{}
	for _, tr := range traces {
		if len(tr) == 0 {
			t.Fatalf("empty trace in %s", body)
		}
		for _, s := range tr {
			if s.TraceID != tr[0].TraceID {
				t.Errorf("trace %s holds a span of trace %s", tr[0].TraceID, s.TraceID)
			}
		}
		ids = append(ids, tr[0].TraceID.String())
	}
	return ids
}

// TestSearchSemantics checks /api/v2/traces against Zipkin's documented
// semantics on testdata: every condition on one span, names
// case-insensitive, annotationQuery keys and key=value terms joined by
// "and", durations in µs, the endTs/lookback window in ms, newest first,
// limit.
func TestSearchSemantics(t *testing.T) {
	h := newTestHandler(t, newTestDB(t))
	const (
		tsA = int64(1714564200000) // ms of trace A's root span
		tsB = int64(1714564500000)
	)
	all := []string{traceC, traceE, traceB, traceA}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", all},
		{"spanName=all", all},
		{"limit=2", []string{traceC, traceE}},
		{"limit=2147483647", all},
		{"lookback=259200000", append(slices.Clone(all), traceD)},
		{"serviceName=frontend", []string{traceA}},
		{"serviceName=frontend&lookback=259200000", []string{traceA, traceD}},
		{"serviceName=FRONTEND", []string{traceA}},
		{"serviceName=orders", []string{traceB}}, // stored as "Orders"
		{"serviceName=Orders&spanName=SEND%20ORDER", []string{traceB}},
		{"serviceName=nobody", nil},
		{"serviceName=backend", []string{traceC, traceA}},
		{"spanName=select", []string{traceA}},
		{"serviceName=frontend&spanName=select", nil}, // select is backend's
		{"serviceName=backend&spanName=select", []string{traceA}},
		{"remoteServiceName=mysql", []string{traceA}},
		{"remoteServiceName=MySQL&serviceName=backend", []string{traceA}},
		{"remoteServiceName=mysql&serviceName=frontend", nil},
		{"remoteServiceName=kafka", []string{traceB}},
		{"remoteServiceName=postgres", []string{traceE}},
		{"serviceName=backend&remoteServiceName=frontend", []string{traceA}}, // the shared server's remote endpoint
		{"annotationQuery=error", []string{traceE, traceA}},
		{"annotationQuery=error=timeout", []string{traceA}},
		{"annotationQuery=error=true", []string{traceE}},
		{"annotationQuery=" + url.QueryEscape(" error = timeout "), []string{traceA}},
		{"annotationQuery=started", []string{traceC}},         // an annotation value
		{"annotationQuery=job", []string{traceC}},             // a tag key
		{"annotationQuery=job=cleanup", []string{traceC}},     // a tag
		{"annotationQuery=job=CLEANUP", nil},                  // tag values are case-sensitive
		{"annotationQuery=cleanup", nil},                      // a tag value alone is no key
		{"annotationQuery=retry+and+error", []string{traceA}}, // one span has both
		{"annotationQuery=retry+and+error=timeout+and+sql.query=SELECT+1", []string{traceA}},
		{"annotationQuery=tier=api+and+error", nil}, // on two different spans
		{"annotationQuery=tier=api+and+tier", []string{traceA}},
		{"annotationQuery=tier=web+and+tier=api", []string{traceA}}, // the last value wins
		{"annotationQuery=tier+and+tier=web", nil},
		{"annotationQuery=job+and+", nil}, // an empty term matches no span, as in Zipkin
		{"annotationQuery=job+AND+started", nil},
		{"serviceName=frontend&annotationQuery=http.status_code=200", []string{traceA}},
		{"serviceName=backend&annotationQuery=http.status_code=200", nil},
		{"annotationQuery=http.status_code=200", []string{traceE, traceA}}, // E's is copied from http.response.status_code
		{"annotationQuery=cached=true", []string{traceE}},
		{"annotationQuery=ratio=0.25", []string{traceE}},
		{"annotationQuery=big=1234567", []string{traceE}},  // a double: 1.234567e+06 in the index
		{"annotationQuery=payload=aGk=", []string{traceE}}, // bytes, base64
		{"annotationQuery=tags=" + url.QueryEscape(`["a","<b>"]`), []string{traceE}},
		{"annotationQuery=host.name=h1", []string{traceE}}, // a resource attribute
		{"annotationQuery=otel.scope.name=io.opentelemetry.http", []string{traceE}},
		{"annotationQuery=span.kind=internal", []string{traceE}},
		{"annotationQuery=otel.status_code=ERROR+and+error", []string{traceE}},
		{"annotationQuery=peer.service=Postgres", nil}, // it became the remote endpoint
		{"annotationQuery=retry=false", []string{traceA}},
		{"annotationQuery=ws", []string{traceA}},
		{"annotationQuery=" + url.QueryEscape("cache miss|{\"key\":\"k\\u003c1\\u003e\"}|0"), []string{traceE}},
		{"minDuration=400000", []string{traceC}},
		{"minDuration=500000", []string{traceC}},
		{"minDuration=500001", nil},
		{"minDuration=100000&maxDuration=200000", []string{traceA}},
		{"minDuration=12346&maxDuration=12346", []string{traceE}}, // 12345.6 µs rounds up
		{"minDuration=1&maxDuration=1", []string{traceE}},         // 400 ns is 1 µs
		{"serviceName=backend&minDuration=400000", []string{traceC}},
		{"serviceName=frontend&minDuration=400000", nil},
		{"serviceName=frontend&minDuration=100000&maxDuration=100000", []string{traceA}}, // the client span
		{"serviceName=backend&minDuration=100000", []string{traceC}},
		{"serviceName=backend&minDuration=90001", []string{traceC}},
		{"serviceName=backend&minDuration=90000&maxDuration=90000", []string{traceA}}, // the shared server span
		{"serviceName=orders&minDuration=1", nil},                                     // the producer span has no duration
		{"remoteServiceName=mysql&minDuration=50001", nil},
		{"remoteServiceName=mysql&minDuration=50000&maxDuration=50000", []string{traceA}},
		{fmt.Sprintf("endTs=%d&lookback=120000", tsB+60000), []string{traceB}},
		{fmt.Sprintf("endTs=%d&lookback=1", tsB), []string{traceB}}, // inclusive at both ends
		{fmt.Sprintf("endTs=%d&lookback=1", tsB-1), nil},
		{fmt.Sprintf("endTs=%d&lookback=1", tsB+1), []string{traceB}},
		{fmt.Sprintf("endTs=%d&lookback=1", tsB+2), []string{traceB}}, // the consumer span at +2 ms
		{fmt.Sprintf("endTs=%d&lookback=1", tsB+4), nil},
		{fmt.Sprintf("endTs=%d", tsA+59), []string{traceA}},
		{fmt.Sprintf("endTs=%d&serviceName=backend&spanName=render", tsA+59), nil}, // render starts at +60 ms
		{fmt.Sprintf("endTs=%d&serviceName=backend&spanName=render", tsA+60), []string{traceA}},
		{fmt.Sprintf("endTs=%d&lookback=%d", tsA, tsA), []string{traceA, traceD}},
		{fmt.Sprintf("endTs=%d&lookback=%d", tsA, tsA+1000), []string{traceA, traceD}}, // before the epoch
		{"endTs=9223372036854775807&lookback=9223372036854775807", append(slices.Clone(all), traceD)},
		{"endTs=1", nil},
	} {
		t.Run(tt.query, func(t *testing.T) {
			r := get(t, h, "/api/v2/traces?"+tt.query)
			if r.code != 200 {
				t.Fatalf("%d %s", r.code, r.body)
			}
			got := traceIDsOf(t, r.body)
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("traces %v, want %v", got, want)
			}
		})
	}
}

// TestTraceManyLimits checks traceMany with the most IDs Zipkin takes:
// the found traces come in the order asked, unknown ones are left out.
func TestTraceManyLimits(t *testing.T) {
	h := newTestHandler(t, newTestDB(t))
	ids := strings.Split(manyIDs(998), ",")
	ids = append(ids, traceA, strings.ToUpper(traceE))
	r := get(t, h, "/api/v2/traceMany?traceIds="+strings.Join(ids, ","))
	if r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	if got := traceIDsOf(t, r.body); !slices.Equal(got, []string{traceA, traceE}) {
		t.Errorf("traces %v", got)
	}
	r = get(t, h, "/api/v2/traceMany?traceIds=abc,def")
	if r.code != 200 || string(r.body) != "[]" {
		t.Errorf("unknown IDs: %d %s", r.code, r.body)
	}
}
