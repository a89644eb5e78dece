package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest"
)

// garbage is an endless stream of bytes that are no JSON, counting what
// was read from it.
type garbage struct {
	read  int64
	limit int64
}

func (g *garbage) Read(p []byte) (int, error) {
	if g.read >= g.limit {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.limit-g.read)]
	for i := range p {
		p[i] = byte("garbage\x00\xff{["[(g.read+int64(i))%11])
	}
	g.read += int64(len(p))
	return len(p), nil
}

// TestImportBadInput checks that malformed input fails with an error
// naming the file, the problem and its position, wrapping
// ingest.ErrInvalid, and that the sink received nothing.
func TestImportBadInput(t *testing.T) {
	lamp, err := os.ReadFile(spigoDir + "json_metrics/lamp_flow.json")
	if err != nil {
		t.Fatal(err)
	}
	graph, err := os.ReadFile(spigoDir + "json/lamp.json")
	if err != nil {
		t.Fatal(err)
	}
	jsonl, err := os.ReadFile("testdata/otlp_traces.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// A big valid flow (many batches) with a bad span at the end.
	big, _ := io.ReadAll(newFlowGen(5000))
	big = append(big[:bytes.LastIndexByte(big, ']')], `,{"traceId":"0000000000000001","id":"00000000000001","annotations":[]}]`...)
	const id = `"traceId":"0000000000000001","id":"0000000000000001"`
	// An attribute value of 40 nested kvlists: valid OTLP/JSON, but deeper
	// than the receivers accept (otlpwire.MaxDepth).
	deep := `{"stringValue":"x"}`
	for range 40 {
		deep = `{"kvlistValue":{"values":[{"key":"k","value":` + deep + `}]}}`
	}
	deepSpan := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x",` +
		`"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000001000","attributes":[{"key":"deep","value":` + deep + `}]}]}]}]}`
	deepPoint := `{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"g","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asInt":"1",` +
		`"attributes":[{"key":"deep","value":` + deep + `}]}]}}]}]}]}`
	tests := []struct {
		name   string
		input  []byte
		format Format
		opts   Options
		want   []string // substrings of the error
	}{
		{"truncated zipkin", lamp[:len(lamp)/2], "", Options{}, []string{"zipkin v1: ", "at byte", "bad.json"}},
		{"wrong type", []byte(`[{` + id + `,"name":5}]`), "", Options{}, []string{`zipkin v1: span 0 at byte 62: "name": want a string, got number`}},
		{"wrong type in annotation", []byte(`[{` + id + `,"annotations":[{"timestamp":"x","value":"cs"}]}]`), "", Options{},
			[]string{`span 0`, `"annotations[0].timestamp"`}},
		{"id of wrong length", []byte(`[{"traceId":"0000000000000001","id":"00000000000001"}]`), "", Options{},
			[]string{`zipkin v1: span 0 at byte 36: "id": want 16 hex digits, got 14`}},
		{"bad span after many batches", big, "", Options{BatchSpans: 100},
			[]string{"span 5000 at byte", `"id": want 16 hex digits, got 14`}},
		{"zipkin object, not array", []byte(`{` + id + `}`), FormatZipkinV1, Options{}, []string{"want a JSON array of spans"}},
		{"unknown format", []byte("hello, world\n"), "", Options{}, []string{`unknown format: "hello, world\n"`}},
		{"empty file", nil, "", Options{}, []string{"bad.json: unknown format: empty input"}},
		{"empty zipkin with format", nil, FormatZipkinV1, Options{}, []string{"empty input"}},
		{"otlp truncated line", jsonl[:len(jsonl)-100], "", Options{},
			[]string{"otlp-json-traces: line 2 (byte " + strconv.Itoa(bytes.IndexByte(jsonl, '\n')+1) + "): the JSON object is cut short at byte " + strconv.Itoa(len(jsonl)-100)}},
		{"otlp wrong type", []byte("{\"resourceSpans\":[]}\n{\"resourceSpans\":[{\"scopeSpans\":5}]}\n"), "", Options{},
			[]string{"otlp-json-traces: line 2 (byte 21)", "(column "}},
		{"otlp whole wrong type", []byte("{\n\"resourceSpans\": [\n{\"scopeSpans\": 5}]}\n"), "", Options{},
			[]string{"otlp-json-traces: ", "(line 3:"}},
		{"otlp span id of wrong length", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"abcd","name":"x","startTimeUnixNano":"1"}]}]}]}`),
			"", Options{}, []string{"line 1 (byte 0)", "resourceSpans[0].scopeSpans[0].spans[0]", "spanId is not 16 hex digits"}},
		{"otlp span ending in 2262", []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x",` +
			`"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"9223372036854775807"}]}]}]}`), "", Options{},
			[]string{"spans[0]", "endTimeUnixNano is more than 1h0m0s ahead of the clock"}},
		{"otlp nesting too deep", []byte(deepSpan), "", Options{}, []string{"otlp-json-traces: ", "nested more than 64 deep"}},
		{"otlp metrics nesting too deep", []byte(deepPoint), "", Options{}, []string{"otlp-json-metrics: ", "nested more than 64 deep"}},
		{"otlp broken first line", []byte("{\"resourceSpans\":[}]}\n{\"resourceSpans\":[]}\n"), "", Options{},
			[]string{"otlp-json-traces: line 1 (byte 0): syntax error (column 19)"}},
		{"otlp whole object too large", mustReadBytes(t, "testdata/otlp_traces.json"), "", Options{MaxReadBytes: 1000},
			[]string{"a single JSON object larger than 1000 bytes"}},
		{"otlp line too long", jsonl, "", Options{MaxReadBytes: 1000}, []string{"line 1 (byte 0) is longer than 1000 bytes"}},
		{"arch name too long", graph, "", Options{ArchName: strings.Repeat("x", 201)}, []string{"architecture name of 201 bytes"}},
		{"otlp not an object", []byte("{\"resourceSpans\":[]}\n[1]\n"), FormatOTLPTraces, Options{}, []string{"line 2 (byte 21): want a JSON object"}},
		{"otlp metrics truncated", []byte(`{"resourceMetrics":[{"scopeMetrics":[`), "", Options{}, []string{"otlp-json-metrics: the JSON object is cut short at byte 38"}},
		{"graph truncated", graph[:len(graph)/2], "", Options{}, []string{"spigo graph", "byte"}},
		{"graph too large", graph, "", Options{MaxReadBytes: 1000}, []string{"spigo-graph: the file is larger than 1000 bytes"}},
		{"graph bad node", []byte(`{"arch":"x","graph":[{"node":"a..b"}]}`), "", Options{}, []string{"graph element 0", "part 2 is empty", "byte 21"}},
		{"arch unknown dependency", []byte(`{"arch":"x","services":[{"name":"a","dependencies":["b"]}]}`), "", Options{},
			[]string{`dependency "b" is not a service`}},
		{"metrics bad value", []byte(`{"counters":{"a":"x"}}`), "", Options{}, []string{`"counters" "a": value is`, "byte"}},
		{"guess bad sample", []byte(`{"space":{"graph":{"metrics":[{"id":"A","name":"x"}],"guesstimates":[{"metric":"A","guesstimateType":"DATA","data":[1,"x"]}]}}}`),
			"", Options{}, []string{"sample 1", "byte"}},
		{"rebase before 1970", lamp, "", Options{Rebase: time.Unix(1, 0)}, []string{"before 1970"}},
		{"spigo format on zipkin", lamp, FormatSpigoGraph, Options{}, []string{`spigo-graph: want a JSON object, got "[`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &recordingSink{}
			tt.opts.Format = tt.format
			sum, err := Import(context.Background(), BytesInput("bad.json", tt.input), sink, tt.opts)
			if err == nil {
				t.Fatalf("no error; summary %+v", sum)
			}
			if !errors.Is(err, ingest.ErrInvalid) {
				t.Errorf("error %q does not wrap ingest.ErrInvalid", err)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.HasPrefix(msg, "import bad.json: ") {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if !sink.empty() || sum.Requests != 0 {
				t.Errorf("the sink received %d trace, %d metrics requests and %d architectures", len(sink.traces), len(sink.metrics), len(sink.archs))
			}
		})
	}
}

func mustReadBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportCancelPass1 checks that a cancelled context stops the reading
// of pass 1, before anything is sent.
func TestImportCancelPass1(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &recordingSink{}
	_, err := Import(ctx, flowInput(20_000), sink, Options{Progress: func(p Progress) {
		if p.Pass == 1 && p.Bytes > 256<<10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || !sink.empty() {
		t.Errorf("error %v, sink empty %v", err, sink.empty())
	}
}

// TestImportGarbageStream checks that a gigabyte of garbage fails after
// reading its first bytes, whatever the format.
func TestImportGarbageStream(t *testing.T) {
	for _, f := range append([]Format{""}, Formats()...) {
		t.Run("format="+string(f), func(t *testing.T) {
			var g *garbage
			in := Input{Name: "garbage.bin", Size: 1 << 30, Open: func() (io.ReadCloser, error) {
				g = &garbage{limit: 1 << 30}
				return io.NopCloser(g), nil
			}}
			sink := &recordingSink{}
			_, err := Import(context.Background(), in, sink, Options{Format: f})
			if !errors.Is(err, ingest.ErrInvalid) {
				t.Fatalf("error %v, want ingest.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), `"garbage\x00\xff{[garbage`) {
				t.Errorf("error %q does not show the first bytes", err)
			}
			if g.read > 2*DetectBytes {
				t.Errorf("read %d bytes of garbage before failing", g.read)
			}
			if !sink.empty() {
				t.Error("the sink received data")
			}
		})
	}
	// Garbage after a valid start fails at its position, without reading
	// on.
	t.Run("after a valid start", func(t *testing.T) {
		var g *garbage
		in := Input{Name: "half.json", Size: -1, Open: func() (io.ReadCloser, error) {
			g = &garbage{limit: 1 << 30}
			return io.NopCloser(io.MultiReader(strings.NewReader(`[{"traceId":"0000000000000001","id":"0000000000000001","name":"`), g)), nil
		}}
		sink := &recordingSink{}
		_, err := Import(context.Background(), in, sink, Options{})
		if !errors.Is(err, ingest.ErrInvalid) || !strings.Contains(err.Error(), "span 0 at byte") {
			t.Fatalf("error %v", err)
		}
		if g.read > 4<<20 || !sink.empty() {
			t.Errorf("read %d bytes of garbage; sink empty %v", g.read, sink.empty())
		}
	})
}

// TestImportOverloaded checks that requests refused as overloaded or
// unavailable are sent again until accepted: everything arrives once.
func TestImportOverloaded(t *testing.T) {
	sink := &recordingSink{fail: func(call int) (ingest.Result, error) {
		switch call {
		case 1, 2: // request 1, twice
			return ingest.Result{}, ingest.ErrOverloaded
		case 5: // request 3
			return ingest.Result{}, fmt.Errorf("%w: closing", ingest.ErrUnavailable)
		}
		return ingest.Result{}, nil
	}}
	sum, err := Import(context.Background(), fileInput(t, spigoDir+"json_metrics/lamp_flow.json"), sink, Options{BatchSpans: 10})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Retries != 3 || sum.Requests != int64(len(sink.traces)) || sum.Requests < 3 {
		t.Errorf("retries %d, requests %d, sink got %d", sum.Retries, sum.Requests, len(sink.traces))
	}
	type key struct{ trace, span string }
	seen := map[key]bool{}
	for _, sp := range sink.spans(t) {
		k := key{string(sp.TraceId), string(sp.SpanId)}
		if seen[k] {
			t.Errorf("span %x/%x delivered twice", sp.TraceId, sp.SpanId)
		}
		seen[k] = true
	}
	if int64(len(seen)) != sum.OTLPSpans || sum.SentSpans != sum.OTLPSpans {
		t.Errorf("%d distinct spans delivered, %d sent, want %d", len(seen), sum.SentSpans, sum.OTLPSpans)
	}
}

// TestImportSinkError checks that another sink error stops the import
// with the request number.
func TestImportSinkError(t *testing.T) {
	boom := errors.New("disk on fire")
	sink := &recordingSink{fail: func(call int) (ingest.Result, error) {
		if call == 3 {
			return ingest.Result{}, boom
		}
		return ingest.Result{}, nil
	}}
	sum, err := Import(context.Background(), fileInput(t, spigoDir+"json_metrics/lamp_flow.json"), sink, Options{BatchSpans: 10})
	if !errors.Is(err, boom) || errors.Is(err, ingest.ErrInvalid) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	if want := "import lamp_flow.json: request 3: disk on fire"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if sum.Requests != 2 || len(sink.traces) != 2 || sum.SentSpans != int64(len(sink.spans(t))) {
		t.Errorf("requests %d, sink got %d, sent spans %d", sum.Requests, len(sink.traces), sum.SentSpans)
	}
}

// TestImportCancelWhileRetrying checks that a cancelled context stops the
// retries.
func TestImportCancelWhileRetrying(t *testing.T) {
	sink := &recordingSink{fail: func(int) (ingest.Result, error) { return ingest.Result{}, ingest.ErrOverloaded }}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	sum, err := Import(ctx, fileInput(t, spigoDir+"json/lamp.json"), sink, Options{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "request 1: ") {
		t.Fatalf("error %v", err)
	}
	if sum.Retries < 2 || time.Since(start) > 5*time.Second {
		t.Errorf("%d retries in %v", sum.Retries, time.Since(start))
	}
}

// TestImportPartial checks that items the sink rejects are counted by
// reason.
func TestImportPartial(t *testing.T) {
	sink := &recordingSink{fail: func(call int) (ingest.Result, error) {
		if call%2 == 0 {
			return ingest.Result{Rejected: 2, Message: "span \"x\": start time is missing"}, nil
		}
		return ingest.Result{Rejected: 1}, nil
	}}
	sum, err := Import(context.Background(), fileInput(t, spigoDir+"json_metrics/storage_flow.json"), sink, Options{BatchSpans: 20})
	if err != nil {
		t.Fatal(err)
	}
	even, odd := sum.Requests/2, sum.Requests-sum.Requests/2
	want := []Reject{{"no reason given", odd}, {"span \"x\": start time is missing", 2 * even}}
	if sum.Rejected != odd+2*even || len(sum.Rejects) != 2 || sum.Rejects[0] != want[0] || sum.Rejects[1] != want[1] {
		t.Errorf("rejected %d, rejects %+v; want %+v", sum.Rejected, sum.Rejects, want)
	}
}
