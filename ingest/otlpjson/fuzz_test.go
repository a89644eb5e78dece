package otlpjson

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// maxFuzzInput caps fuzz inputs: larger documents explore nothing new and
// slow the fuzzer down.
const maxFuzzInput = 64 << 10

// addSeeds adds every testdata input document, compacted (the golden
// outputs would only repeat them), and a few hand-made edge cases.
func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			f.Fatal(err)
		}
		f.Add(compact.Bytes())
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"a"}]}]}]}`,
		`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"\u0041B","parentSpanId":"!"}]}]}]}`,
		`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"gauge":{"dataPoints":[{"exemplars":[{"traceId":"0102","spanId":"0X"}]}]}}]}]}]}`,
		`{"traceId" : "ab" , "spanId":"abcde"}`,
	} {
		f.Add([]byte(s))
	}
}

// fuzzRoundTrip checks the properties every decodable input must have:
// decoding never panics, and a decoded message survives marshal → unmarshal
// unchanged, with marshal deterministic.
func fuzzRoundTrip(t *testing.T, data []byte, newMsg func() proto.Message) {
	if len(data) > maxFuzzInput {
		t.Skip("input too large")
	}
	orig := bytes.Clone(data)
	m := newMsg()
	err := Unmarshal(data, m)
	if !bytes.Equal(data, orig) {
		t.Fatal("Unmarshal modified its input")
	}
	if err != nil {
		return
	}
	out, err := Marshal(m)
	if err != nil {
		// protojson refuses to write some values it reads (none known);
		// the codec must say so rather than panic.
		t.Fatalf("Marshal of a decoded message: %v", err)
	}
	back := newMsg()
	if err := Unmarshal(out, back); err != nil {
		t.Fatalf("Unmarshal(Marshal(m)): %v\n%s", err, out)
	}
	if !proto.Equal(m, back) {
		t.Fatalf("round trip changed the message\nbefore: %v\nafter:  %v", m, back)
	}
	again, err := Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Fatalf("unstable output:\n%s\n%s", out, again)
	}
}

func FuzzUnmarshalTraces(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, data, func() proto.Message { return &coltracepb.ExportTraceServiceRequest{} })
	})
}

func FuzzUnmarshalMetrics(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip(t, data, func() proto.Message { return &colmetricspb.ExportMetricsServiceRequest{} })
	})
}
