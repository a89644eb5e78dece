package otlphttp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flowscope/flowscope/ingest/internal/budgetio/budgetiotest"

	"github.com/flowscope/flowscope/ingest"
)

// nopConsumer accepts everything.
type nopConsumer struct{}

func (nopConsumer) ConsumeTraces(context.Context, []byte) (ingest.Result, error) {
	return ingest.Result{}, nil
}
func (nopConsumer) ConsumeMetrics(context.Context, []byte) (ingest.Result, error) {
	return ingest.Result{}, nil
}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the handler rather than httptest.ResponseRecorder.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkHandlerProtobuf measures one OTLP/HTTP export of 512 spans (the
// SDK's default batch) through the handler to a no-op consumer: body read,
// decompression, the protobuf decode check and the response. Compare runs
// with
//
//	go test ./ingest/otlphttp -run='^$' -bench=HandlerProtobuf -count=6 > new.txt
//	benchstat old.txt new.txt
func BenchmarkHandlerProtobuf(b *testing.B) {
	const spans = 512
	body := mustProto(b, sampleTraces(spans))
	for _, bc := range []struct {
		name     string
		encoding string
		body     []byte
	}{
		{"plain", "", body},
		{"gzip", "gzip", budgetiotest.Gzipped(b, body)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := NewHandler(Options{Traces: nopConsumer{}, RequestMetrics: ingest.NewRequestMetrics(nil)})
			rd := bytes.NewReader(bc.body)
			req := httptest.NewRequest(http.MethodPost, TracesPath, rd)
			req.Header.Set("Content-Type", contentTypeProtobuf)
			if bc.encoding != "" {
				req.Header.Set("Content-Encoding", bc.encoding)
			}
			req.Body = io.NopCloser(rd)
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(bc.body)
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*spans)/sec, "spans/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans), "ns/span")
		})
	}
}

// BenchmarkHandlerJSON is BenchmarkHandlerProtobuf for OTLP/JSON bodies,
// which are decoded, re-encoded as protobuf and passed on.
func BenchmarkHandlerJSON(b *testing.B) {
	const spans = 512
	body := mustJSON(b, sampleTraces(spans))
	h := NewHandler(Options{Traces: nopConsumer{}})
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, TracesPath, rd)
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Body = io.NopCloser(rd)
	w := &discardWriter{h: http.Header{}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	b.ReportMetric(float64(b.N*spans)/b.Elapsed().Seconds(), "spans/s")
}
