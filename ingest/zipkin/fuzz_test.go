package zipkin

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowscope/flowscope/ingest"
)

// FuzzDecodeV1 decodes arbitrary input as Zipkin v1 JSON (see fuzzDecode).
func FuzzDecodeV1(f *testing.F) {
	addSeeds(f, "v1_*.json", filepath.Join("..", "..", "testdata", "spigo", "json_metrics", "lamp_flow.json"))
	f.Add([]byte(`[{"traceId":"0000000000000001","id":"0000000000000002","annotations":[{"timestamp":1,"value":"ss"},{"timestamp":2,"value":"cr"}]}]`))
	f.Add([]byte(`[{"traceId":"0000000000000001","id":"0000000000000002","parentId":"0000000000000002","timestamp":5,"binaryAnnotations":[{"key":"sa","value":true,"endpoint":{}}]}]`))
	f.Add([]byte("\xef\xbb\xbf[\n\n]"))
	// Halves of one span ID reported apart (testdata/v1_halves_*.json are
	// seeds too): server half first, with a clock behind the client's.
	f.Add([]byte(`[{"traceId":"0000000000000001","parentId":"0000000000000001","id":"0000000000000002","annotations":[{"timestamp":5,"value":"sr","endpoint":{"serviceName":"b"}},{"timestamp":6,"value":"ss","endpoint":{"serviceName":"b"}}]},` +
		`{"traceId":"0000000000000001","parentId":"0000000000000001","id":"0000000000000002","timestamp":9,"duration":4,"annotations":[{"timestamp":9,"value":"cs","endpoint":{"serviceName":"a"}},{"timestamp":13,"value":"cr","endpoint":{"serviceName":"a"}}]}]`))
	f.Fuzz(func(t *testing.T, input []byte) { fuzzDecode(t, input, V1) })
}

// FuzzDecodeV2 decodes arbitrary input as Zipkin v2 JSON (see fuzzDecode).
func FuzzDecodeV2(f *testing.F) {
	addSeeds(f, "v2_*.json")
	f.Add([]byte(`[{"traceId":"0000000000000001","id":"0000000000000002","kind":"SERVER","shared":true,"timestamp":1,"duration":0}]`))
	f.Add([]byte(`[{"traceId":"1","id":"2"}]`))
	f.Fuzz(func(t *testing.T, input []byte) { fuzzDecode(t, input, V2) })
}

func addSeeds(f *testing.F, pattern string, extra ...string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range append(files, extra...) {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// fuzzDecode checks, for Decode (small batches) and ConvertAll: no panic;
// errors are DecodeErrors wrapping ingest.ErrInvalid with a position in the
// input; accepted input is valid JSON; every emitted request unmarshals
// and holds at most a batch of spans with a non-zero 16-byte trace ID,
// non-zero 8-byte span ID, empty or 8-byte parent and end ≥ start.
func fuzzDecode(t *testing.T, input []byte, v Version) {
	if len(input) > 64<<10 {
		t.Skip("input too large")
	}
	const batch = 7
	checkErr := func(what string, err error) {
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ingest.ErrInvalid) {
			t.Fatalf("%s: error %v (%T) is not a DecodeError", what, err, err)
		}
		if de.Offset < 0 || de.Offset > int64(len(input)) || de.Span < -1 || de.Msg == "" {
			t.Fatalf("%s: bad position in %#v", what, de)
		}
	}
	checkValidJSON := func(what string) {
		if !json.Valid(bytes.TrimPrefix(input, []byte("\xef\xbb\xbf"))) {
			t.Fatalf("%s accepted invalid JSON", what)
		}
	}
	checkRequest := func(b []byte, max int) int {
		req := decodeRequest(t, b)
		spans := flatten(req)
		if len(spans) > max {
			t.Fatalf("request of %d spans, batch %d", len(spans), max)
		}
		for _, f := range spans {
			sp := f.span
			if len(sp.TraceId) != 16 || bytes.Equal(sp.TraceId, make([]byte, 16)) {
				t.Fatalf("trace ID %x", sp.TraceId)
			}
			if len(sp.SpanId) != 8 || bytes.Equal(sp.SpanId, make([]byte, 8)) {
				t.Fatalf("span ID %x", sp.SpanId)
			}
			if len(sp.ParentSpanId) != 0 && (len(sp.ParentSpanId) != 8 || bytes.Equal(sp.ParentSpanId, make([]byte, 8))) {
				t.Fatalf("parent span ID %x", sp.ParentSpanId)
			}
			if sp.EndTimeUnixNano < sp.StartTimeUnixNano || sp.StartTimeUnixNano == 0 {
				t.Fatalf("span %x: start %d, end %d", sp.SpanId, sp.StartTimeUnixNano, sp.EndTimeUnixNano)
			}
			if sp.Name == "" {
				t.Fatalf("span %x without name", sp.SpanId)
			}
		}
		return len(spans)
	}

	emitted := 0
	st, err := Decode(bytes.NewReader(input), v, Options{BatchSpans: batch}, func(b []byte, n int) error {
		if got := checkRequest(b, batch); got != n {
			t.Fatalf("emit reported %d spans, request holds %d", n, got)
		}
		emitted += n
		return nil
	})
	if int64(emitted) != st.OTLPSpans {
		t.Fatalf("emitted %d spans, Stats.OTLPSpans %d", emitted, st.OTLPSpans)
	}
	if err != nil {
		checkErr("Decode", err)
	} else {
		checkValidJSON("Decode")
	}

	req, st, err := ConvertAll(input, v)
	if err != nil {
		checkErr("ConvertAll", err)
		if req != nil {
			t.Fatal("ConvertAll returned a request with its error")
		}
		return
	}
	checkValidJSON("ConvertAll")
	if n := checkRequest(req, 1<<30); int64(n) != st.OTLPSpans {
		t.Fatalf("request holds %d spans, Stats.OTLPSpans %d", n, st.OTLPSpans)
	}
}
