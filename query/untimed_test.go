package query

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
)

// Calls of unknown duration (aggregate.Rollup.RecordUntimed: spigo one-way
// messages, Zipkin halves without their end) count as calls, but their
// latency is unknown: JSON null with the count of timed calls, never 0.

// untimed returns a rollup of n calls of unknown duration, errors of them
// failed, added to r.
func untimed(r aggregate.Rollup, n, errors int) aggregate.Rollup {
	for i := range n {
		r.RecordUntimed(i < errors)
	}
	return r
}

// untimedStore is fakeStore with a flow graph and latency distributions
// holding calls of unknown duration.
type untimedStore struct{ *fakeStore }

// FlowGraph: producer -> queue is one-way messages only (every duration
// unknown), frontend -> producer is mixed (20 timed calls, 5 untimed), and
// queue's requests are all untimed.
func (untimedStore) FlowGraph(context.Context, time.Time, time.Time, aggregate.GraphQuery) (*aggregate.Graph, error) {
	return &aggregate.Graph{
		Seconds: 10,
		Nodes: []aggregate.GraphNode{
			{ID: "frontend", Requests: rollup(0, 20*ms, 10), Spans: 40},
			{ID: "producer", Requests: untimed(rollup(0, 5*ms, 20), 5, 0), Spans: 45},
			{ID: "queue", Requests: untimed(aggregate.Rollup{}, 30, 3), Spans: 30},
		},
		Edges: []aggregate.GraphEdge{
			{Source: "frontend", Target: "producer", Calls: untimed(rollup(0, 6*ms, 18, 40*ms, 2), 5, 1)},
			{Source: "producer", Target: "queue", Calls: untimed(aggregate.Rollup{}, 30, 3)},
		},
	}, nil
}

// Latency: service oneway has 4 calls of unknown duration, in the steps
// starting 11:50 and 11:55 (step 5m), none in 11:45; service mixed has 10
// timed calls of 7 ms and 90 untimed; anything else is fakeStore's.
func (s untimedStore) Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error) {
	switch q.Service {
	case "oneway":
		lat := &aggregate.Latency{Total: untimed(aggregate.Rollup{}, 4, 1)}
		if q.Step > 0 {
			lat.Series = []aggregate.LatencyStep{
				{Start: testNow.Add(-5 * time.Minute).Unix(), Rollup: untimed(aggregate.Rollup{}, 3, 0)},
				{Start: testNow.Add(-10 * time.Minute).Unix(), Rollup: untimed(aggregate.Rollup{}, 1, 1)},
			}
		}
		return lat, nil
	case "mixed":
		return &aggregate.Latency{Total: untimed(rollup(0, 7*ms, 10), 90, 0)}, nil
	}
	return s.fakeStore.Latency(ctx, start, end, q)
}

// newUntimedServer serves the gateway over untimedStore.
func newUntimedServer(t *testing.T) *httptest.Server {
	t.Helper()
	h, err := NewGatewayHandler(t.Context(), newTestService(untimedStore{newFakeStore()}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestLatencySummaryUntimed checks the quantiles of rollups with calls of
// unknown duration: computed from the timed calls only, and unset without
// any.
func TestLatencySummaryUntimed(t *testing.T) {
	timed := hist(6*ms, 18, 40*ms, 2)
	d := hdr.New(fixtureLowest, fixtureHighest, fixtureDigits)
	timed.MergeInto(d)
	tests := []struct {
		name string
		r    aggregate.Rollup
		want *querypb.LatencySummary
	}{
		{"no calls", aggregate.Rollup{}, &querypb.LatencySummary{}},
		{"only untimed calls", untimed(aggregate.Rollup{}, 30, 3), &querypb.LatencySummary{}},
		{"mixed", untimed(aggregate.Rollup{Count: 20, Hist: timed}, 5, 1), &querypb.LatencySummary{
			P50:        wrapperspb.Double(float64(d.ValueAtQuantile(50))),
			P90:        wrapperspb.Double(float64(d.ValueAtQuantile(90))),
			P99:        wrapperspb.Double(float64(d.ValueAtQuantile(99))),
			P999:       wrapperspb.Double(float64(d.ValueAtQuantile(99.9))),
			TimedCalls: 20,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := latencySummary(tt.r.Hist); !proto.Equal(got, tt.want) {
				t.Errorf("latencySummary = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFlowGraphUntimed pins the JSON of edges and nodes with calls of
// unknown duration (golden flowgraph_untimed.json) and checks that their
// latency is null, not 0, next to the count of timed calls.
// Regenerate with: go test ./query -run TestFlowGraphUntimed -update
func TestFlowGraphUntimed(t *testing.T) {
	srv := newUntimedServer(t)
	body := get(t, srv, "/api/v1/flowgraph")
	checkGolden(t, filepath.Join("testdata", "golden", "flowgraph_untimed.json"), body)

	type summary struct {
		P50, P90, P99, P999 *float64
		TimedCalls          float64
	}
	var resp struct {
		Nodes []struct {
			ID      string
			Latency summary
		}
		Edges []struct {
			Source, Target string
			Calls          float64
			Latency        summary
		}
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	known := func(s summary) bool { return s.P50 != nil && s.P90 != nil && s.P99 != nil && s.P999 != nil }
	unknown := func(s summary) bool { return s.P50 == nil && s.P90 == nil && s.P99 == nil && s.P999 == nil }
	for _, e := range resp.Edges {
		switch e.Source + ">" + e.Target {
		case "producer>queue":
			if e.Calls != 30 || e.Latency.TimedCalls != 0 || !unknown(e.Latency) {
				t.Errorf("one-way edge: calls %v, latency %+v; want 30 calls, 0 timed, null quantiles", e.Calls, e.Latency)
			}
		case "frontend>producer":
			if e.Calls != 25 || e.Latency.TimedCalls != 20 || !known(e.Latency) || *e.Latency.P50 < float64(6*ms) || *e.Latency.P999 < float64(40*ms) {
				t.Errorf("mixed edge: calls %v, latency %+v; want 25 calls, 20 timed, quantiles of the timed", e.Calls, e.Latency)
			}
		default:
			t.Errorf("unexpected edge %s -> %s", e.Source, e.Target)
		}
	}
	for _, n := range resp.Nodes {
		if n.ID == "queue" && (n.Latency.TimedCalls != 0 || !unknown(n.Latency)) {
			t.Errorf("node queue: latency %+v, want null quantiles", n.Latency)
		}
	}

	// Vizceral's document carries rates and error classes only: no
	// latency that could read 0.
	viz := get(t, srv, "/api/v1/flowgraph?format=vizceral")
	for _, key := range []string{"p50", "p99", "latency"} {
		if bytes.Contains(viz, []byte(`"`+key+`"`)) {
			t.Errorf("vizceral document has %q: %s", key, viz)
		}
	}
}

// TestLatencyUntimed pins the JSON of latency distributions with spans of
// unknown duration and checks it: values null and timedCount 0 when no
// span is timed, values of the timed spans only otherwise.
// Regenerate with: go test ./query -run TestLatencyUntimed -update
func TestLatencyUntimed(t *testing.T) {
	srv := newUntimedServer(t)
	type quantile struct {
		Quantile                    float64
		Value, ErrorBound, From, To *float64
	}
	type response struct {
		Count, TimedCount, Errors float64
		Min, Max, Mean            *float64
		Quantiles                 []quantile
		Buckets                   []json.RawMessage
		Series                    []struct {
			Start                     string
			Count, TimedCount, Errors float64
			Quantiles                 []struct {
				Quantile float64
				Value    *float64
			}
		}
	}
	tests := []struct {
		golden, path string
		check        func(t *testing.T, r response)
	}{
		{"latency_untimed", "/api/v1/latency?service=oneway&step=5m&quantiles=0.5,0.99", func(t *testing.T, r response) {
			if r.Count != 4 || r.TimedCount != 0 || r.Errors != 1 || r.Min != nil || r.Max != nil || r.Mean != nil || len(r.Buckets) != 0 {
				t.Errorf("count %v timed %v errors %v min %v max %v mean %v buckets %d; want 4 0 1, null values, no buckets",
					r.Count, r.TimedCount, r.Errors, r.Min, r.Max, r.Mean, len(r.Buckets))
			}
			for _, q := range r.Quantiles {
				if q.Value != nil || q.ErrorBound != nil || q.From != nil || q.To != nil {
					t.Errorf("quantile %v = %+v, want null values", q.Quantile, q)
				}
			}
			// One step per step of the range, the empty first one too.
			var counts []float64
			for _, s := range r.Series {
				counts = append(counts, s.Count, s.TimedCount)
				for _, q := range s.Quantiles {
					if q.Value != nil {
						t.Errorf("step %s: quantile %v = %v, want null", s.Start, q.Quantile, *q.Value)
					}
				}
			}
			if want := []float64{0, 0, 1, 0, 3, 0}; !slices.Equal(counts, want) {
				t.Errorf("steps (count, timedCount) = %v, want %v", counts, want)
			}
		}},
		{"latency_mixed", "/api/v1/latency?service=mixed&quantiles=0.5,1", func(t *testing.T, r response) {
			if r.Count != 100 || r.TimedCount != 10 || r.Min == nil || r.Max == nil || r.Mean == nil {
				t.Fatalf("count %v timed %v min %v max %v mean %v; want 100 10 and values", r.Count, r.TimedCount, r.Min, r.Max, r.Mean)
			}
			// Every timed span took 7 ms: so do min, max and every quantile.
			for _, v := range append([]*float64{r.Min, r.Max, r.Mean}, r.Quantiles[0].Value, r.Quantiles[1].Value) {
				if v == nil || *v < 0.99*float64(7*ms) || *v > 1.01*float64(7*ms) {
					t.Errorf("value %v, want 7 ms within 1 %%", fmtPtr(v))
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			body := get(t, srv, tt.path)
			checkGolden(t, filepath.Join("testdata", "golden", tt.golden+".json"), body)
			var r response
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

// TestFillSteps checks that a latency series gets one step per step of the
// range, empty steps included.
func TestFillSteps(t *testing.T) {
	at := func(hms string) int64 {
		tm, err := time.Parse(time.DateTime, "2024-05-01 "+hms)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Unix()
	}
	tm := func(hms string) time.Time { return time.Unix(at(hms), 0) }
	step := func(hms string, n int64) aggregate.LatencyStep {
		return aggregate.LatencyStep{Start: at(hms), Rollup: aggregate.Rollup{Count: n}}
	}
	tests := []struct {
		name       string
		series     []aggregate.LatencyStep
		start, end time.Time
		step       time.Duration
		want       []aggregate.LatencyStep
	}{
		{
			name:  "no data",
			start: tm("11:45:00"), end: tm("12:00:00"), step: 5 * time.Minute,
			want: []aggregate.LatencyStep{step("11:45:00", 0), step("11:50:00", 0), step("11:55:00", 0)},
		},
		{
			name:   "gaps",
			series: []aggregate.LatencyStep{step("11:50:00", 2)},
			start:  tm("11:45:00"), end: tm("12:00:00"), step: 5 * time.Minute,
			want: []aggregate.LatencyStep{step("11:45:00", 0), step("11:50:00", 2), step("11:55:00", 0)},
		},
		{
			name:  "unaligned range: the steps holding start and the last second",
			start: tm("11:47:13"), end: tm("11:55:01"), step: 5 * time.Minute,
			want: []aggregate.LatencyStep{step("11:45:00", 0), step("11:50:00", 0), step("11:55:00", 0)},
		},
		{
			name:   "data of the window at end is kept",
			series: []aggregate.LatencyStep{step("11:45:00", 1), step("12:00:00", 4)},
			start:  tm("11:45:00"), end: tm("12:00:00"), step: 5 * time.Minute,
			want: []aggregate.LatencyStep{step("11:45:00", 1), step("11:50:00", 0), step("11:55:00", 0), step("12:00:00", 4)},
		},
		{
			name:   "store began on the hour",
			series: []aggregate.LatencyStep{step("11:00:00", 1)},
			start:  tm("11:20:00"), end: tm("11:30:00"), step: 10 * time.Minute,
			want: []aggregate.LatencyStep{step("11:00:00", 1), step("11:10:00", 0), step("11:20:00", 0)},
		},
		{
			name:  "empty range",
			start: tm("11:45:10"), end: tm("11:45:10"), step: time.Minute,
			want: []aggregate.LatencyStep{step("11:45:00", 0)},
		},
		{
			name:  "before 1970",
			start: time.Unix(-25, 0), end: time.Unix(5, 0), step: 10 * time.Second,
			want: []aggregate.LatencyStep{{Start: -30}, {Start: -20}, {Start: -10}, {Start: 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fillSteps(tt.series, tt.start, tt.end, tt.step)
			var g, w []int64
			for _, s := range got {
				g = append(g, s.Start, s.Rollup.Count)
			}
			for _, s := range tt.want {
				w = append(w, s.Start, s.Rollup.Count)
			}
			if !slices.Equal(g, w) {
				t.Errorf("steps (start, count) = %v, want %v", g, w)
			}
		})
	}
}

// TestLatencyHDRLogEmptySteps checks that the HdrHistogram log has one
// interval per step, empty steps included.
func TestLatencyHDRLogEmptySteps(t *testing.T) {
	srv := newUntimedServer(t)
	body := get(t, srv, "/api/v1/latency?service=oneway&step=5m&format=hdrlog")
	r := hdr.NewHistogramLogReader(bytes.NewReader(body))
	var starts []int64
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		starts = append(starts, h.StartTimeMs())
	}
	first := testNow.Add(-15 * time.Minute).UnixMilli()
	if want := []int64{first, first + 300_000, first + 600_000}; !slices.Equal(starts, want) {
		t.Errorf("interval starts %v, want %v", starts, want)
	}
}

// fmtPtr formats a value that may be null.
func fmtPtr(v *float64) string {
	if v == nil {
		return "null"
	}
	return strconv.FormatFloat(*v, 'g', -1, 64)
}

// get GETs path from srv and returns the body of a 200 answer.
func get(t *testing.T, srv *httptest.Server, path string) []byte {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}
