package spigo

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// TestReadMetricsStorage checks the README §7 answers for
// storage_metrics.json.
func TestReadMetricsStorage(t *testing.T) {
	m, warnings, err := ReadMetrics(openFile(t, filepath.Join(sampleDir, "json_metrics", "storage_metrics.json")), 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	// The '}' closing "counters" is byte 457; the comma goes at 458.
	if want := []string{`repaired missing comma before "gauges" at byte 458`}; !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
	var sum int64
	for _, v := range m.Counters {
		sum += v
	}
	gauges := 0
	for actor, g := range m.Gauges {
		gauges += len(g)
		for _, stat := range []string{"P50", "P75", "P90", "P95", "P99", "P999"} {
			if _, ok := g[stat]; !ok {
				t.Errorf("%s has no %s", actor, stat)
			}
		}
		if _, ok := m.Counters[actor]; !ok {
			t.Errorf("gauge actor %s has no counter", actor)
		}
	}
	if len(m.Counters) != 9 || sum != 89 || gauges != 54 || len(m.Gauges) != 9 {
		t.Errorf("%d counters (sum %d), %d gauges of %d actors; want 9 (89), 54 of 9", len(m.Counters), sum, gauges, len(m.Gauges))
	}
	const load = "storage.*.*.load0....load.denominator"
	if m.Counters[load] != 9 || m.Gauges[load]["P50"] != 11775 || m.Gauges[load]["P99"] != 1966079 {
		t.Errorf("load: counter %d P50 %d P99 %d", m.Counters[load], m.Gauges[load]["P50"], m.Gauges[load]["P99"])
	}
	if m.Gauges["storage.edda"]["P999"] != 375295 {
		t.Errorf("storage.edda P999 = %d", m.Gauges["storage.edda"]["P999"])
	}

	// Services: README §7 lists load, blockstore, eureka, memcache, mysql
	// and storage "by part 7", the Feb 2016 9-part names that ParseName
	// reads ("storage" is storage.us-east-1.zoneA.storage0....storage.staash).
	// storage.edda has no part 7: ResourceAttrs makes the whole name its
	// service.name, a seventh service.
	services := map[string]bool{}
	for actor := range m.Counters {
		for _, a := range ResourceAttrs(actor) {
			if a.Key == AttrService {
				services[a.Value] = true
			}
		}
	}
	want := []string{"blockstore", "eureka", "load", "memcache", "mysql", "storage", "storage.edda"}
	if got := slices.Sorted(mapKeys(services)); !reflect.DeepEqual(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
	n, ok := ParseName("storage.us-east-1.zoneA.mysql0....mysql.karyon")
	if !ok || n.Instance != "mysql0" || n.Service != "mysql" || n.Package != "karyon" || n.Machine != "" {
		t.Errorf("Feb 2016 name parsed as %+v, %t", n, ok)
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestReadMetricsVariants(t *testing.T) {
	tests := []struct {
		file     string
		warnings []string
		counters map[string]int64
		gauges   map[string]map[string]int64
	}{
		{
			file: "metrics_valid.json",
			counters: map[string]int64{
				"fsm": 100, "fsm.atlantic.bermuda.blackbeard.pirate.blackbeard1": 6, "netflixoss.*.*.www0....www.denominator": 138,
			},
			gauges: map[string]map[string]int64{
				"fsm": {"P50": 317439, "P999": 592383},
				"fsm.atlantic.bermuda.blackbeard.pirate.blackbeard1": {"Min": 3583, "Max": 1100799, "P75": 113663, "Mean": 51234},
				"netflixoss.us-east-1.*.www-elb0....www-elb.elb":     {"P95": 143359},
			},
		},
		{
			file:     "metrics_crlf.json",
			warnings: []string{`repaired missing comma before "gauges" at byte 29`},
			counters: map[string]int64{"lamp.edda": 3},
			gauges:   map[string]map[string]int64{"lamp.edda": {"P50": 1024}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, warnings, err := ReadMetrics(openFile(t, filepath.Join("testdata", tt.file)), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) || !reflect.DeepEqual(m.Counters, tt.counters) || !reflect.DeepEqual(m.Gauges, tt.gauges) {
				t.Errorf("got %q %v %v\nwant %q %v %v", warnings, m.Counters, m.Gauges, tt.warnings, tt.counters, tt.gauges)
			}
		})
	}
}

func TestReadMetricsErrors(t *testing.T) {
	const c = `"counters":{"a.edda":1}`
	tests := []struct {
		name, in string
		limit    int64
		want     []string
	}{
		{"empty", ``, 0, []string{"metrics file", "unexpected EOF"}},
		{"truncated", "{\n" + c + `,"gauges":{"a.edda.P50":1`, 0, []string{"unexpected EOF"}},
		{"truncated after repair", "{\n" + c + "\n" + `"gauges":{"a.edda.P50":1`, 0, []string{"unexpected EOF", "byte 50"}},
		{"missing comma between counters", `{"counters":{"a":1 "b":2}}`, 0, []string{"invalid character", "byte 19"}},
		{"missing comma after gauges", `{"gauges":{"a.P50":1}` + "\n" + `"counters":{"a":1}}`, 0, []string{"invalid character", "byte 22"}},
		{"missing comma before other key", `{` + c + ` "other":1}`, 0, []string{"invalid character", "byte 25"}},
		{"missing comma twice", `{` + c + ` "gauges":{"a.edda.P50":1} "x":2}`, 0, []string{"invalid character", "byte 51"}},
		{"string value", `{"counters":{"a":"9"}}`, 0, []string{`"counters" "a": value is string "9", want an integer`, "byte 17"}},
		{"float value", `{"counters":{"a":9.5}}`, 0, []string{`value 9.5 is not an int64 integer`, "byte 17"}},
		{"object value", `{"gauges":{"a.P50":{}}}`, 0, []string{`value is an object, want an integer`}},
		{"counters not an object", `{"counters":[1]}`, 0, []string{`"counters": got an array, want an object`}},
		{"gauge without statistic", `{"gauges":{"edda":5}}`, 0, []string{`gauge "edda": want <actor>.<statistic>`, "byte 11"}},
		{"gauge ending in a dot", `{"gauges":{"edda.":5}}`, 0, []string{`gauge "edda."`}},
		{"duplicate counter", `{"counters":{"a":1,"a":2}}`, 0, []string{`counter "a" appears twice`, "byte 19"}},
		{"duplicate gauge", `{"gauges":{"a.P50":1,"a.P50":2}}`, 0, []string{`gauge "a.P50" appears twice`}},
		{"empty name", `{"counters":{"":1}}`, 0, []string{"empty name"}},
		{"offset after the repair", "{\n" + c + "\n" + `"gauges":{"a.edda.P50":"x"}}`, 0, []string{`"gauges" "a.edda.P50": value is string "x"`, "byte 49"}},
		{"too large", "{\n" + c + "}", 10, []string{"larger than 10 bytes"}},
		{"trailing data", `{}{}`, 0, []string{"after the document", "byte 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, err := ReadMetrics(strings.NewReader(tt.in), tt.limit)
			if err == nil {
				t.Fatalf("no error, metrics %+v", m)
			}
			if !errors.Is(err, ingest.ErrInvalid) {
				t.Errorf("error %v does not wrap ingest.ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestReadMetricsLimit(t *testing.T) {
	in := `{"counters":{"a":1}}` // 20 bytes
	if _, _, err := ReadMetrics(strings.NewReader(in), 20); err != nil {
		t.Errorf("limit = size: %v", err)
	}
	if _, _, err := ReadMetrics(strings.NewReader(in), 19); err == nil {
		t.Error("limit = size-1 accepted")
	}
}

func TestMetricsRequest(t *testing.T) {
	m, _, err := ReadMetrics(openFile(t, filepath.Join("testdata", "metrics_valid.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MetricsRequest(m, testTime)
	if err != nil {
		t.Fatal(err)
	}
	var req colmetricspb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	type point struct {
		attr  string
		value int64
	}
	type actor struct {
		resource map[string]string
		counter  int64 // -1: none
		points   []point
	}
	var got []actor
	ts := uint64(testTime.UnixNano())
	for _, rm := range req.ResourceMetrics {
		if len(rm.ScopeMetrics) != 1 || rm.ScopeMetrics[0].Scope.GetName() != ScopeName {
			t.Fatalf("scopes %v", rm.ScopeMetrics)
		}
		a := actor{resource: attrMap(rm.Resource.Attributes), counter: -1}
		for _, mt := range rm.ScopeMetrics[0].Metrics {
			switch mt.Name {
			case MetricMessagesReceived:
				s := mt.GetSum()
				if mt.Unit != "{message}" || s == nil || !s.IsMonotonic || s.AggregationTemporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE || len(s.DataPoints) != 1 {
					t.Fatalf("sum %v", mt)
				}
				if p := s.DataPoints[0]; p.TimeUnixNano != ts {
					t.Errorf("sum time %d", p.TimeUnixNano)
				}
				a.counter = s.DataPoints[0].GetAsInt()
			case MetricDeliveryLatency:
				if mt.Unit != "ns" || mt.GetGauge() == nil {
					t.Fatalf("gauge %v", mt)
				}
				for _, p := range mt.GetGauge().DataPoints {
					if len(p.Attributes) != 1 || p.TimeUnixNano != ts {
						t.Fatalf("gauge point %v", p)
					}
					kv := p.Attributes[0]
					a.points = append(a.points, point{kv.Key + "=" + kv.GetValue().GetStringValue(), p.GetAsInt()})
				}
			default:
				t.Fatalf("metric %s", mt.Name)
			}
		}
		got = append(got, a)
	}
	want := []actor{
		{map[string]string{AttrService: "fsm"}, 100, []point{{"quantile=0.5", 317439}, {"quantile=0.999", 592383}}},
		{
			map[string]string{AttrNamespace: "fsm", AttrRegion: "atlantic", AttrZone: "bermuda", AttrService: "blackbeard", AttrPackage: "pirate", AttrInstance: "blackbeard1"},
			6, []point{{"quantile=0", 3583}, {"quantile=0.75", 113663}, {"quantile=1", 1100799}, {"statistic=Mean", 51234}},
		},
		{
			map[string]string{AttrNamespace: "netflixoss", AttrRegion: "*", AttrZone: "*", AttrService: "www", AttrPackage: "denominator", AttrInstance: "www0"},
			138, nil,
		},
		{
			map[string]string{AttrNamespace: "netflixoss", AttrRegion: "us-east-1", AttrZone: "*", AttrService: "www-elb", AttrPackage: "elb", AttrInstance: "www-elb0"},
			-1, []point{{"quantile=0.95", 143359}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if _, err := MetricsRequest(m, time.Unix(0, 0)); err == nil {
		t.Error("epoch accepted")
	}
}

// TestMetricsRequestStorage counts the points of the sample file.
func TestMetricsRequestStorage(t *testing.T) {
	m, _, err := ReadMetrics(openFile(t, filepath.Join(sampleDir, "json_metrics", "storage_metrics.json")), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := MetricsRequest(m, testTime)
	if err != nil {
		t.Fatal(err)
	}
	var req colmetricspb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	sums, gaugePoints := 0, 0
	quantiles := map[string]bool{}
	for _, rm := range req.ResourceMetrics {
		for _, mt := range rm.ScopeMetrics[0].Metrics {
			if s := mt.GetSum(); s != nil {
				sums += len(s.DataPoints)
			}
			if g := mt.GetGauge(); g != nil {
				for _, p := range g.DataPoints {
					gaugePoints++
					quantiles[attrMap(p.Attributes)[AttrQuantile]] = true
				}
			}
		}
	}
	wantQ := []string{"0.5", "0.75", "0.9", "0.95", "0.99", "0.999"}
	if len(req.ResourceMetrics) != 9 || sums != 9 || gaugePoints != 54 || !reflect.DeepEqual(slices.Sorted(mapKeys(quantiles)), wantQ) {
		t.Errorf("%d resources, %d sum points, %d gauge points, quantiles %v", len(req.ResourceMetrics), sums, gaugePoints, quantiles)
	}
}
