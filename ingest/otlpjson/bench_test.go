package otlpjson

import (
	"testing"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// benchTraces is the checkout trace of testdata with its spans repeated
// to n spans.
func benchTraces(b *testing.B, n int) *tracepb.TracesData {
	td, err := UnmarshalTracesData(readTestdata(b, "traces_checkout.json"))
	if err != nil {
		b.Fatal(err)
	}
	ss := td.ResourceSpans[1].ScopeSpans[0]
	for len(ss.Spans) < n {
		ss.Spans = append(ss.Spans, proto.Clone(ss.Spans[len(ss.Spans)%4]).(*tracepb.Span))
	}
	return td
}

// BenchmarkMarshalTracesData measures the query API's trace encoding.
//
//	go test ./ingest/otlpjson -run='^$' -bench=. -count=6 > new.txt; benchstat old.txt new.txt
func BenchmarkMarshalTracesData(b *testing.B) {
	const spans = 1000
	td := benchTraces(b, spans)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		out, err := MarshalTracesData(td)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.SetBytes(int64(size))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}

// BenchmarkUnmarshalTraces measures decoding an OTLP/JSON export request.
func BenchmarkUnmarshalTraces(b *testing.B) {
	const spans = 1000
	data, err := MarshalTracesData(benchTraces(b, spans))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalTraces(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
}
