package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestParseNodes(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr string
	}{
		{in: "1,3", want: []int{1, 3}},
		{in: "3", want: []int{3}},
		{in: " 2 , 1 ,5", want: []int{2, 1, 5}},
		{in: "32", want: []int{32}},
		{in: "", wantErr: "not a whole number"},
		{in: "1,,3", wantErr: "not a whole number"},
		{in: "1,x", wantErr: "not a whole number"},
		{in: "0", wantErr: "not between 1 and 32"},
		{in: "-1", wantErr: "not between 1 and 32"},
		{in: "33", wantErr: "not between 1 and 32"},
		{in: "1,3,1", wantErr: "1 twice"},
	}
	for _, tc := range tests {
		got, err := parseNodes(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseNodes(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseNodes(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	home, _ := os.UserHomeDir()
	tests := []struct {
		name    string
		args    []string
		getenv  func(string) string
		check   func(config) bool
		wantErr string
	}{
		{name: "defaults", getenv: env(), check: func(c config) bool {
			return reflect.DeepEqual(c.Nodes, []int{1, 3}) && c.Duration == 30*time.Second && c.Conns == 4 && c.JSON == "" &&
				c.Collector == "" && c.Otelcol == filepath.Join(home, ".cache", "flowscope", "otelcol-v0.161.0", "otelcol-flowscope")
		}},
		{name: "otelcol from the environment", getenv: env("FLOWSCOPE_OTELCOL_BIN", "/x/otelcol"),
			check: func(c config) bool { return c.Otelcol == "/x/otelcol" }},
		{name: "tools dir", getenv: env("FLOWSCOPE_TOOLS_DIR", "/tools"),
			check: func(c config) bool { return c.Otelcol == "/tools/otelcol-v0.161.0/otelcol-flowscope" }},
		{name: "flag over environment", args: []string{"-otelcol", "/y"}, getenv: env("FLOWSCOPE_OTELCOL_BIN", "/x"),
			check: func(c config) bool { return c.Otelcol == "/y" }},
		{name: "all set", getenv: env(),
			args: []string{"-nodes", "3,1,2", "-duration", "10m", "-conns", "8", "-json", "out.json", "-collector", "/c", "-queue-size", "20000", "-consumers", "8"},
			check: func(c config) bool {
				return reflect.DeepEqual(c.Nodes, []int{3, 1, 2}) && c.Duration == 10*time.Minute && c.Conns == 8 &&
					c.JSON == "out.json" && c.Collector == "/c" && c.QueueSize == 20000 && c.Consumers == 8
			}},
		{name: "too long", getenv: env(), args: []string{"-duration", "10m1s"}, wantErr: "longer than 10m"},
		{name: "no duration", getenv: env(), args: []string{"-duration", "0s"}, wantErr: "must be positive"},
		{name: "bad nodes", getenv: env(), args: []string{"-nodes", "1;3"}, wantErr: "not a whole number"},
		{name: "no conns", getenv: env(), args: []string{"-conns", "0"}, wantErr: "-conns 0"},
		{name: "extra argument", getenv: env(), args: []string{"3"}, wantErr: "unexpected arguments"},
		{name: "unknown flag", getenv: env(), args: []string{"-rate", "5"}, wantErr: "not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, tc.getenv, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestCheckOtelcol(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "otelcol"), filepath.Join(dir, "plain")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(plain, []byte(""), 0o644)
	for _, tc := range []struct {
		path string
		ok   bool
	}{{exe, true}, {plain, false}, {dir, false}, {filepath.Join(dir, "missing"), false}} {
		err := checkOtelcol(tc.path)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), ".ci/build-otelcol")) {
			t.Errorf("checkOtelcol(%s) = %v, want ok %v (and an error naming .ci/build-otelcol)", tc.path, err, tc.ok)
		}
	}
}

func TestSumSpanCounts(t *testing.T) {
	tests := []struct {
		body string
		want int64
		bad  bool
	}{
		{`{"services":[{"name":"a","spanCount":"12","errorCount":"1"},{"name":"b","spanCount":"30"}]}`, 42, false},
		{`{"services":[{"name":"a","spanCount":7}]}`, 7, false},
		{`{"services":[{"name":"a"}]}`, 0, false},
		{`{"services":[]}`, 0, false},
		{`{"services":[{"spanCount":"x"}]}`, 0, true},
		{`not json`, 0, true},
	}
	for _, tc := range tests {
		got, err := sumSpanCounts([]byte(tc.body))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("sumSpanCounts(%s) = %d, %v; want %d (error %v)", tc.body, got, err, tc.want, tc.bad)
		}
	}
}

// TestRender checks that a rendered request decodes with fresh IDs for
// every round, the same parent links and everything else unchanged.
func TestRender(t *testing.T) {
	pool, spans, err := buildPool(3, 10, 1, time.Now().Add(-time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(pool) != 3 || spans != pool[0].spans+pool[1].spans+pool[2].spans {
		t.Fatalf("pool of %d requests, %d spans", len(pool), spans)
	}
	decode := func(b []byte) *coltracepb.ExportTraceServiceRequest {
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		return &req
	}
	seen := map[string]bool{}
	for _, e := range pool {
		orig := decode(e.raw)
		for round := range uint64(4) {
			got := decode(e.render(nil, round))
			ids := map[string]bool{} // span IDs of this request
			n := 0
			for i, rs := range got.GetResourceSpans() {
				for j, ss := range rs.GetScopeSpans() {
					for k, sp := range ss.GetSpans() {
						o := orig.ResourceSpans[i].ScopeSpans[j].Spans[k]
						n++
						if bytes.Equal(sp.TraceId, o.TraceId) || bytes.Equal(sp.SpanId, o.SpanId) {
							t.Fatalf("round %d: IDs unchanged", round)
						}
						ids[string(sp.SpanId)] = true
						if seen[string(sp.SpanId)+string(sp.TraceId)] {
							t.Fatalf("round %d: span ID %x of trace %x sent twice", round, sp.SpanId, sp.TraceId)
						}
						seen[string(sp.SpanId)+string(sp.TraceId)] = true
						c := proto.Clone(sp).(*tracepb.Span)
						c.TraceId, c.SpanId, c.ParentSpanId = o.TraceId, o.SpanId, o.ParentSpanId
						if !proto.Equal(c, o) {
							t.Fatalf("round %d: span %q changed beyond its IDs", round, sp.Name)
						}
						if (len(sp.ParentSpanId) == 0) != (len(o.ParentSpanId) == 0) {
							t.Fatalf("round %d: parent of %q lost", round, sp.Name)
						}
					}
				}
			}
			if n != e.spans {
				t.Fatalf("%d spans decoded, want %d", n, e.spans)
			}
			// Every parent is a span of the same request, as before.
			for _, rs := range got.GetResourceSpans() {
				for _, ss := range rs.GetScopeSpans() {
					for _, sp := range ss.GetSpans() {
						if len(sp.ParentSpanId) > 0 && !ids[string(sp.ParentSpanId)] {
							t.Fatalf("round %d: parent %x of %q not in the request", round, sp.ParentSpanId, sp.Name)
						}
					}
				}
			}
		}
	}
}

// TestFill checks the figures computed from CPU samples and span counts.
func TestFill(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s0 := cpuSample{at: t0, nodes: []float64{1, 2}, col: 10, self: 5, mach: 100}
	s1 := cpuSample{at: t0.Add(30 * time.Second), nodes: []float64{7, 8}, col: 40, self: 7, mach: 150}
	s2 := cpuSample{at: t0.Add(40 * time.Second), nodes: []float64{9, 10}, col: 45, self: 7.5, mach: 170}
	rr := &RunResult{Acked: 1_000_000, PerNode: []NodeResult{{Name: "node-1"}, {Name: "node-2"}}}
	rr.fill(s0, s1, s2, []int64{400_000, 600_000}, 2)
	approx := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
	checks := []struct {
		name      string
		got, want float64
	}{
		{"stored", float64(rr.Stored), 1_000_000},
		{"delivered/s", rr.DeliveredPerSec, 25_000},
		{"node-1 share", rr.PerNode[0].Share, 0.4},
		{"node-1 µs/span", rr.PerNode[0].MicrosPerSpan, 8 / 400_000.0 * 1e6},
		{"node-2 load CPU", rr.PerNode[1].CPULoad, 6},
		{"all nodes µs/span", rr.AllNodes.MicrosPerSpan, 16},
		{"Collector µs/span", rr.Otelcol.MicrosPerSpan, 35},
		{"generator µs/span", rr.Generator.MicrosPerSpan, 2.5},
		{"machine busy", rr.MachineBusy, 70},
		{"busy fraction", rr.BusyFraction, 70.0 / 80},
		{"others", rr.OthersBusy, 70 - 16 - 35 - 2.5},
		{"node capacity", rr.NodeCapacityPerCore, 62_500},
		{"short", float64(rr.Short), 0},
	}
	for _, c := range checks {
		if !approx(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}
