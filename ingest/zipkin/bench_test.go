package zipkin

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkDecodeV1 decodes a spigo-like Zipkin v1 file of 15,000 span
// objects (5,000 traces, 30,000 OTLP spans) into OTLP requests of the
// default batch size, encoding included. It reports input spans per second
// and bytes per second. Compare runs with
//
//	go test ./ingest/zipkin -run='^$' -bench=DecodeV1 -count=6 > new.txt
//	benchstat old.txt new.txt
func BenchmarkDecodeV1(b *testing.B) {
	input := spigoInput(5000)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	var spans int64
	var elapsed time.Duration
	for b.Loop() {
		start := time.Now()
		st, err := Decode(bytes.NewReader(input), V1, Options{}, func([]byte, int) error { return nil })
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		spans += st.Spans
	}
	b.ReportMetric(float64(spans)/elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(spans), "ns/span")
}
