package importer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/ingest"
)

// TestDetectFiles detects the format of every sample file, whole and cut
// to its first bytes.
func TestDetectFiles(t *testing.T) {
	tests := []struct {
		file string
		want Format
	}{
		{spigoDir + "json_metrics/lamp_flow.json", FormatZipkinV1},
		{spigoDir + "json_metrics/storage_flow.json", FormatZipkinV1},
		{spigoDir + "json_metrics/lamp.guess", FormatSpigoGuess},
		{spigoDir + "json_metrics/storage.guess", FormatSpigoGuess},
		{spigoDir + "json_metrics/storage_metrics.json", FormatSpigoMetrics},
		{spigoDir + "json/lamp.json", FormatSpigoGraph},
		{spigoDir + "json_arch/lamp_arch.json", FormatSpigoArch},
		{"../spigo/testdata/arch_storage.json", FormatSpigoArch},
		{"../spigo/testdata/graph_collapsed.json", FormatSpigoGraph},
		{"../spigo/testdata/graph_v03_forget.json", FormatSpigoGraph},
		{"../spigo/testdata/guess_variants.guess", FormatSpigoGuess},
		{"../spigo/testdata/metrics_valid.json", FormatSpigoMetrics},
		{"../zipkin/testdata/v1_zipkin.json", FormatZipkinV1},
		{"../zipkin/testdata/v1_forward.json", FormatZipkinV1},
		{"../zipkin/testdata/v2_basic.json", FormatZipkinV2},
		{"testdata/zipkin_v2.json", FormatZipkinV2},
		{"testdata/otlp_traces.json", FormatOTLPTraces},
		{"testdata/otlp_traces.jsonl", FormatOTLPTraces},
		{"testdata/otlp_metrics.json", FormatOTLPMetrics},
		{"../otlpjson/testdata/traces_lenient.json", FormatOTLPTraces},
	}
	for _, tt := range tests {
		t.Run(tt.file[strings.LastIndexByte(tt.file, '/')+1:], func(t *testing.T) {
			b, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			// Whole, and cut (inside a span object or before the
			// "graph" array ends).
			for _, n := range []int{len(b), min(len(b), 1000)} {
				got, err := Detect(b[:n])
				if err != nil || got != tt.want {
					t.Errorf("Detect(first %d bytes) = %q, %v; want %q", n, got, err, tt.want)
				}
			}
		})
	}
}

// TestDetectHeads checks Detect on tricky starts.
func TestDetectHeads(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`[{"traceId":"0000000000000001","id":"0000000000000001","annotations":[]}]`))
	zw.Close()
	tests := []struct {
		name string
		head string
		want Format
		err  string // substring of the error, when one is wanted
	}{
		{"empty array", "[]", FormatZipkinV1, ""},
		{"spigo empty run", "[\n\n]\n", FormatZipkinV1, ""},
		{"open bracket only", "[", FormatZipkinV1, ""},
		{"bom and blanks", "\xef\xbb\xbf \r\n\t[{\"traceId\":\"1\"", FormatZipkinV1, ""},
		{"v1 annotations", `[{"traceId":"1","annotations":[{"endpoint":{"serviceName":"a"}}]}]`, FormatZipkinV1, ""},
		{"v1 binary annotations", `[{"traceId":"1","binaryAnnotations":[]}]`, FormatZipkinV1, ""},
		{"v2 kind", `[{"traceId":"1","id":"2","kind":"CLIENT"}]`, FormatZipkinV2, ""},
		{"v2 late key", `[{"traceId":"1","annotations":[{"timestamp":1,"value":"x"}],"localEndpoint":{}}]`, FormatZipkinV2, ""},
		{"v2 truncated in value", `[{"traceId":"1","name":"abc","tags":{"a":"b`, FormatZipkinV2, ""},
		{"v1 truncated in string", `[{"traceId":"00000000000`, FormatZipkinV1, ""},
		{"leading comma layout", "[\n{\"traceId\":\"1\",\"annotations\":[]}\n,\n{}]", FormatZipkinV1, ""},
		{"otlp traces", `{"resourceSpans":[]}`, FormatOTLPTraces, ""},
		{"otlp traces snake", `{"resource_spans":[]}`, FormatOTLPTraces, ""},
		{"otlp metrics", "\n{\"resourceMetrics\":[{\"resource\":{}}]}\n{\"resourceMetrics\":[]}\n", FormatOTLPMetrics, ""},
		{"otlp json lines", "{\"resourceSpans\":[]}\n{\"resourceSpans\":[]}\n", FormatOTLPTraces, ""},
		{"guess", `{"space":{"name":"lamp"`, FormatSpigoGuess, ""},
		{"old metrics without comma", "{\n\"counters\":{\"a\":1}\n\"gauges\":{}}", FormatSpigoMetrics, ""},
		{"gauges first", `{"gauges":{"a.P50":1}}`, FormatSpigoMetrics, ""},
		{"graph", `{"arch":"lamp","version":"spigo-0.4","graph":[`, FormatSpigoGraph, ""},
		{"graph cut before key", `{"arch":"lamp","version":"spigo-0.4","args":"[./spigo`, FormatSpigoGraph, ""},
		{"arch", `{"arch":"lamp","description":"x","services":[]}`, FormatSpigoArch, ""},
		{"arch cut before key", `{"arch":"lamp","version":"arch-0.0","description":"Simple`, FormatSpigoArch, ""},
		{"gzip", gz.String(), FormatZipkinV1, ""},
		{"gzip cut", gz.String()[:20], FormatZipkinV1, ""},

		{"empty", "", "", "unknown format: empty input"},
		{"blanks", " \n\t ", "", "unknown format: empty input"},
		{"garbage", "\x00\x01\x02garbage", "", `unknown format: "\x00\x01\x02garbage"`},
		{"long text", strings.Repeat("hello ", 20), "", `unknown format: "hello hello hello hello hello hello hell"…`},
		{"csv", "name: storage.*.*..load00...load.denominator_net\nquantiles", "", `unknown format: "name: storage`},
		{"array of numbers", "[1,2,3]", "", "a JSON array of numbers"},
		{"array of garbage", "[\x00]", "", "a JSON array of invalid JSON"},
		{"unknown object", `{"foo":1,"bar":[1,2]}`, "", `a JSON object with keys "foo", "bar"`},
		{"zipkin span not in array", `{"traceId":"1","id":"2"}`, "", "a Zipkin file is an array of spans"},
		{"otlp logs", `{"resourceLogs":[]}`, "", "OTLP/JSON logs"},
		{"gzip garbage", "\x1f\x8b\x00\x00", "", "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect([]byte(tt.head))
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Detect = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Detect = %q, want error containing %q", got, tt.err)
			}
			if !errors.Is(err, ingest.ErrInvalid) {
				t.Errorf("error %v does not wrap ingest.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q does not contain %q", err, tt.err)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		if got, err := ParseFormat(string(f)); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if got, err := ParseFormat(""); err != nil || got != "" {
		t.Errorf(`ParseFormat("") = %q, %v`, got, err)
	}
	if _, err := ParseFormat("zipkin"); !errors.Is(err, ingest.ErrInvalid) || !strings.Contains(err.Error(), "zipkin-v1, zipkin-v2") {
		t.Errorf(`ParseFormat("zipkin") error = %v`, err)
	}
}
