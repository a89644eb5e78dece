package query

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/ingest/spigo"
	"github.com/flowscope/flowscope/query/querypb"
)

// TestGuesstimateGolden pins the REST answers of format=guesstimate:
// the document (golden files), its Content-Type and its
// Content-Disposition, and the errors of the samples and arch parameters.
// Regenerate with: go test ./query -run TestGuesstimateGolden -update
func TestGuesstimateGolden(t *testing.T) {
	srv, _ := newTestServer(t)
	tests := []struct {
		golden string
		path   string
		status int
		file   string // the attachment's file name; "" for an error
	}{
		{"latency_guesstimate", "/api/v1/latency?service=checkout&format=guesstimate", 200, "checkout.guess"},
		{"latency_guesstimate_edge", "/api/v1/latency?source=frontend&target=checkout&format=guesstimate&samples=50", 200, "frontend-to-checkout.guess"},
		{"latency_guesstimate_instance", "/api/v1/latency?source=frontend&target=checkout&level=instance&format=guesstimate&samples=5", 200, "frontend-to-checkout.guess"},
		{"latency_guesstimate_samples", "/api/v1/latency?service=checkout&format=guesstimate&samples=10&arch=shop&step=1m", 200, "shop.guess"},
		{"latency_guesstimate_empty", "/api/v1/latency?service=nobody&format=guesstimate", 200, "nobody.guess"},
		{"latency_guesstimate_bad_samples", "/api/v1/latency?service=checkout&format=guesstimate&samples=100001", 400, ""},
		{"latency_guesstimate_negative_samples", "/api/v1/latency?service=checkout&format=guesstimate&samples=-1", 400, ""},
		{"latency_guesstimate_samples_not_a_number", "/api/v1/latency?service=checkout&format=guesstimate&samples=many", 400, ""},
		{"latency_guesstimate_samples_without_format", "/api/v1/latency?service=checkout&samples=10", 400, ""},
		{"latency_guesstimate_bad_arch", "/api/v1/latency?service=checkout&format=guesstimate&arch=a.b", 400, ""},
		{"latency_guesstimate_store_error", "/api/v1/latency?service=broken&format=guesstimate", 500, ""},
	}
	for _, tt := range tests {
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
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			cd := resp.Header.Get("Content-Disposition")
			switch {
			case tt.file == "" && cd != "":
				t.Errorf("Content-Disposition %q on an error", cd)
			case tt.file != "" && cd != `attachment; filename="`+tt.file+`"`:
				t.Errorf("Content-Disposition = %q, want attachment %s", cd, tt.file)
			}
			if tt.status == 200 {
				if _, err := spigo.ReadGuess(bytes.NewReader(body)); err != nil {
					t.Errorf("the importer does not read the export: %v", err)
				}
			}
			checkGolden(t, filepath.Join("testdata", "golden", tt.golden+".json"), body)
		})
	}
}

// TestGuesstimateShape checks the export key by key against spigo's
// files (json_metrics/lamp.guess): the same keys in the same order.
func TestGuesstimateShape(t *testing.T) {
	doc := writeGuess("lamp", "d", "lamp.*.*.....www.flowscope", []int64{5, 7})
	want := `{"space":{"name":"lamp","description":"d","is_private":"true","graph":{"metrics":[{"id":"AA","readableId":"AA","name":"lamp.*.*.....www.flowscope","location":{"row":1,"column":1}}],"guesstimates":[{"metric":"AA","input":"","guesstimateType":"DATA","data":[5,7]}]}}}`
	if doc != want {
		t.Errorf("got\n%s\nwant\n%s", doc, want)
	}
	if doc := writeGuess(`a"b->c`, "", "x", []int64{}); !strings.Contains(doc, `"name":"a\"b->c"`) || !strings.Contains(doc, `"data":[]`) {
		t.Errorf("escaping or empty data: %s", doc)
	}
}

// TestGuessSamples checks the samples made of HDR buckets: all of them up
// to the limit, and above it exactly limit samples whose nearest-rank
// quantiles are the histogram's.
func TestGuessSamples(t *testing.T) {
	bars := []hdr.Bar{{From: 10, To: 10, Count: 3}, {From: 20, To: 21, Count: 1}, {From: 40, To: 43, Count: 6}}
	tests := []struct {
		name  string
		limit int
		want  []int64
	}{
		{"all", 10, []int64{10, 10, 10, 21, 43, 43, 43, 43, 43, 43}},
		{"all, limit above", 100, []int64{10, 10, 10, 21, 43, 43, 43, 43, 43, 43}},
		// Quantiles 0.25 and 0.75: ranks ceil(2.5)=3 and ceil(7.5)=8.
		{"two", 2, []int64{10, 43}},
		// Quantiles 0.1 .. 0.9: ranks 1, 3, 5, 7, 9.
		{"five", 5, []int64{10, 10, 43, 43, 43}},
		{"one", 1, []int64{43}}, // the median, rank 5
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := guessSamples(bars, tt.limit); !slices.Equal(got, tt.want) {
				t.Errorf("guessSamples(limit %d) = %v, want %v", tt.limit, got, tt.want)
			}
		})
	}
	if got := guessSamples(nil, 10); got == nil || len(got) != 0 {
		t.Errorf("no buckets: %v, want an empty non-nil slice", got)
	}
	// Counts whose product with the sample index overflows 64 bits.
	huge := []hdr.Bar{{To: 1, Count: 1 << 61}, {To: 2, Count: 1 << 61}}
	if got := guessSamples(huge, 4); !slices.Equal(got, []int64{1, 1, 2, 2}) {
		t.Errorf("huge counts: %v", got)
	}
}

// TestGuessSamplesKeepQuantiles down-samples distributions of 10^6 values
// and checks that p50, p90 and p99 of the default 10,000 samples, and
// also p99.9 of 100,000 samples, are the histogram's within 1 %. (The
// samples' quantile q is the histogram's at q ± 1/(2N): 10,000 samples
// miss p99.9 of a heavy tail by a few per cent.)
func TestGuessSamplesKeepQuantiles(t *testing.T) {
	for name, d := range testDistributions(1_000_000) {
		t.Run(name, func(t *testing.T) {
			dist := newDistribution(d)
			for _, tc := range []struct {
				n  int
				qs []float64
			}{
				{DefaultGuessSamples, []float64{0.5, 0.9, 0.99}},
				{MaxGuessSamples, []float64{0.5, 0.9, 0.99, 0.999}},
			} {
				samples := guessSamples(dist.bars, tc.n)
				if len(samples) != tc.n {
					t.Fatalf("%d samples, want %d", len(samples), tc.n)
				}
				if !slices.IsSorted(samples) {
					t.Error("samples not ascending")
				}
				for _, q := range tc.qs {
					want := dist.quantile(q).GetValue().GetValue()
					got := float64(nearestRank(samples, q))
					if rel := math.Abs(got-want) / want; rel > 0.01 {
						t.Errorf("%d samples: p%v: samples %.0f, histogram %.0f (relative %.4f)", tc.n, q*100, got, want, rel)
					}
				}
			}
		})
	}
}

// TestGuesstimateImportRoundTrip exports distributions, reads the file
// back with spigo's importer (ReadGuess, GuessMetrics: the metric
// spigo.latency) and checks that the quantiles GetMetric would compute
// from it are the latency API's within 1 %, and that the actor name maps
// to the selection's service, namespace and instance.
func TestGuesstimateImportRoundTrip(t *testing.T) {
	dists := testDistributions(200_000)
	tests := []struct {
		name  string
		dist  string
		req   *querypb.GetLatencyRequest
		graph *aggregate.Graph
		want  map[string]string // resource attributes after import
	}{
		{
			name: "service", dist: "unimodal",
			req:  &querypb.GetLatencyRequest{Service: "checkout"},
			want: map[string]string{spigo.AttrService: "checkout", spigo.AttrRegion: "*", spigo.AttrZone: "*", spigo.AttrPackage: "flowscope"},
		},
		{
			name: "namespaced service by plain name", dist: "bimodal",
			req:   &querypb.GetLatencyRequest{Service: "www", Samples: 100_000},
			graph: &aggregate.Graph{Nodes: []aggregate.GraphNode{{ID: "lamp/www", Namespace: "lamp"}}},
			want:  map[string]string{spigo.AttrNamespace: "lamp", spigo.AttrService: "www", spigo.AttrRegion: "*", spigo.AttrZone: "*", spigo.AttrPackage: "flowscope"},
		},
		{
			name: "edge", dist: "heavy-tailed",
			req:  &querypb.GetLatencyRequest{Source: "frontend", Target: "checkout"},
			want: map[string]string{spigo.AttrService: "checkout", spigo.AttrRegion: "*", spigo.AttrZone: "*", spigo.AttrPackage: "frontend->checkout"},
		},
		{
			name: "instance edge", dist: "bimodal",
			req: &querypb.GetLatencyRequest{Source: "lamp/webserver-elb00", Target: "lamp/webserver10", Level: "instance", Samples: 1000},
			graph: &aggregate.Graph{Nodes: []aggregate.GraphNode{
				{ID: "lamp/webserver10", Namespace: "lamp", Service: "lamp/webserver", Region: "us-east-1"},
				{ID: "storage/webserver10", Namespace: "storage", Service: "storage/webserver", Region: "eu-west-1"},
			}},
			want: map[string]string{
				spigo.AttrNamespace: "lamp", spigo.AttrService: "webserver", spigo.AttrInstance: "webserver10",
				spigo.AttrRegion: "us-east-1", spigo.AttrZone: "*", spigo.AttrPackage: "lamp/webserver-elb00->lamp/webserver10",
			},
		},
		{
			name: "dotted service name", dist: "unimodal",
			req:  &querypb.GetLatencyRequest{Service: "api.v2"},
			want: map[string]string{spigo.AttrService: "api.v2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &roundTripStore{fakeStore: newFakeStore(), graph: tt.graph, hist: dists[tt.dist]}
			svc := newTestService(st)
			req := proto.Clone(tt.req).(*querypb.GetLatencyRequest)
			req.Quantiles, req.Samples = []float64{0.5, 0.9, 0.99}, 0
			ref, err := svc.GetLatency(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			req.Format, req.Quantiles, req.Samples = FormatGuesstimate, nil, tt.req.Samples
			resp, err := svc.GetLatency(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Guesstimate == nil || resp.HdrLog != nil || resp.Quantiles != nil {
				t.Fatalf("response %v: want only guesstimate", resp)
			}
			g, err := spigo.ReadGuess(strings.NewReader(resp.GetGuesstimate()))
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Series) != 1 || len(g.Skipped) != 0 {
				t.Fatalf("series %d, skipped %v; want 1 series", len(g.Series), g.Skipped)
			}
			b, err := spigo.GuessMetrics(g, testNow)
			if err != nil {
				t.Fatal(err)
			}
			var mreq colmetricspb.ExportMetricsServiceRequest
			if err := proto.Unmarshal(b, &mreq); err != nil {
				t.Fatal(err)
			}
			rm := mreq.ResourceMetrics[0]
			got := map[string]string{}
			for _, kv := range rm.GetResource().GetAttributes() {
				got[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if !mapsEqual(got, tt.want) {
				t.Errorf("imported resource %v, want %v (name %q)", got, tt.want, g.Series[0].Name+g.Series[0].Suffix)
			}
			p := rm.ScopeMetrics[0].Metrics[0].GetExponentialHistogram().DataPoints[0]
			limit := req.Samples
			if limit == 0 {
				limit = DefaultGuessSamples
			}
			if want := min(ref.TimedCount, float64(limit)); float64(p.GetCount()) != want {
				t.Errorf("imported count %d, want %v", p.GetCount(), want)
			}
			buckets := exponentialBuckets(p.GetScale(), p.GetZeroCount(), p.GetZeroThreshold(),
				p.GetPositive().GetOffset(), p.GetPositive().GetBucketCounts(),
				p.GetNegative().GetOffset(), p.GetNegative().GetBucketCounts())
			for _, lq := range ref.Quantiles {
				v, ok := bucketQuantile(lq.Quantile, buckets)
				if !ok {
					t.Fatalf("no quantile %v", lq.Quantile)
				}
				v = clamp(v, p.Min, p.Max)
				want := lq.GetValue().GetValue()
				if rel := math.Abs(v-want) / want; rel > 0.01 {
					t.Errorf("p%v: imported %.0f, latency API %.0f: relative error %.4f > 1%%", lq.Quantile*100, v, want, rel)
				}
			}
		})
	}
}

// TestGuesstimateGRPC checks the gRPC answer: only the guesstimate field,
// and the errors as InvalidArgument.
func TestGuesstimateGRPC(t *testing.T) {
	svc := newTestService(newFakeStore())
	resp, err := svc.GetLatency(t.Context(), &querypb.GetLatencyRequest{Service: "checkout", Format: FormatGuesstimate, Samples: 3})
	if err != nil {
		t.Fatal(err)
	}
	g, err := spigo.ReadGuess(strings.NewReader(resp.GetGuesstimate()))
	if err != nil {
		t.Fatal(err)
	}
	// fixtureLatency: 800 at 12 ms, 150 at 48 ms, 40 at 95 ms, 10 at
	// 1.2 s; quantiles 1/6, 1/2, 5/6 fall into the first, first and
	// second buckets.
	if len(g.Series) != 1 || len(g.Series[0].Samples) != 3 || g.Name != "checkout" ||
		g.Series[0].Samples[0] != g.Series[0].Samples[1] || g.Series[0].Samples[2] <= g.Series[0].Samples[1] {
		t.Errorf("guess %+v", g)
	}
	for _, req := range []*querypb.GetLatencyRequest{
		{Service: "checkout", Format: FormatGuesstimate, Samples: MaxGuessSamples + 1},
		{Service: "checkout", Format: FormatHDRLog, Samples: 5},
		{Service: "checkout", Arch: "lamp"},
	} {
		if _, err := svc.GetLatency(t.Context(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: error %v, want InvalidArgument", req, err)
		}
	}
}

// TestActorName checks that every actor name the export writes is read
// back by spigo.ParseName as the node it was made of.
func TestActorName(t *testing.T) {
	tests := []struct {
		node guessNode
		pkg  string
		want string
	}{
		{guessNode{region: "*", zone: "*", service: "checkout"}, "flowscope", ".*.*.....checkout.flowscope"},
		{guessNode{arch: "lamp", region: "us-east-1", zone: "*", instance: "www00", service: "www"}, "a->b", "lamp.us-east-1.*..www00...www.a->b"},
		{guessNode{region: "*", zone: "*", service: "x"}, "a.b->c_rt", ".*.*.....x.a_b->c_rt_"},
		{guessNode{region: "*", zone: "*", service: "api.v2"}, "flowscope", "api.v2"},
		{guessNode{arch: "a.b", region: "*", zone: "*", service: "s"}, "flowscope", "s"},
	}
	for _, tt := range tests {
		got := tt.node.actorName(tt.pkg)
		if got != tt.want {
			t.Errorf("actorName(%+v, %q) = %q, want %q", tt.node, tt.pkg, got, tt.want)
		}
		actor, suffix := spigo.SplitGuessName(got)
		if actor != got || suffix != "" {
			t.Errorf("%q splits into %q + %q", got, actor, suffix)
		}
		n, ok := spigo.ParseName(got)
		if !strings.Contains(tt.node.arch+tt.node.service, ".") && (!ok || n.Service != tt.node.service || n.Instance != tt.node.instance || n.Arch != tt.node.arch) {
			t.Errorf("ParseName(%q) = %+v, %v", got, n, ok)
		}
	}
}

// TestGuessFileName checks the attachment names.
func TestGuessFileName(t *testing.T) {
	f := func(space, want string) {
		t.Helper()
		if got := guessFileName(writeGuess(space, "", "x", nil)); got != want {
			t.Errorf("guessFileName(space %q) = %q, want %q", space, got, want)
		}
	}
	f("checkout", "checkout.guess")
	f("lamp/www", "lamp_www.guess")
	f("frontend->checkout", "frontend-to-checkout.guess")
	f(`a"b c`, "a_b_c.guess")
	f("", "latency.guess")
	f("..", "latency.guess")
	if got := guessFileName(`{"other":1}`); got != "latency.guess" {
		t.Errorf("no space: %q", got)
	}
}

// FuzzGuesstimate writes Guesstimate documents of arbitrary names and
// bucket counts and checks that the importer reads back the samples and
// the actor, and that the sample count obeys the limit.
func FuzzGuesstimate(f *testing.F) {
	f.Add("checkout", "frontend", uint16(3), uint16(7), uint16(10))
	f.Add("a.b", "x->y\"", uint16(0), uint16(0), uint16(1))
	f.Add("lamp/www", "_rt", uint16(1000), uint16(1), uint16(100))
	f.Fuzz(func(t *testing.T, service, source string, c1, c2, limit uint16) {
		lim := int(limit)%MaxGuessSamples + 1
		bars := []hdr.Bar{{From: 100, To: 101, Count: int64(c1)}, {From: 5000, To: 5039, Count: int64(c2)}}
		samples := guessSamples(bars, lim)
		if want := min(int(c1)+int(c2), lim); len(samples) != want {
			t.Fatalf("%d samples, want %d", len(samples), want)
		}
		n := guessNode{region: "*", zone: "*", service: service}
		doc := writeGuess(service, "d", n.actorName(source+"->"+service), samples)
		if !json.Valid([]byte(doc)) {
			if !utf8.ValidString(service + source) {
				return // invalid UTF-8 is replaced; the document stays JSON
			}
			t.Fatalf("not JSON: %s", doc)
		}
		g, err := spigo.ReadGuess(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if len(samples) == 0 {
			return
		}
		if len(g.Series) != 1 || !slices.Equal(g.Series[0].Samples, samples) {
			t.Fatalf("read back %+v, want samples %v", g.Series, samples)
		}
		_ = guessFileName(doc)
	})
}

// BenchmarkGuesstimate measures an export of 10^6 timed spans down-sampled
// to the default and to the maximum sample limit, in ns per sample
// written. Compare runs with
// benchstat old.txt new.txt (go test ./query -run '^$' -bench Guesstimate -count 10).
func BenchmarkGuesstimate(b *testing.B) {
	d := testDistributions(1_000_000)["heavy-tailed"]
	for _, limit := range []int{DefaultGuessSamples, MaxGuessSamples} {
		b.Run("samples="+strconv.Itoa(limit), func(b *testing.B) {
			lat := &aggregate.Latency{Total: aggregate.Rollup{Hist: d}}
			p := latencyParams{start: testNow.Add(-time.Hour), end: testNow, samples: limit}
			p.q.Service = "checkout"
			svc := newTestService(newFakeStore())
			b.ReportAllocs()
			var size int
			for b.Loop() {
				doc, err := svc.guesstimate(context.Background(), lat, p)
				if err != nil {
					b.Fatal(err)
				}
				size = len(doc)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(limit), "ns/sample")
			b.ReportMetric(float64(size)/float64(limit), "B/sample")
		})
	}
}

// roundTripStore is fakeStore answering Latency with hist and FlowGraph
// with graph (nil: no nodes).
type roundTripStore struct {
	*fakeStore
	graph *aggregate.Graph
	hist  *hdr.PackedHistogram
}

func (s *roundTripStore) Latency(context.Context, time.Time, time.Time, aggregate.LatencyQuery) (*aggregate.Latency, error) {
	h := s.hist.Clone()
	return &aggregate.Latency{Total: aggregate.Rollup{Count: h.TotalCount(), Hist: h}}, nil
}

func (s *roundTripStore) FlowGraph(context.Context, time.Time, time.Time, aggregate.GraphQuery) (*aggregate.Graph, error) {
	if s.graph == nil {
		return &aggregate.Graph{}, nil
	}
	return s.graph, nil
}

// testDistributions returns histograms (the aggregator's geometry) of n
// values drawn from a unimodal (log-normal around 20 ms), a bimodal
// (70 % around 1 ms, 30 % around 40 ms) and a heavy-tailed (Pareto,
// α = 1.2, from 2 ms, capped at 1 min) distribution, deterministically.
func testDistributions(n int) map[string]*hdr.PackedHistogram {
	r := rand.New(rand.NewPCG(16, 4))
	draw := map[string]func() float64{
		"unimodal": func() float64 { return 20e6 * math.Exp(0.4*r.NormFloat64()) },
		"bimodal": func() float64 {
			if r.Float64() < 0.7 {
				return 1e6 * math.Exp(0.2*r.NormFloat64())
			}
			return 40e6 * math.Exp(0.2*r.NormFloat64())
		},
		"heavy-tailed": func() float64 { return min(2e6*math.Pow(1-r.Float64(), -1/1.2), 60e9) },
	}
	out := make(map[string]*hdr.PackedHistogram, len(draw))
	for _, name := range []string{"unimodal", "bimodal", "heavy-tailed"} {
		h := hdr.NewPacked(fixtureLowest, fixtureHighest, fixtureDigits)
		for range n {
			if err := h.RecordValue(int64(draw[name]())); err != nil {
				panic("BUG: " + err.Error())
			}
		}
		out[name] = h
	}
	return out
}

// nearestRank is the nearest-rank quantile q of ascending values.
func nearestRank(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
