package importer

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/spigo"
	"github.com/flowscope/flowscope/store"
)

// reference is the part of testdata/spigo/reference/*.reference.json
// checked here.
type reference struct {
	Flow struct {
		Spans                           int64    `json:"spans"`
		Traces                          int64    `json:"traces"`
		Services                        []string `json:"services"`
		TimestampMin                    int64    `json:"timestamp_us_min"`
		TimestampMax                    int64    `json:"timestamp_us_max"`
		AnnotationsWithEmptyServiceName int64    `json:"annotations_with_empty_serviceName"`
		AnnotationPatterns              map[string]int64
	} `json:"flow"`
}

func readReference(t *testing.T, path string) reference {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Flow struct {
			Patterns map[string]int64 `json:"annotation_patterns"`
		} `json:"flow"`
	}
	json.Unmarshal(b, &raw)
	ref.Flow.AnnotationPatterns = raw.Flow.Patterns
	return ref
}

// TestImportSpigoFlows imports the spigo flow samples into a recording
// sink and checks the summary against the reference answers.
//
// storage_flow.json has 6 spans (setup Hello messages, sr only) whose
// endpoint serviceName is empty: each becomes one OTLP span without
// service.name, counted in UnnamedSpans and in a warning, not in Services.
func TestImportSpigoFlows(t *testing.T) {
	tests := []struct {
		file, ref string
		batch     int
	}{
		{"lamp_flow.json", "lamp_sample", 0},
		{"storage_flow.json", "storage_sample", 0},
		{"storage_flow.json", "storage_sample", 7}, // many requests, traces cut
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ref := readReference(t, spigoDir+"reference/"+tt.ref+".reference.json")
			in := fileInput(t, spigoDir+"json_metrics/"+tt.file)
			sink := &recordingSink{}
			sum, err := Import(context.Background(), in, sink, Options{BatchSpans: tt.batch})
			if err != nil {
				t.Fatal(err)
			}
			f := ref.Flow
			if sum.Format != FormatZipkinV1 || sum.Name != tt.file || sum.Bytes != in.Size {
				t.Errorf("format, name, bytes = %q, %q, %d; want zipkin-v1, %q, %d", sum.Format, sum.Name, sum.Bytes, tt.file, in.Size)
			}
			if sum.Spans != f.Spans || sum.Traces != f.Traces {
				t.Errorf("spans, traces = %d, %d; want %d, %d", sum.Spans, sum.Traces, f.Spans, f.Traces)
			}
			if !slices.Equal(sum.Services, f.Services) {
				t.Errorf("services = %q, want %q", sum.Services, f.Services)
			}
			if sum.UnnamedSpans != f.AnnotationsWithEmptyServiceName {
				t.Errorf("unnamed spans = %d, want %d", sum.UnnamedSpans, f.AnnotationsWithEmptyServiceName)
			}
			// One OTLP span per span, plus a server span per cs→sr call.
			calls := f.AnnotationPatterns["cs,sr,ss,cr"] + f.AnnotationPatterns["cs,sr"]
			if sum.OTLPSpans != f.Spans+calls {
				t.Errorf("OTLP spans = %d, want %d", sum.OTLPSpans, f.Spans+calls)
			}
			sent := sink.spans(t)
			if int64(len(sent)) != sum.OTLPSpans || sum.SentSpans != sum.OTLPSpans {
				t.Errorf("sink got %d spans, summary sent %d; want OTLPSpans %d", len(sent), sum.SentSpans, sum.OTLPSpans)
			}
			if int64(len(sink.traces)) != sum.Requests || sum.Requests == 0 {
				t.Errorf("sink got %d requests, summary says %d", len(sink.traces), sum.Requests)
			}
			if tt.batch > 0 && sum.Requests < sum.OTLPSpans/int64(tt.batch) {
				t.Errorf("%d requests for %d spans in batches of %d", sum.Requests, sum.OTLPSpans, tt.batch)
			}
			wantStart := time.UnixMicro(f.TimestampMin).UTC()
			wantEnd := time.UnixMicro(f.TimestampMax).UTC()
			if !sum.Start.Equal(wantStart) || !sum.End.Equal(wantEnd) || sum.Shift != 0 {
				t.Errorf("range %v – %v shift %v; want %v – %v, 0", sum.Start, sum.End, sum.Shift, wantStart, wantEnd)
			}
			for _, sp := range sent {
				if sp.StartTimeUnixNano < uint64(wantStart.UnixNano()) || sp.EndTimeUnixNano > uint64(wantEnd.UnixNano()) {
					t.Fatalf("span %q at %d–%d outside the range", sp.Name, sp.StartTimeUnixNano, sp.EndTimeUnixNano)
				}
			}
			hasWarning(t, sum, "OTLP spans have no end")
			if f.AnnotationsWithEmptyServiceName > 0 {
				hasWarning(t, sum, "6 spans have an endpoint with an empty serviceName")
			}
			if sum.Rejected != 0 || sum.Retries != 0 || sum.Elapsed <= 0 {
				t.Errorf("rejected %d, retries %d, elapsed %v", sum.Rejected, sum.Retries, sum.Elapsed)
			}
		})
	}
}

func hasWarning(t *testing.T, sum Summary, part string) {
	t.Helper()
	for _, w := range sum.Warnings {
		if strings.Contains(w, part) {
			return
		}
	}
	t.Errorf("no warning contains %q: %q", part, sum.Warnings)
}

// TestImportRebase checks that Rebase moves the latest time to the rebase
// time and keeps durations.
func TestImportRebase(t *testing.T) {
	rebase := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, file := range []string{
		spigoDir + "json_metrics/lamp_flow.json",
		"testdata/zipkin_v2.json",
		"testdata/otlp_traces.jsonl",
		"testdata/otlp_traces.json",
	} {
		t.Run(file[strings.LastIndexByte(file, '/')+1:], func(t *testing.T) {
			plain, shifted := &recordingSink{}, &recordingSink{}
			sum0, err := Import(context.Background(), fileInput(t, file), plain, Options{})
			if err != nil {
				t.Fatal(err)
			}
			sum, err := Import(context.Background(), fileInput(t, file), shifted, Options{Rebase: rebase})
			if err != nil {
				t.Fatal(err)
			}
			if !sum.End.Equal(rebase) {
				t.Errorf("end = %v, want %v", sum.End, rebase)
			}
			if sum.Shift != rebase.Sub(sum0.End) || sum.Start != sum0.Start.Add(sum.Shift) {
				t.Errorf("shift %v, start %v; want %v, %v", sum.Shift, sum.Start, rebase.Sub(sum0.End), sum0.Start.Add(sum.Shift))
			}
			a, b := plain.spans(t), shifted.spans(t)
			if len(a) != len(b) || len(a) == 0 {
				t.Fatalf("%d spans plain, %d shifted", len(a), len(b))
			}
			var maxEnd uint64
			shift := uint64(sum.Shift)
			for i := range a {
				maxEnd = max(maxEnd, b[i].EndTimeUnixNano)
				if b[i].StartTimeUnixNano != a[i].StartTimeUnixNano+shift ||
					b[i].EndTimeUnixNano-b[i].StartTimeUnixNano != a[i].EndTimeUnixNano-a[i].StartTimeUnixNano {
					t.Fatalf("span %d: %d–%d, unshifted %d–%d", i, b[i].StartTimeUnixNano, b[i].EndTimeUnixNano, a[i].StartTimeUnixNano, a[i].EndTimeUnixNano)
				}
				for j, e := range b[i].Events {
					if e.TimeUnixNano != a[i].Events[j].TimeUnixNano+shift {
						t.Fatalf("span %d event %d not shifted", i, j)
					}
				}
			}
			if maxEnd != uint64(rebase.UnixNano()) {
				t.Errorf("latest span end %d, want %d", maxEnd, rebase.UnixNano())
			}
		})
	}
}

// TestImportOTLP imports OTLP/JSON traces and metrics, whole and as JSON
// Lines.
func TestImportOTLP(t *testing.T) {
	lampServices := []string{"memcache", "rds-mysql", "webserver", "webserver-elb", "www"}
	tests := []struct {
		file                 string
		format               Format
		spans, traces, pts   int64
		services             []string
		start, end           int64
		requests, batchSpans int
	}{
		{"otlp_traces.json", FormatOTLPTraces, 6, 1, 0, []string{"checkout", "frontend"}, 1718000000000000000, 1718000000250000000, 1, 0},
		{"otlp_traces.json", FormatOTLPTraces, 6, 1, 0, []string{"checkout", "frontend"}, 1718000000000000000, 1718000000250000000, 3, 2},
		{"otlp_traces.jsonl", FormatOTLPTraces, 6 + 49, 11, 0, append([]string{"checkout", "frontend"}, lampServices...),
			1463590172321079000, 1718000000250000000, 2, 0},
		{"otlp_metrics.json", FormatOTLPMetrics, 0, 0, 0, []string{"checkout"}, 0, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sink := &recordingSink{}
			sum, err := Import(context.Background(), fileInput(t, "testdata/"+tt.file), sink, Options{BatchSpans: tt.batchSpans})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(tt.services)
			if sum.Format != tt.format || sum.Spans != tt.spans || sum.OTLPSpans != tt.spans || sum.Traces != tt.traces {
				t.Errorf("format %q spans %d/%d traces %d; want %q, %d, %d", sum.Format, sum.Spans, sum.OTLPSpans, sum.Traces, tt.format, tt.spans, tt.traces)
			}
			if !slices.Equal(sum.Services, tt.services) {
				t.Errorf("services %q, want %q", sum.Services, tt.services)
			}
			if tt.format == FormatOTLPTraces {
				if got := len(sink.spans(t)); int64(got) != tt.spans {
					t.Errorf("sink got %d spans, want %d", got, tt.spans)
				}
				if sum.Start.UnixNano() != tt.start || sum.End.UnixNano() != tt.end {
					t.Errorf("range %d–%d, want %d–%d", sum.Start.UnixNano(), sum.End.UnixNano(), tt.start, tt.end)
				}
			} else {
				var points int64
				for _, req := range sink.metricRequests(t) {
					points += metricTimes(req, nil)
				}
				if points == 0 || points != sum.MetricPoints || sum.SentPoints != points {
					t.Errorf("sink got %d points; summary %d, sent %d", points, sum.MetricPoints, sum.SentPoints)
				}
			}
			if int(sum.Requests) != tt.requests {
				t.Errorf("%d requests, want %d", sum.Requests, tt.requests)
			}
		})
	}
}

// TestImportOTLPMetricsRebase checks that metric point times are shifted.
func TestImportOTLPMetricsRebase(t *testing.T) {
	rebase := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	sink := &recordingSink{}
	sum, err := Import(context.Background(), fileInput(t, "testdata/otlp_metrics.json"), sink, Options{Rebase: rebase, BatchSpans: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.End.Equal(rebase) || sum.Shift <= 0 {
		t.Errorf("end %v shift %v, want end %v", sum.End, sum.Shift, rebase)
	}
	var latest uint64
	for _, req := range sink.metricRequests(t) {
		metricTimes(req, func(p *uint64) { latest = max(latest, *p) })
	}
	if latest != uint64(rebase.UnixNano()) {
		t.Errorf("latest point time %d, want %d", latest, rebase.UnixNano())
	}
	if len(sink.metrics) < 2 {
		t.Errorf("%d requests with BatchSpans 2, want several", len(sink.metrics))
	}
}

// TestImportZipkinV2 imports the Zipkin v2 sample.
func TestImportZipkinV2(t *testing.T) {
	sink := &recordingSink{}
	sum, err := Import(context.Background(), fileInput(t, "testdata/zipkin_v2.json"), sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Format != FormatZipkinV2 || sum.Spans != 4 || sum.OTLPSpans != 4 || sum.Traces != 2 ||
		!slices.Equal(sum.Services, []string{"backend", "frontend"}) {
		t.Errorf("summary %+v", sum)
	}
	if sum.Start != time.UnixMicro(1700000000000000).UTC() || sum.End != time.UnixMicro(1700000001250000).UTC() {
		t.Errorf("range %v – %v", sum.Start, sum.End)
	}
}

// TestImportGzip imports gzip-compressed input.
func TestImportGzip(t *testing.T) {
	raw, err := os.ReadFile(spigoDir + "json_metrics/lamp_flow.json")
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	sink := &recordingSink{}
	sum, err := Import(context.Background(), BytesInput("lamp_flow.json.gz", gz.Bytes()), sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Gzip || sum.Spans != 26 || sum.Bytes != int64(gz.Len()) || len(sink.spans(t)) != int(sum.OTLPSpans) {
		t.Errorf("summary %+v", sum)
	}

	// Corrupt gzip data is invalid input, and nothing is sent.
	bad := bytes.Clone(gz.Bytes())
	bad[len(bad)/2] ^= 0xff
	sink = &recordingSink{}
	_, err = Import(context.Background(), BytesInput("bad.gz", bad), sink, Options{})
	if !errors.Is(err, ingest.ErrInvalid) || !strings.Contains(err.Error(), "gzip") || !sink.empty() {
		t.Errorf("corrupt gzip: error %v, sink empty %v", err, sink.empty())
	}
}

// TestImportArchitectures imports the spigo graph and architecture files.
func TestImportArchitectures(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t.Run("graph", func(t *testing.T) {
		sink := &recordingSink{}
		sum, err := Import(context.Background(), fileInput(t, spigoDir+"json/lamp.json"), sink, Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if len(sink.archs) != 1 {
			t.Fatalf("%d architectures stored", len(sink.archs))
		}
		a := sink.archs[0]
		if a.Name != "lamp" || a.Source != "spigo graph lamp.json" || !a.Imported.Equal(now) || len(a.Nodes) != 23 || len(a.Edges) != 73 {
			t.Errorf("architecture %q %q %v: %d nodes, %d edges; want lamp, 23, 73", a.Name, a.Source, a.Imported, len(a.Nodes), len(a.Edges))
		}
		if sum.Architecture == nil || *sum.Architecture != (ArchitectureSummary{"lamp", 23, 73}) || sum.Requests != 1 {
			t.Errorf("summary architecture %+v, %d requests", sum.Architecture, sum.Requests)
		}
		if want := []string{"memcache", "rds-mysql", "webserver", "webserver-elb", "www"}; !slices.Equal(sum.Services, want) {
			t.Errorf("services %q, want %q", sum.Services, want)
		}
		nodes := map[string]store.ArchNode{}
		for _, n := range a.Nodes {
			nodes[n.ID] = n
		}
		// The names at each level equal those of the resources of traces
		// of the same architecture (spigo.ResourceAttrs of flow names).
		for id, flowName := range map[string]string{
			"lamp.us-east-1.zoneA.webserver00": "lamp.us-east-1.zoneA..webserver00...webserver.monolith",
			"lamp.*.*.www00":                   "lamp.*.*..www00...www.denominator",
			"lamp.us-east-1.*.webserver-elb00": "lamp.us-east-1.*..webserver-elb00...webserver-elb.elb",
			"lamp.us-east-1.zoneB.rds-mysql01": "lamp.us-east-1.zoneB..rds-mysql01...rds-mysql.store",
			"lamp.us-east-1.zoneA.memcache00":  "lamp.us-east-1.zoneA..memcache00...memcache.store",
			"lamp.us-east-1.zoneC.webserver17": "lamp.us-east-1.zoneC..webserver17...webserver.monolith",
		} {
			n, ok := nodes[id]
			if !ok {
				t.Errorf("no node %q", id)
				continue
			}
			want := store.ArchNode{ID: id}
			for _, attr := range spigo.ResourceAttrs(flowName) {
				switch attr.Key {
				case spigo.AttrService:
					want.Service = attr.Value
				case spigo.AttrInstance:
					want.Instance = attr.Value
				case spigo.AttrZone:
					want.Zone = attr.Value
				case spigo.AttrRegion:
					want.Region = attr.Value
				case spigo.AttrNamespace:
					want.Namespace = attr.Value
				}
			}
			if n != want {
				t.Errorf("node %+v, want %+v", n, want)
			}
		}
		// Service-level edges: the 4 the README lists.
		svc := map[[2]string]int{}
		for _, e := range a.Edges {
			svc[[2]string{nodes[e.Source].Service, nodes[e.Target].Service}]++
		}
		wantSvc := map[[2]string]int{
			{"www", "webserver-elb"}: 1, {"webserver-elb", "webserver"}: 18,
			{"webserver", "rds-mysql"}: 36, {"webserver", "memcache"}: 18,
		}
		if len(svc) != len(wantSvc) {
			t.Errorf("service edges %v, want %v", svc, wantSvc)
		}
		for k, v := range wantSvc {
			if svc[k] != v {
				t.Errorf("service edge %v: %d instance edges, want %d", k, svc[k], v)
			}
		}
	})
	t.Run("graph name option", func(t *testing.T) {
		sink := &recordingSink{}
		if _, err := Import(context.Background(), fileInput(t, spigoDir+"json/lamp.json"), sink, Options{ArchName: "design"}); err != nil {
			t.Fatal(err)
		}
		if sink.archs[0].Name != "design" || sink.archs[0].Nodes[0].Namespace != "lamp" {
			t.Errorf("name %q namespace %q", sink.archs[0].Name, sink.archs[0].Nodes[0].Namespace)
		}
	})
	t.Run("arch", func(t *testing.T) {
		sink := &recordingSink{}
		sum, err := Import(context.Background(), fileInput(t, spigoDir+"json_arch/lamp_arch.json"), sink, Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		a := sink.archs[0]
		wantNodes := []store.ArchNode{
			{ID: "rds-mysql", Service: "rds-mysql", Namespace: "lamp"},
			{ID: "memcache", Service: "memcache", Namespace: "lamp"},
			{ID: "webserver", Service: "webserver", Namespace: "lamp"},
			{ID: "webserver-elb", Service: "webserver-elb", Namespace: "lamp"},
			{ID: "www", Service: "www", Namespace: "lamp"},
		}
		wantEdges := []store.ArchEdge{
			{Source: "webserver", Target: "memcache"}, {Source: "webserver", Target: "rds-mysql"},
			{Source: "webserver-elb", Target: "webserver"}, {Source: "www", Target: "webserver-elb"},
		}
		if a.Name != "lamp" || a.Source != "spigo arch lamp_arch.json" || !slices.Equal(a.Nodes, wantNodes) || !slices.Equal(a.Edges, wantEdges) {
			t.Errorf("architecture %+v", a)
		}
		if *sum.Architecture != (ArchitectureSummary{"lamp", 5, 4}) || len(sum.Warnings) != 0 {
			t.Errorf("summary %+v, warnings %q", sum.Architecture, sum.Warnings)
		}
	})
	t.Run("arch eureka", func(t *testing.T) {
		sink := &recordingSink{}
		sum, err := Import(context.Background(), fileInput(t, "../spigo/testdata/arch_storage.json"), sink, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range sink.archs[0].Edges {
			if e.Target == spigo.EurekaDependency {
				t.Errorf("edge to eureka %v", e)
			}
		}
		if strings.Contains(mustRead(t, "../spigo/testdata/arch_storage.json"), `"eureka"`) {
			hasWarning(t, sum, `dependency "eureka"`)
		}
	})
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestImportSpigoMetrics imports Guesstimate and old metrics files: one
// metrics request stamped at Now, or at Rebase.
func TestImportSpigoMetrics(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	rebase := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		file     string
		format   Format
		rebase   time.Time
		metric   string
		services []string
		warning  string
	}{
		{"json_metrics/lamp.guess", FormatSpigoGuess, time.Time{}, spigo.MetricLatency,
			[]string{"eureka", "lamp.edda", "memcache", "rds-mysql", "webserver", "webserver-elb", "www"}, ""},
		{"json_metrics/storage.guess", FormatSpigoGuess, rebase, spigo.MetricLatency, nil, ""},
		{"json_metrics/storage_metrics.json", FormatSpigoMetrics, time.Time{}, spigo.MetricDeliveryLatency,
			[]string{"blockstore", "eureka", "load", "memcache", "mysql", "storage", "storage.edda"},
			`repaired missing comma before "gauges"`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sink := &recordingSink{}
			sum, err := Import(context.Background(), fileInput(t, spigoDir+tt.file), sink,
				Options{Now: func() time.Time { return now }, Rebase: tt.rebase})
			if err != nil {
				t.Fatal(err)
			}
			at := now
			if !tt.rebase.IsZero() {
				at = tt.rebase
			}
			if sum.Format != tt.format || sum.MetricPoints == 0 || sum.SentPoints != sum.MetricPoints || sum.Requests != 1 {
				t.Errorf("summary %+v", sum)
			}
			if !sum.Start.Equal(at) || !sum.End.Equal(at) || sum.Shift != 0 {
				t.Errorf("range %v – %v shift %v, want %v", sum.Start, sum.End, sum.Shift, at)
			}
			if tt.services != nil && !slices.Equal(sum.Services, tt.services) {
				t.Errorf("services %q, want %q", sum.Services, tt.services)
			}
			if tt.warning != "" {
				hasWarning(t, sum, tt.warning)
			}
			reqs := sink.metricRequests(t)
			if len(reqs) != 1 {
				t.Fatalf("%d metrics requests", len(reqs))
			}
			points := metricTimes(reqs[0], func(p *uint64) {
				if *p != uint64(at.UnixNano()) {
					t.Fatalf("point time %d, want %d", *p, at.UnixNano())
				}
			})
			if points != sum.MetricPoints {
				t.Errorf("request has %d points, summary %d", points, sum.MetricPoints)
			}
			found := false
			for _, rm := range reqs[0].ResourceMetrics {
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						found = found || m.Name == tt.metric
					}
				}
			}
			if !found {
				t.Errorf("no metric %q", tt.metric)
			}
		})
	}
}

// TestImportStorageMetricsCounts checks the old metrics file against its
// reference counts: 9 counters and 54 gauges, one point each.
func TestImportStorageMetricsCounts(t *testing.T) {
	sink := &recordingSink{}
	sum, err := Import(context.Background(), fileInput(t, spigoDir+"json_metrics/storage_metrics.json"), sink, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.MetricPoints != 9+54 {
		t.Errorf("%d points, want 63", sum.MetricPoints)
	}
	var counterSum int64
	for _, req := range sink.metricRequests(t) {
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name == spigo.MetricMessagesReceived {
						for _, p := range m.GetSum().DataPoints {
							counterSum += p.GetAsInt()
						}
					}
				}
			}
		}
	}
	if counterSum != 89 {
		t.Errorf("counters sum to %d, want 89", counterSum)
	}
}

// TestImportGuessSkips checks that skipped Guesstimate series are
// reported.
func TestImportGuessSkips(t *testing.T) {
	sum, err := Import(context.Background(), fileInput(t, "../spigo/testdata/guess_variants.guess"), &recordingSink{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	hasWarning(t, sum, "guesstimate: skipped")
}

// TestImportProgress checks that progress is reported for both passes and
// ends at the whole file.
func TestImportProgress(t *testing.T) {
	in := fileInput(t, spigoDir+"json_metrics/storage_flow.json")
	var last [3]Progress
	calls := 0
	sum, err := Import(context.Background(), in, discardSink{}, Options{Progress: func(p Progress) {
		calls++
		if p.Pass < 1 || p.Pass > 2 || p.Total != in.Size || p.Bytes > in.Size {
			t.Errorf("progress %+v", p)
		}
		last[p.Pass] = p
	}})
	if err != nil {
		t.Fatal(err)
	}
	for pass := 1; pass <= 2; pass++ {
		if p := last[pass]; p.Bytes != in.Size || p.Spans != sum.OTLPSpans {
			t.Errorf("last progress of pass %d: %+v, want %d bytes, %d spans", pass, p, in.Size, sum.OTLPSpans)
		}
	}
	if calls > 10 {
		t.Errorf("%d progress calls for a small file", calls)
	}
}

// TestSummaryJSON pins the JSON names of the summary.
func TestSummaryJSON(t *testing.T) {
	sum, err := Import(context.Background(), fileInput(t, spigoDir+"json_metrics/lamp_flow.json"), discardSink{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sum.Elapsed = 5
	b, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		`"name":"lamp_flow.json"`, `"format":"zipkin-v1"`, `"spans":26`, `"otlpSpans":49`, `"traces":10`,
		`"services":["memcache","rds-mysql","webserver","webserver-elb","www"]`,
		`"start":"2016-05-18T16:49:32.321079Z"`, `"end":"2016-05-18T16:49:34.134607Z"`, `"shift":0`,
		`"metricPoints":0`, `"rejected":0`, `"requests":1`, `"sentSpans":49`, `"elapsed":5`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON lacks %s: %s", want, got)
		}
	}
	for _, absent := range []string{`"architecture"`, `"unnamedSpans"`, `"rejects"`, `"gzip"`} {
		if strings.Contains(got, absent) {
			t.Errorf("JSON has %s: %s", absent, got)
		}
	}
}
