package importer

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestImportMemoryBounded imports a generated flow file larger than the
// bound into a discarding sink and checks that the Go heap in use,
// sampled at every progress call, stays below a bound that does not
// depend on the file size.
func TestImportMemoryBounded(t *testing.T) {
	const bound = 64 << 20
	spans := 200_000 // about 120 MB of JSON
	if testing.Short() || raceEnabled {
		spans = 10_000
	}
	in := flowInput(spans)
	var peak uint64
	var ms runtime.MemStats
	samples := 0
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		samples++
	}
	start := time.Now()
	sum, err := Import(context.Background(), in, discardSink{}, Options{Progress: func(Progress) { sample() }})
	if err != nil {
		t.Fatal(err)
	}
	sample()
	t.Logf("%d spans, %.0f MB file: peak heap in use %.1f MB over %d samples, %v",
		sum.Spans, float64(in.Size)/1e6, float64(peak)/(1<<20), samples, time.Since(start))
	if sum.Spans < int64(spans) || sum.SentSpans != sum.OTLPSpans || sum.OTLPSpans != 2*sum.Spans {
		t.Errorf("summary %+v", sum)
	}
	if peak > bound {
		t.Errorf("peak heap in use %d bytes, want at most %d", peak, bound)
	}
	if !testing.Short() && !raceEnabled && in.Size <= 2*bound {
		t.Errorf("the file (%d bytes) should be well above the bound", in.Size)
	}
}
