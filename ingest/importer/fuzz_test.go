package importer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest"
)

// fuzzSeeds returns the sample files (cut to maxFuzzInput) and a few
// tricky starts.
func fuzzSeeds(f *testing.F) [][]byte {
	f.Helper()
	var files []string
	for _, pattern := range []string{spigoDir + "json*/*", "testdata/*", "../spigo/testdata/*", "../zipkin/testdata/v*[^n].json"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, m...)
	}
	seeds := [][]byte{
		nil, []byte("[]"), []byte("[\n\n]\n"), []byte("\xef\xbb\xbf["), []byte("{"), []byte(`{"version":"arch-0.1"`),
		[]byte("{\"resourceSpans\":[]}\n{\"resourceSpans\":[]}\n"), []byte("\x1f\x8b\x08\x00"),
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b[:min(len(b), maxFuzzInput)])
	}
	return seeds
}

// maxFuzzInput caps the inputs of the fuzz tests.
const maxFuzzInput = 32 << 10

// FuzzDetect checks that Detect never panics and returns a known format or
// an error wrapping ingest.ErrInvalid.
func FuzzDetect(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		got, err := Detect(head)
		if err != nil {
			if !errors.Is(err, ingest.ErrInvalid) || got != "" {
				t.Fatalf("Detect = %q, %v: want an ErrInvalid error", got, err)
			}
			return
		}
		if !slices.Contains(Formats(), got) {
			t.Fatalf("Detect = %q, not a format", got)
		}
	})
}

// FuzzImport imports small inputs into a recording sink: Import must not
// panic, may fail only with an input error, must send nothing when it
// fails, and must send all it counted when it succeeds.
func FuzzImport(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, false)
	}
	f.Add([]byte(`[{"traceId":"0000000000000001","id":"0000000000000001","annotations":[{"timestamp":1,"value":"cs"}]}]`), true)
	rebase := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, input []byte, doRebase bool) {
		if len(input) > maxFuzzInput {
			return
		}
		opts := Options{BatchSpans: 3, Now: func() time.Time { return rebase }}
		if doRebase {
			opts.Rebase = rebase
		}
		sink := &recordingSink{}
		sum, err := Import(context.Background(), BytesInput("fuzz.json", input), sink, opts)
		if err != nil {
			if !errors.Is(err, ingest.ErrInvalid) {
				t.Fatalf("error %v does not wrap ingest.ErrInvalid", err)
			}
			if !sink.empty() {
				t.Fatalf("failed with %v after sending %d requests", err, sum.Requests)
			}
			return
		}
		if sum.SentSpans != sum.OTLPSpans || sum.SentPoints != sum.MetricPoints {
			t.Fatalf("sent %d spans, %d points; counted %d, %d", sum.SentSpans, sum.SentPoints, sum.OTLPSpans, sum.MetricPoints)
		}
		if int64(len(sink.spans(t))) != sum.OTLPSpans {
			t.Fatalf("sink got %d spans, summary %d", len(sink.spans(t)), sum.OTLPSpans)
		}
		if doRebase && (sum.Format == FormatZipkinV1 || sum.Format == FormatZipkinV2 || sum.Format == FormatOTLPTraces) && sum.OTLPSpans > 0 && !sum.End.Equal(rebase) {
			t.Fatalf("end %v after rebase to %v", sum.End, rebase)
		}
	})
}
