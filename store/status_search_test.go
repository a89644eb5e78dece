package store

import (
	"context"
	"slices"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// statusTraces is the number of traces written by TestSearchStatus.
const statusTraces = 40

// statusSpan is one span of trace i for TestSearchStatus.
func statusSpan(i int, svc, name string, child, lateSpan bool, code tracepb.Status_StatusCode) *tracepb.ResourceSpans {
	start := uint64(t0.Add(time.Duration(i) * time.Second).UnixNano())
	sp := &tracepb.Span{
		TraceId: otlptest.TraceID(uint64(i)), SpanId: otlptest.SpanID(uint64(10 * i)), Name: name,
		StartTimeUnixNano: start, EndTimeUnixNano: start + uint64(50*time.Millisecond),
		Status: &tracepb.Status{Code: code},
	}
	if child {
		sp.ParentSpanId = sp.SpanId
		sp.SpanId = otlptest.SpanID(uint64(10*i + 1))
		if lateSpan {
			sp.SpanId = otlptest.SpanID(uint64(10*i + 2))
		}
		sp.StartTimeUnixNano += uint64(10 * time.Millisecond)
		sp.EndTimeUnixNano -= uint64(10 * time.Millisecond)
	}
	return &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", svc)}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{sp}}},
	}
}

// statusChild is the service of the child span of trace i.
func statusChild(i int) string {
	if i%5 == 0 {
		return "cart"
	}
	return "backend"
}

// TestSearchStatus checks TraceQuery.Status: a trace fails when any of its
// spans (not only the matching one) has status ERROR, the limit applies
// after the status filter, and Status combines with the other conditions.
//
// Trace i (started at t0 + i s) has a root span in frontend and a child in
// cart (i%5 == 0) or backend. Traces with i%3 == 0 fail: with the error on
// the root span when i is even, on the child when it is odd. Trace 1 gets
// a late ERROR span in backend, written after a checkpoint, so it fails
// too while its first spans are persisted.
func TestSearchStatus(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	write := func(rs ...*tracepb.ResourceSpans) {
		t.Helper()
		b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: rs})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := db.WriteTraces(context.Background(), b); err != nil || res.Rejected != 0 {
			t.Fatalf("write: %v %+v", err, res)
		}
	}
	failing := map[int]bool{1: true}
	for i := range statusTraces {
		rootCode, childCode := tracepb.Status_STATUS_CODE_UNSET, tracepb.Status_STATUS_CODE_OK
		if i%3 == 0 {
			failing[i] = true
			if i%2 == 0 {
				rootCode = tracepb.Status_STATUS_CODE_ERROR
			} else {
				childCode = tracepb.Status_STATUS_CODE_ERROR
			}
		}
		write(statusSpan(i, "frontend", "GET /", false, false, rootCode),
			statusSpan(i, statusChild(i), "query", true, false, childCode))
		if i == statusTraces/2 {
			if err := db.checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(statusSpan(1, "backend", "retry", true, true, tracepb.Status_STATUS_CODE_ERROR))

	// want lists the traces that satisfy cond, newest first, at most
	// limit. Like every search, one with a limit takes the traces with the
	// most recently written matching spans first: trace 1 (its late span
	// matches every condition used here with a limit), then
	// trace 39 down to 0.
	want := func(limit int, cond func(i int) bool) []string {
		order := []int{1}
		for i := statusTraces - 1; i >= 0; i-- {
			if i != 1 {
				order = append(order, i)
			}
		}
		var picked []int
		for _, i := range order {
			if len(picked) < limit && cond(i) {
				picked = append(picked, i)
			}
		}
		slices.Sort(picked)
		slices.Reverse(picked)
		var out []string
		for _, i := range picked {
			var id TraceID
			copy(id[:], otlptest.TraceID(uint64(i)))
			out = append(out, id.String())
		}
		return out
	}
	isErr := func(i int) bool { return failing[i] }
	isOK := func(i int) bool { return !failing[i] }
	all := func(int) bool { return true }
	cases := []struct {
		name string
		q    TraceQuery
		want []string
	}{
		{"any", TraceQuery{Limit: MaxSearchLimit}, want(MaxSearchLimit, all)},
		{"error", TraceQuery{Status: TraceStatusError, Limit: MaxSearchLimit}, want(MaxSearchLimit, isErr)},
		{"ok", TraceQuery{Status: TraceStatusOK, Limit: MaxSearchLimit}, want(MaxSearchLimit, isOK)},
		// The 5 newest traces (35..39) hold only 2 failing ones: a limit
		// applied before the filter would return those 2.
		{"error limit", TraceQuery{Status: TraceStatusError, Limit: 5}, want(5, isErr)},
		{"ok limit", TraceQuery{Status: TraceStatusOK, Limit: 5}, want(5, isOK)},
		{"error limit 1", TraceQuery{Status: TraceStatusError, Limit: 1}, want(1, isErr)},
		{"error with service", TraceQuery{Service: "cart", Status: TraceStatusError, Limit: MaxSearchLimit},
			want(MaxSearchLimit, func(i int) bool { return i%5 == 0 && failing[i] })},
		{"ok with service and limit", TraceQuery{Service: "cart", Status: TraceStatusOK, Limit: 2},
			want(2, func(i int) bool { return i%5 == 0 && !failing[i] })},
		// The matching backend span of trace 6 is OK, its frontend root is
		// not: the trace is not ok.
		{"ok judges the whole trace", TraceQuery{Service: "backend", Status: TraceStatusOK, Limit: MaxSearchLimit},
			want(MaxSearchLimit, func(i int) bool { return i%5 != 0 && !failing[i] })},
		{"error with operation and range", TraceQuery{
			Service: "frontend", Operation: "GET /", Status: TraceStatusError, Limit: MaxSearchLimit,
			Start: t0.Add(10 * time.Second), End: t0.Add(25 * time.Second),
		}, want(MaxSearchLimit, func(i int) bool { return i >= 10 && i <= 25 && failing[i] })},
		{"error with duration", TraceQuery{MinDuration: 20 * time.Millisecond, MaxDuration: 40 * time.Millisecond, Status: TraceStatusError, Limit: 3}, want(3, isErr)},
		{"error with attribute none", TraceQuery{Attributes: map[string]string{"customer": "c0"}, Status: TraceStatusError, Limit: 3}, nil},
		{"error unknown service", TraceQuery{Service: "nobody", Status: TraceStatusError}, nil},
	}
	check := func(phase string) {
		for _, tc := range cases {
			t.Run(phase+"/"+tc.name, func(t *testing.T) {
				got, err := db.FindTraces(context.Background(), tc.q)
				if err != nil {
					t.Fatal(err)
				}
				var gotIDs []string
				for _, s := range got {
					gotIDs = append(gotIDs, s.TraceID.String())
					if tc.q.Status == TraceStatusError && s.ErrorCount == 0 ||
						tc.q.Status == TraceStatusOK && s.ErrorCount != 0 {
						t.Errorf("trace %s: error count %d", s.TraceID, s.ErrorCount)
					}
				}
				if !slices.Equal(gotIDs, tc.want) {
					t.Fatalf("got %d traces, want %d\n got %v\nwant %v", len(gotIDs), len(tc.want), gotIDs, tc.want)
				}
				if got == nil {
					t.Fatal("nil result, want empty slice")
				}
			})
		}
	}
	check("mixed")
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	check("persisted")
}
