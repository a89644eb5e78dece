package importer

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest/storesink"

	"github.com/flowscope/flowscope/store"
)

// benchSpans is the number of span objects of the generated file;
// FLOWSCOPE_IMPORT_BENCH_SPANS overrides it.
const benchSpans = 1_000_000

// BenchmarkImportSpigo generates a spigo-format Zipkin v1 flow file of
// 1,000,000 span objects (250,000 traces of www → webserver-elb →
// webserver → {rds-mysql, memcache}, about 740 MB) once, then imports it
// into a discarding sink and, rebased to now, into a real store. It
// reports input spans per second (both passes), the file size, the peak
// Go heap in use (sampled at progress calls) and the process's peak RSS
// (VmHWM, reset before each sub-benchmark; it includes the store's
// memory-mapped file). Run it once:
//
//	go test ./ingest/importer -run='^$' -bench=ImportSpigo -benchtime=1x
func BenchmarkImportSpigo(b *testing.B) {
	spans := benchSpans
	if s := os.Getenv("FLOWSCOPE_IMPORT_BENCH_SPANS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		spans = n
	}
	path := filepath.Join(b.TempDir(), "lamp_flow.json")
	writeFlowFile(b, path, spans)
	in := fileInput(b, path)

	b.Run("discard", func(b *testing.B) {
		benchImport(b, in, Options{}, func(b *testing.B) Sink { return discardSink{} })
	})
	b.Run("store", func(b *testing.B) {
		benchImport(b, in, Options{Rebase: time.Now()}, func(b *testing.B) Sink {
			db, err := store.Open(b.TempDir(), store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return storesink.New(db)
		})
	})
}

// writeFlowFile writes a generated flow file of spans span objects.
func writeFlowFile(b *testing.B, path string, spans int) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.Copy(w, newFlowGen(spans)); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchImport imports in into a new sink per iteration.
func benchImport(b *testing.B, in Input, opts Options, newSink func(*testing.B) Sink) {
	resetPeakRSS()
	var ms runtime.MemStats
	var peakHeap uint64
	opts.Progress = func(Progress) {
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapInuse)
	}
	b.SetBytes(in.Size)
	var spans int64
	var elapsed time.Duration
	for b.Loop() {
		sink := newSink(b)
		start := time.Now()
		sum, err := Import(context.Background(), in, sink, opts)
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if sum.Rejected != 0 || sum.SentSpans != sum.OTLPSpans {
			b.Fatalf("summary %+v", sum)
		}
		spans += sum.Spans
	}
	b.ReportMetric(float64(spans)/elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(in.Size)/1e6, "file-MB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
	if rss := peakRSS(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
	}
}

// resetPeakRSS resets the process's peak RSS (Linux; ignored elsewhere).
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's peak resident set size in bytes (VmHWM),
// or 0 when unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 2 && string(f[1]) == "kB" {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
