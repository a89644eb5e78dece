package query

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
)

// TestLatencyQuantiles checks quantile values and error bounds against
// hdrhistogram itself: the value is ValueAtQuantile of the merged histogram
// and the error bound is the width of its equivalent-value range.
func TestLatencyQuantiles(t *testing.T) {
	svc := newTestService(newFakeStore())
	resp, err := svc.GetLatency(t.Context(), &querypb.GetLatencyRequest{
		Service: "checkout", Quantiles: []float64{0.5, 0.9, 0.99, 0.999, 1, 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	fix := fixtureLatency(testNow.Add(-DefaultRange), testNow, 0)
	h := hdr.New(fixtureLowest, fixtureHighest, fixtureDigits)
	fix.Total.Hist.MergeInto(h)

	if resp.Count != 1000 || resp.TimedCount != 1000 || resp.Errors != 5 || resp.GetMin().GetValue() != float64(h.Min()) ||
		resp.GetMax().GetValue() != float64(h.Max()) || resp.GetMean().GetValue() != h.Mean() {
		t.Errorf("count %v timed %v errors %v min %v max %v mean %v; want 1000 1000 5 %d %d %v",
			resp.Count, resp.TimedCount, resp.Errors, resp.Min, resp.Max, resp.Mean, h.Min(), h.Max(), h.Mean())
	}
	for _, q := range resp.Quantiles {
		want := h.ValueAtQuantile(q.Quantile * 100)
		if q.GetValue().GetValue() != float64(want) {
			t.Errorf("quantile %v = %v, want ValueAtQuantile(%v) = %d", q.Quantile, q.Value, q.Quantile*100, want)
		}
		from, to := int64(q.GetFrom().GetValue()), int64(q.GetTo().GetValue())
		if !(from <= want && want <= to) {
			t.Errorf("quantile %v: value %d outside its bucket [%d, %d]", q.Quantile, want, from, to)
		}
		// [from, to] is exactly one equivalent-value range.
		if !h.ValuesAreEquivalent(from, to) || h.ValuesAreEquivalent(from-1, from) || h.ValuesAreEquivalent(to, to+1) {
			t.Errorf("quantile %v: [%d, %d] is not an HDR bucket", q.Quantile, from, to)
		}
		if q.GetErrorBound().GetValue() != float64(to-from+1) {
			t.Errorf("quantile %v: errorBound %v, want %d", q.Quantile, q.ErrorBound, to-from+1)
		}
	}
	// p99 by name, and the bucket width near 50 ms: 2 significant digits
	// give 128 sub-buckets per power of two, so values in [2^25, 2^26) ns
	// have buckets 2^18 ns wide.
	p99 := resp.Quantiles[2]
	if p99.Quantile != 0.99 || p99.GetValue().GetValue() != float64(h.ValueAtQuantile(99)) {
		t.Errorf("p99 = %v, want %d", p99, h.ValueAtQuantile(99))
	}
	p90 := resp.Quantiles[1]
	p90v, p90b := p90.GetValue().GetValue(), p90.GetErrorBound().GetValue()
	if p90v < 33_554_432 || p90v >= 67_108_864 || p90b != 1<<18 {
		t.Errorf("p90 = %v: want a value near 48 ms in a bucket of 2^18 ns", p90)
	}
	if rel := p90b / p90v; rel > 0.01 {
		t.Errorf("p90 relative error bound %v above 1%%", rel)
	}

	// Buckets: the non-empty ranges of the distribution, summing to 1.
	var sum, prob float64
	for i, b := range resp.Buckets {
		if b.Count <= 0 || b.From > b.To || (i > 0 && b.From <= resp.Buckets[i-1].To) {
			t.Errorf("bucket %d = %v", i, b)
		}
		if !h.ValuesAreEquivalent(int64(b.From), int64(b.To)) {
			t.Errorf("bucket %d = %v is not one HDR bucket", i, b)
		}
		sum += b.Count
		prob += b.Probability
	}
	if len(resp.Buckets) != 4 || sum != 1000 || prob < 0.999999 || prob > 1.000001 {
		t.Errorf("%d buckets with %v values, probability %v; want 4, 1000, 1", len(resp.Buckets), sum, prob)
	}
}

// TestLatencyExemplars checks which exemplars are kept and how they are
// labelled.
func TestLatencyExemplars(t *testing.T) {
	svc := newTestService(newFakeStore())
	f := func(qs []float64, want []string) {
		t.Helper()
		resp, err := svc.GetLatency(t.Context(), &querypb.GetLatencyRequest{Service: "checkout", Quantiles: qs})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range resp.Exemplars {
			got = append(got, e.SpanId[14:]+"@"+formatFloat(e.Quantile))
		}
		if !slices.Equal(got, want) {
			t.Errorf("quantiles %v: exemplars %v, want %v", qs, got, want)
		}
	}
	// Default quantiles: those at or above p90 (48 ms); 48.1 ms shares the
	// p90 bucket, 47 ms is below it.
	f(nil, []string{"01@0.999", "02@0.999", "03@0.99", "04@0.9"})
	// No quantile >= 0.9: all of them, the slowest labelled 0.75.
	f([]float64{0.5, 0.75}, []string{"01@0.75", "02@0.75", "03@0.75", "04@0.75", "05@0.75"})
	// The smallest quantile >= 0.9 decides, in whatever order requested.
	f([]float64{0.999, 0.5, 0.99}, []string{"01@0.999", "02@0.999", "03@0.99"})
	// 1.201 s shares the bucket of the maximum.
	f([]float64{1}, []string{"01@1", "02@1"})
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// TestLatencySeries checks the series of a step.
func TestLatencySeries(t *testing.T) {
	svc := newTestService(newFakeStore())
	resp, err := svc.GetLatency(t.Context(), &querypb.GetLatencyRequest{Service: "checkout", Step: "5m", Quantiles: []float64{0.5}})
	if err != nil {
		t.Fatal(err)
	}
	var starts []string
	for i, s := range resp.Series {
		starts = append(starts, s.Start)
		n := float64(100 * (i + 1))
		if s.Count != n || s.Errors != float64(i) || len(s.Quantiles) != 1 || s.Quantiles[0].Quantile != 0.5 {
			t.Errorf("step %d = %v", i, s)
		}
		v := s.Quantiles[0].GetValue().GetValue()
		if want := float64(10 * ms * int64(i+1)); v < want || v > want*1.01 {
			t.Errorf("step %d median %v, want about %v", i, v, want)
		}
	}
	if want := []string{"2024-05-01T11:45:00Z", "2024-05-01T11:50:00Z", "2024-05-01T11:55:00Z"}; !slices.Equal(starts, want) {
		t.Errorf("steps start at %v, want %v", starts, want)
	}
}

// TestLatencyHDRLog pins the HdrHistogram log output with golden files and
// reads it back with hdrhistogram's own log reader.
// Regenerate with: go test ./query -run TestLatencyHDRLog -update
func TestLatencyHDRLog(t *testing.T) {
	srv, _ := newTestServer(t)
	start := testNow.Add(-DefaultRange)
	for _, tt := range []struct {
		golden string
		path   string
		// want: start (Unix ms), length (ms) and count of each interval.
		want [][3]int64
	}{
		{"latency_hdrlog", "/api/v1/latency?service=checkout&format=hdrlog",
			[][3]int64{{start.UnixMilli(), 900_000, 1000}}},
		{"latency_hdrlog_series", "/api/v1/latency?service=checkout&format=hdrlog&step=5m",
			[][3]int64{{start.UnixMilli(), 300_000, 100}, {start.UnixMilli() + 300_000, 300_000, 200}, {start.UnixMilli() + 600_000, 300_000, 300}}},
		{"latency_hdrlog_empty", "/api/v1/latency?service=nobody&format=hdrlog&start=2024-05-01T11:59:30.250Z",
			[][3]int64{{testNow.UnixMilli() - 29_750, 29_750, 0}}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
			checkGoldenText(t, filepath.Join("testdata", "golden", tt.golden+".hlog"), body)

			r := hdr.NewHistogramLogReader(bytes.NewReader(body))
			var got [][3]int64
			for {
				h, err := r.NextIntervalHistogram()
				if err != nil {
					t.Fatalf("read interval %d: %v", len(got), err)
				}
				if h == nil {
					break
				}
				got = append(got, [3]int64{h.StartTimeMs(), h.EndTimeMs() - h.StartTimeMs(), h.TotalCount()})
				if tt.golden == "latency_hdrlog" {
					want := hdr.New(fixtureLowest, fixtureHighest, fixtureDigits)
					fixtureLatency(start, testNow, 0).Total.Hist.MergeInto(want)
					if !slices.Equal(h.Distribution(), want.Distribution()) {
						t.Errorf("decoded histogram differs from the fixture:\n%v\nwant\n%v", h.Distribution(), want.Distribution())
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("intervals (start, length, count) = %v, want %v", got, tt.want)
			}
		})
	}
}

// checkGoldenText compares body with the golden file, or rewrites the file
// under -update.
func checkGoldenText(t *testing.T, path string, body []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./query -update)", err)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("%s differs from the response:\n%s", path, body)
	}
}

// TestGatewayLatencyParameters checks what the REST parameters become in
// the store query.
func TestGatewayLatencyParameters(t *testing.T) {
	srv, st := newTestServer(t)
	for _, tt := range []struct {
		path string
		want aggregate.LatencyQuery
	}{
		{"/api/v1/latency?service=checkout", aggregate.LatencyQuery{Service: "checkout"}},
		{"/api/v1/latency?service=checkout&operation=POST+%2Fcheckout&kind=client&step=1m",
			aggregate.LatencyQuery{Service: "checkout", Operation: "POST /checkout", Kind: aggregate.KindClient, Step: 60}},
		{"/api/v1/latency?service=checkout&kind=internal", aggregate.LatencyQuery{Service: "checkout", Kind: aggregate.KindInternal}},
		{"/api/v1/latency?service=checkout&kind=all&step=10s", aggregate.LatencyQuery{Service: "checkout", Kind: aggregate.KindAll, Step: 10}},
		{"/api/v1/latency?service=checkout&kind=server", aggregate.LatencyQuery{Service: "checkout", Kind: aggregate.KindServer}},
		{"/api/v1/latency?source=frontend&target=checkout&level=instance&operation=GET",
			aggregate.LatencyQuery{Source: "frontend", Target: "checkout", Level: aggregate.LevelInstance, Operation: "GET"}},
		{"/api/v1/latency?source=us-east-1&target=eu-west-1&level=region&step=1h",
			aggregate.LatencyQuery{Source: "us-east-1", Target: "eu-west-1", Level: aggregate.LevelRegion, Step: 3600}},
	} {
		var v map[string]any
		getJSON(t, srv.URL, srv.Client(), tt.path, 200, &v)
		st.mu.Lock()
		got := st.lastLatency
		st.mu.Unlock()
		if got != tt.want {
			t.Errorf("GET %s: store query %+v, want %+v", tt.path, got, tt.want)
		}
	}
}

// TestLatencyRequestErrors checks validation messages: each names the bad
// parameter.
func TestLatencyRequestErrors(t *testing.T) {
	f := func(req *querypb.GetLatencyRequest, want string) {
		t.Helper()
		_, err := latencyRequest(req, testNow)
		wantInvalid(t, err, want)
	}
	f(&querypb.GetLatencyRequest{}, "missing service, or source and target")
	f(&querypb.GetLatencyRequest{Target: "b"}, "missing source")
	f(&querypb.GetLatencyRequest{Source: "a"}, "missing target")
	f(&querypb.GetLatencyRequest{Service: "s", Target: "b"}, "invalid service")
	f(&querypb.GetLatencyRequest{Service: "s", Kind: "SERVER"}, `invalid kind "SERVER"`)
	f(&querypb.GetLatencyRequest{Service: "s", Level: "zone"}, `invalid level "zone"`)
	f(&querypb.GetLatencyRequest{Source: "a", Target: "b", Kind: "client"}, `invalid kind "client"`)
	f(&querypb.GetLatencyRequest{Source: "a", Target: "b", Level: "rack"}, `invalid level "rack"`)
	f(&querypb.GetLatencyRequest{Service: "s", Quantiles: []float64{1.5}}, "invalid quantiles 1.5")
	f(&querypb.GetLatencyRequest{Service: "s", Quantiles: []float64{-0.1}}, "invalid quantiles -0.1")
	f(&querypb.GetLatencyRequest{Service: "s", Step: "10"}, `invalid step "10"`)
	f(&querypb.GetLatencyRequest{Service: "s", Step: "5s"}, `invalid step "5s": must be a multiple of 10s`)
	f(&querypb.GetLatencyRequest{Service: "s", Step: "25s"}, `invalid step "25s"`)
	f(&querypb.GetLatencyRequest{Service: "s", Step: "-10s"}, `invalid step "-10s"`)
	f(&querypb.GetLatencyRequest{Service: "s", Step: "0s"}, `invalid step "0s"`)
	f(&querypb.GetLatencyRequest{Service: "s", Step: "10s", Start: "2024-01-01T00:00:00Z"}, "more than 11000 steps")
	f(&querypb.GetLatencyRequest{Service: "s", Format: "vizceral"}, `invalid format "vizceral": want json or hdrlog`)
	f(&querypb.GetLatencyRequest{Service: "s", Start: "soon"}, `invalid start "soon"`)

	p, err := latencyRequest(&querypb.GetLatencyRequest{Service: "s", Format: "json"}, testNow)
	if err != nil || p.format != FormatJSON || !slices.Equal(p.quantiles, DefaultQuantiles) {
		t.Errorf("defaults: %+v, %v", p, err)
	}
}

// TestFlowGraphRequestErrors checks validation messages of GetFlowGraph.
func TestFlowGraphRequestErrors(t *testing.T) {
	f := func(req *querypb.GetFlowGraphRequest, want string) {
		t.Helper()
		_, err := graphRequest(req, testNow)
		wantInvalid(t, err, want)
	}
	f(&querypb.GetFlowGraphRequest{Level: "Service"}, `invalid level "Service"`)
	f(&querypb.GetFlowGraphRequest{Format: "hdrlog"}, `invalid format "hdrlog": want json or vizceral`)
	f(&querypb.GetFlowGraphRequest{End: "2024-05-01T00:00:00Z", Start: "2024-05-02T00:00:00Z"}, "invalid end")
}

// TestNearestRank checks that quantiles are nearest-rank, ceil(q·n), for
// small and large counts, where hdrhistogram-go's own rounded rank differs
// (p90 of 9 values is the 9th, not the 8th).
func TestNearestRank(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 9, 10, 17, 99, 100, 101, 1000, 1001} {
		h := hdr.New(1, 1<<40, 2)
		vals := make([]int64, n)
		for i := range vals {
			vals[i] = int64(1000 * (i + 1) * (i + 1)) // distinct buckets
			h.RecordValue(vals[i])
		}
		for _, q := range []float64{0.001, 0.25, 0.29, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
			rank := int(math.Ceil(q * float64(n)))
			rank = max(rank, 1)
			want := vals[rank-1]
			got := h.ValueAtPercentile(nearestRankPercentile(q, int64(n)))
			if !h.ValuesAreEquivalent(got, want) {
				t.Errorf("n=%d q=%v: value %d, want rank %d = %d", n, q, got, rank, want)
			}
		}
	}
}
