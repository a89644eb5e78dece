package zipkin

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest"
)

const (
	tid  = `"traceId":"0000000000000001"`
	sid  = `"id":"0000000000000002"`
	ann  = `"annotations":[{"timestamp":1000,"value":"cs","endpoint":{"serviceName":"a"}}]`
	good = `{` + tid + `,` + sid + `,` + ann + `}`
)

// TestBadInput checks that every malformed input fails with an error that
// wraps ingest.ErrInvalid and names the problem, the span index and the
// byte offset (at is the text the offset points to, "" for the end of the
// input), and that nothing is emitted: not by ConvertAll, and not by Decode
// for these one-batch inputs.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		v     Version
		input string
		span  int    // -1: outside the span objects
		at    string // the offset points at the first occurrence of at; "" = end of input
		field string
		msg   string
	}{
		{"empty", V1, "", -1, "", "", "empty input: want a JSON array of spans"},
		{"white space only", V1, " \n\t", -1, "", "", "empty input: want a JSON array of spans"},
		{"garbage", V1, "hello", -1, "hello", "", "want a JSON array of spans, got invalid character 'h'"},
		{"binary garbage", V1, "\x00\x01", -1, "\x00", "", "want a JSON array of spans, got invalid byte 0x00"},
		{"top-level object", V1, good, -1, good, "", `want a JSON array of spans, got object (a Zipkin body is an array: [{"traceId":…}, …])`},
		{"array of numbers", V1, "[1,2]", 0, "1,2", "", "want a span object, got number"},
		{"array of arrays", V2, "[[]]", 0, "[]]", "", "want a span object, got array"},
		{"truncated after [", V1, "[", -1, "", "", "unexpected end of input"},
		{"truncated in an ID", V1, `[{` + tid + `,"id":"00000000`, 0, "", "id",
			fmt.Sprintf("unexpected end of input in the string starting at byte %d", len(`[{`+tid+`,"id":`))},
		{"truncated in a span", V1, `[{` + tid + `,`, 0, "", "", "unexpected end of input"},
		{"truncated after a span", V1, "[" + good + ",", -1, "", "", "unexpected end of input after span 0"},
		{"truncated before ]", V2, `[{` + tid + `,` + sid + `,"timestamp":5}`, -1, "", "", "unexpected end of input after span 0"},
		{"missing comma", V1, "[" + good + good + "]", -1, good + "]", "", "want ',' or ']' after an array element, got object after span 0"},
		{"trailing comma", V2, `[{` + tid + `,` + sid + `,"timestamp":5},]`, -1, "]", "", "want a value after ',', got ']' after span 0"},
		{"trailing garbage", V1, "[] x", -1, "x", "", "want the end of input after the array of spans, got invalid character 'x'"},
		{"timestamp string", V1, `[{` + tid + `,` + sid + `,"timestamp":"x"}]`, 0, `"x"`, "timestamp", "want a number of microseconds, got string"},
		{"annotations object", V1, `[{` + tid + `,` + sid + `,"annotations":{}}]`, 0, `{}}]`, "annotations", "want an array of annotations, got object"},
		{"annotation timestamp string", V1, `[{` + tid + `,` + sid + `,"annotations":[{"timestamp":"1","value":"cs"}]}]`, 0, `"1"`,
			"annotations[0].timestamp", "want a number of microseconds, got string"},
		{"annotation without timestamp", V1, `[{` + tid + `,` + sid + `,"annotations":[{"value":"cs"}]}]`, 0, `{"value"`,
			"annotations[0]", `missing "timestamp"`},
		{"endpoint port", V1, `[{` + tid + `,` + sid + `,"annotations":[{"timestamp":1,"value":"cs","endpoint":{"port":70000}}]}]`, 0, "70000",
			"annotations[0].endpoint.port", "want a port number from 0 to 65535, got 70000"},
		{"binary annotation object value", V1, `[{` + tid + `,` + sid + `,"binaryAnnotations":[{"key":"k"},{"key":"k","value":{}}]}]`, 0, "{}}",
			"binaryAnnotations[1].value", "want a string, number or bool, got object"},
		{"span ID of 15 digits", V1, `[{` + tid + `,"id":"000000000000002"}]`, 0, `"000000000000002"`, "id", "want 16 hex digits, got 15"},
		{"span ID of 32 digits", V2, `[{` + tid + `,"id":"00000000000000020000000000000002"}]`, 0, `"0000000000000002000`, "id", "want 16 hex digits, got 32"},
		{"trace ID of 20 digits", V1, `[{"traceId":"00000000000000000001",` + sid + `}]`, 0, `"00000000000000000001"`, "traceId", "want 16 or 32 hex digits, got 20"},
		{"non-hex ID", V2, `[{` + tid + `,"id":"000000000000000g"}]`, 0, `"000000000000000g"`, "id", `want hex digits, got "000000000000000g"`},
		{"numeric ID", V1, `[{` + tid + `,"id":2}]`, 0, `2}]`, "id", "want a string of 16 hex digits, got number"},
		{"zero trace ID", V1, `[{"traceId":"00000000000000000000000000000000",` + sid + `}]`, 0, `"0000`, "traceId", "all zero (not a valid ID)"},
		{"zero span ID", V2, `[{` + tid + `,"id":"0000000000000000"}]`, 0, `"0000000000000000"`, "id", "all zero (not a valid ID)"},
		{"bad parent ID", V1, `[{` + tid + `,` + sid + `,"parentId":"xyz"}]`, 0, `"xyz"`, "parentId", "want 16 hex digits, got 3"},
		{"missing traceId", V1, `[` + good + `,{` + sid + `}]`, 1, `{` + sid, "", `missing "traceId"`},
		{"missing id", V2, `[{` + tid + `}]`, 0, `{`, "", `missing "id"`},
		{"negative timestamp", V2, `[{` + tid + `,` + sid + `,"timestamp":-5}]`, 0, "-5", "timestamp", "want a non-negative number of microseconds, got -5"},
		{"timestamp out of range", V2, `[{` + tid + `,` + sid + `,"timestamp":99999999999999999}]`, 0, "9999", "timestamp",
			"99999999999999999 microseconds is out of range (after year 2262)"},
		{"invalid number", V1, `[{` + tid + `,` + sid + `,"timestamp":1.}]`, 0, "1.}", "timestamp", `invalid number "1."`},
		{"number too long", V1, `[{"x":` + strings.Repeat("1", 70) + `}]`, 0, "111", "", "number longer than 64 characters"},
		{"invalid literal", V2, `[{"debug":tru}]`, 0, "tru}", "", "invalid literal, want true"},
		{"invalid escape", V1, `[{"name":"a\x"}]`, 0, `\x`, "name", `invalid escape "\\x" in string`},
		{"control character", V1, "[{\"name\":\"a\nb\"}]", 0, "\nb", "name", "control character 0x0a in string"},
		{"member without colon", V1, `[{"name" "a"}]`, 0, ` "a"`[1:], "", `want ':' after member name "name", got string`},
		{"nesting", V1, `[{"x":` + strings.Repeat("[", 200) + `]}]`, 0, strings.Repeat("[", 72) + "]", "", "nested deeper than 128 levels"},
		{"no timestamp", V1, `[` + good + `,{` + tid + `,"id":"0000000000000003","binaryAnnotations":[{"key":"k","value":"v"}]}]`, 1,
			`{` + tid + `,"id":"0000000000000003"`, "", `no timestamp: the span has neither "timestamp" nor annotations`},
		{"too many halves", V1, `[{` + tid + `,` + sid + `,"annotations":[` + strings.Repeat(`{"timestamp":1,"value":"cs"},`, 256) +
			`{"timestamp":1,"value":"sr"}]}]`, 0, `{` + tid, "", "more than 256 cs, sr, ms and mr annotations in one span"},
		{"v2 kind", V2, `[{` + tid + `,` + sid + `,"kind":"SIDEWAYS"}]`, 0, `"SIDEWAYS"`, "kind", `want CLIENT, SERVER, PRODUCER or CONSUMER, got "SIDEWAYS"`},
		{"v2 tag object", V2, `[{` + tid + `,` + sid + `,"tags":{"a":"b","http":{}}}]`, 0, `{}}}`, "tags.http", "want a string, got object"},
		{"v2 tags array", V2, `[{` + tid + `,` + sid + `,"tags":[]}]`, 0, `[]}`, "tags", "want an object of string tags, got array"},
		{"v2 shared string", V2, `[{` + tid + `,` + sid + `,"shared":"yes"}]`, 0, `"yes"`, "shared", "want a bool, got string"},
		{"v2 annotation without value", V2, `[{` + tid + `,` + sid + `,"annotations":[{"timestamp":5}]}]`, 0, `{"timestamp":5}`, "annotations[0]", `missing "value"`},
		{"v2 JSON on v1", V1, `[{` + tid + `,` + sid + `,"localEndpoint":{"serviceName":"a"}}]`, 0, `{"serviceName"`, "localEndpoint",
			"a Zipkin v2 member: this looks like Zipkin v2 JSON (POST it to /api/v2/spans)"},
		{"v1 JSON on v2", V2, "[" + `{` + tid + `,` + sid + `,"binaryAnnotations":[]}` + "]", 0, `[]}`, "binaryAnnotations",
			"a Zipkin v1 member: this looks like Zipkin v1 JSON (POST it to /api/v1/spans)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off := len(tt.input)
			if tt.at != "" {
				off = strings.Index(tt.input, tt.at)
				if off < 0 {
					t.Fatalf("bad test: %q not in input", tt.at)
				}
			}
			want := DecodeError{Version: tt.v, Span: tt.span, Offset: int64(off), Field: tt.field, Msg: tt.msg}
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ingest.ErrInvalid) {
					t.Fatalf("%s: error %v does not wrap ingest.ErrInvalid", what, err)
				}
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("%s: error %v is not a *DecodeError", what, err)
				}
				if *de != want {
					t.Errorf("%s:\n got %s\nwant %s", what, de, &want)
				}
			}
			req, _, err := ConvertAll([]byte(tt.input), tt.v)
			check("ConvertAll", err)
			if req != nil {
				t.Errorf("ConvertAll returned a request with its error")
			}
			emitted := 0
			_, err = Decode(strings.NewReader(tt.input), tt.v, Options{}, func([]byte, int) error { emitted++; return nil })
			check("Decode", err)
			if emitted > 0 {
				t.Errorf("Decode emitted %d requests before the error", emitted)
			}
			// A reader that returns one byte at a time exercises every
			// buffer refill path and must give the same error.
			_, err = Decode(&oneByteReader{r: strings.NewReader(tt.input)}, tt.v, Options{}, func([]byte, int) error { return nil })
			check("Decode byte by byte", err)
		})
	}
}

// TestDecodeErrorMessage pins the message format of the brief.
func TestDecodeErrorMessage(t *testing.T) {
	input := `[` + good + `,{` + tid + `,"id":"000000000000002"}]`
	_, _, err := ConvertAll([]byte(input), V1)
	want := fmt.Sprintf(`zipkin v1: span 1 at byte %d: "id": want 16 hex digits, got 15`, strings.Index(input, `"000000000000002"`))
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

// TestDecodeEmitsBeforeLaterError documents that Decode streams: batches
// before a late error are emitted, while ConvertAll produces nothing.
func TestDecodeEmitsBeforeLaterError(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 10 {
		fmt.Fprintf(&b, `{"traceId":"%016x","id":"%016x",%s},`, i+1, i+1, ann)
	}
	b.WriteString(`{"traceId":"0000000000000001","id":"bad"}]`)
	emitted := 0
	st, err := Decode(strings.NewReader(b.String()), V1, Options{BatchSpans: 2}, func(_ []byte, n int) error { emitted += n; return nil })
	if !errors.Is(err, ingest.ErrInvalid) || !strings.Contains(err.Error(), "span 10 at byte") {
		t.Fatalf("error %v, want span 10 invalid", err)
	}
	if emitted == 0 || st.OTLPSpans != int64(emitted) {
		t.Errorf("emitted %d spans (stats %d), want the batches before span 10", emitted, st.OTLPSpans)
	}
	if req, _, err := ConvertAll([]byte(b.String()), V1); err == nil || req != nil {
		t.Errorf("ConvertAll: %v, %d bytes; want an error and nothing", err, len(req))
	}
}

// TestDecodeReadError checks that a failing reader is reported with its
// position and is not mistaken for invalid input.
func TestDecodeReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader(`[{"traceId":"00000`), &failingReader{boom})
	_, err := Decode(r, V1, Options{}, func([]byte, int) error { return nil })
	if !errors.Is(err, boom) || errors.Is(err, ingest.ErrInvalid) || !strings.Contains(err.Error(), "at byte 18") {
		t.Errorf("got %v, want the read error at byte 18", err)
	}
}

// TestGarbageStream feeds 1 GB streams of garbage, generated lazily: each
// must fail early with a position, having read a small part of the stream.
func TestGarbageStream(t *testing.T) {
	const size = 1 << 30
	tests := []struct {
		name   string
		prefix string
		fill   func(p []byte)
		msg    string
		limit  int64 // most bytes the decoder may read
	}{
		{"random bytes", "", func(p []byte) {
			r := rand.New(rand.NewPCG(1, 2))
			for i := range p {
				p[i] = byte(r.Uint32())
			}
		}, "want a JSON array of spans", 1 << 20},
		{"endless string", `[{"name":"`, repeat("a"), "string longer than 1048576 bytes", 2 << 20},
		{"endless nesting", `[{"x":`, repeat("["), "nested deeper than 128 levels", 1 << 20},
		{"endless arrays", `[`, repeat("["), "want a span object, got array", 1 << 20},
		{"endless number", `[{"x":`, repeat("7"), "number longer than 64 characters", 1 << 20},
		{"endless annotations", `[{` + tid + `,` + sid + `,"annotations":[`, repeat(`{"timestamp":1,"value":"x"},`),
			"more than 65536 annotations", 4 << 20},
		{"endless members", `[{`, repeat(`"a":1,`), "span object (with the separator before it) longer than 33554432 bytes", 40 << 20},
		{"endless white space", `[`, repeat(" "), "span object (with the separator before it) longer than 33554432 bytes", 40 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []Version{V1, V2} {
				g := &garbageReader{prefix: []byte(tt.prefix), left: size, fill: tt.fill}
				_, err := Decode(g, v, Options{}, func([]byte, int) error {
					t.Fatal("garbage emitted a request")
					return nil
				})
				var de *DecodeError
				if !errors.As(err, &de) || !errors.Is(err, ingest.ErrInvalid) || !strings.Contains(de.Msg, tt.msg) {
					t.Fatalf("%v: error %v, want a DecodeError %q", v, err, tt.msg)
				}
				if de.Offset <= 0 && tt.prefix != "" {
					t.Errorf("%v: offset %d", v, de.Offset)
				}
				if g.read > tt.limit {
					t.Errorf("%v: read %d bytes before failing, want at most %d", v, g.read, tt.limit)
				}
			}
		})
	}
}

func repeat(s string) func(p []byte) {
	return func(p []byte) {
		for i := range p {
			p[i] = s[i%len(s)]
		}
	}
}

// garbageReader yields prefix, then left bytes made by fill, one 64 KiB
// block at a time (repeat patterns must divide 64 KiB to stay aligned;
// those used here have lengths 1, 6 and 28, see fillBlock).
type garbageReader struct {
	prefix []byte
	left   int64
	fill   func([]byte)
	block  []byte
	pos    int
	read   int64
}

func (g *garbageReader) Read(p []byte) (int, error) {
	if len(g.prefix) > 0 {
		n := copy(p, g.prefix)
		g.prefix = g.prefix[n:]
		g.read += int64(n)
		return n, nil
	}
	if g.left <= 0 {
		return 0, io.EOF
	}
	if g.block == nil {
		// A block whose length is a multiple of every pattern length
		// (1, 6, 28) keeps patterns aligned across blocks.
		g.block = make([]byte, 6*28*400)
		g.fill(g.block)
	}
	if g.pos == len(g.block) {
		g.pos = 0
	}
	n := copy(p, g.block[g.pos:])
	n = int(min(int64(n), g.left))
	g.pos += n
	g.left -= int64(n)
	g.read += int64(n)
	return n, nil
}

// oneByteReader reads one byte per call.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestEmptyStrings checks that empty strings read the same whether they
// sit inside one buffer or across refills.
func TestEmptyStrings(t *testing.T) {
	for _, tt := range []struct {
		v     Version
		input string
		err   string
	}{
		{V1, `[{` + tid + `,` + sid + `,"name":"","annotations":[{"timestamp":1,"value":"","endpoint":{"serviceName":""}}]}]`, ""},
		{V1, `[{` + tid + `,` + sid + `,` + ann + `,"binaryAnnotations":[{"key":"","value":"v"}]}]`, `missing "key"`},
		{V2, `[{` + tid + `,` + sid + `,"kind":"","timestamp":1,"tags":{"":""},"annotations":[{"timestamp":1,"value":""}]}]`, ""},
	} {
		req, st, err := ConvertAll([]byte(tt.input), tt.v)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%v: got %v, want %q", tt.v, err, tt.err)
			}
		} else if err != nil {
			t.Fatalf("%v: %v", tt.v, err)
		}
		var got []string
		st2, err2 := Decode(&oneByteReader{strings.NewReader(tt.input)}, tt.v, Options{}, func(b []byte, _ int) error {
			got = shapes(flatten(decodeRequest(t, b)))
			return nil
		})
		if fmt.Sprint(err) != fmt.Sprint(err2) || st != st2 {
			t.Errorf("%v: ConvertAll %v %+v, Decode byte by byte %v %+v", tt.v, err, st, err2, st2)
		}
		if err == nil {
			if want := shapes(flatten(decodeRequest(t, req))); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%v: byte by byte %v, ConvertAll %v", tt.v, got, want)
			}
		}
	}
}

// TestLargeSpans checks that spans at the annotation limits convert in
// linear time: distinct binary annotation keys reported in two objects
// (merged, deduplicated), distinct tags, and many end annotations.
func TestLargeSpans(t *testing.T) {
	const n = maxAnnotations/2 - 1 // two objects of n+1 binary annotations stay within the limit
	var v1, v2 strings.Builder
	v1.WriteString("[")
	for obj := range 2 {
		fmt.Fprintf(&v1, `{%s,%s,%s,"binaryAnnotations":[`, tid, sid, ann)
		for i := range n {
			fmt.Fprintf(&v1, `{"key":"k%d","value":%d},`, i+obj*n/2, i)
		}
		v1.WriteString(`{"key":"last","value":true}]},`)
	}
	fmt.Fprintf(&v1, `{%s,"id":"0000000000000003","annotations":[`, tid)
	for range maxHalves {
		v1.WriteString(`{"timestamp":1,"value":"cs"},`)
	}
	for range n {
		v1.WriteString(`{"timestamp":2,"value":"cr"},`)
	}
	v1.WriteString(`{"timestamp":3,"value":"x"}]}]`)
	fmt.Fprintf(&v2, `[{%s,%s,"timestamp":1,"tags":{`, tid, sid)
	for i := range maxAnnotations - 1 {
		fmt.Fprintf(&v2, `"k%d":"%d",`, i%(maxAnnotations/2), i)
	}
	v2.WriteString(`"last":"x"}}]`)
	for _, tt := range []struct {
		v     Version
		input string
		attrs int
	}{
		{V1, v1.String(), n + n/2 + 1 + 1},          // + flowscope.duration_unknown
		{V2, v2.String(), maxAnnotations/2 + 1 + 1}, // + flowscope.duration_unknown
	} {
		start := time.Now()
		req, _, err := ConvertAll([]byte(tt.input), tt.v)
		if err != nil {
			t.Fatalf("%v: %v", tt.v, err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("%v: %v to convert a %d byte body", tt.v, d, len(tt.input))
		}
		spans := flatten(decodeRequest(t, req))
		if got := len(spans[0].span.Attributes); got != tt.attrs {
			t.Errorf("%v: %d attributes, want %d", tt.v, got, tt.attrs)
		}
	}
}

// TestInvalidUTF8 checks that invalid UTF-8 in strings is replaced, so the
// request still encodes (protobuf strings must be valid UTF-8).
func TestInvalidUTF8(t *testing.T) {
	input := "[{" + tid + "," + sid + ",\"name\":\"a\xffb\\ud800c\",\"annotations\":[{\"timestamp\":1,\"value\":\"x\xfe\",\"endpoint\":{\"serviceName\":\"s\xc3\"}}]}]"
	for _, v := range []Version{V1, V2} {
		if v == V2 {
			input = strings.Replace(input, `"endpoint":{"serviceName":"s`+"\xc3"+`"}`, `"x":1`, 1)
			input = strings.Replace(input, `"annotations"`, `"localEndpoint":{"serviceName":"s`+"\xc3"+`"},"annotations"`, 1)
		}
		req, _, err := ConvertAll([]byte(input), v)
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		spans := flatten(decodeRequest(t, req))
		if len(spans) != 1 || spans[0].span.Name != "a\uFFFDb\uFFFDc" || spans[0].service != "s\uFFFD" {
			t.Errorf("%v: got %q in %q", v, spans[0].span.Name, spans[0].service)
		}
	}
}

// TestStringEscapes checks escapes, including surrogate pairs split at
// every possible buffer boundary.
func TestStringEscapes(t *testing.T) {
	name := `q\"b\\s\/n\nt\tu\u00e9pair\ud83d\ude00lone\udc00hi\ud83dx\ud83d\n`
	want := "q\"b\\s/n\nt\tu\u00e9pair\U0001F600lone\uFFFDhi\uFFFDx\uFFFD\n"
	input := `[{` + tid + `,` + sid + `,"name":"` + name + `",` + ann + `}]`
	req, _, err := ConvertAll([]byte(input), V1)
	if err != nil {
		t.Fatal(err)
	}
	if got := flatten(decodeRequest(t, req))[0].span.Name; got != want {
		t.Errorf("ConvertAll: got %q, want %q", got, want)
	}
	for split := 1; split < len(input); split++ {
		r := io.MultiReader(&oneByteReader{strings.NewReader(input[:split])}, strings.NewReader(input[split:]))
		var got string
		_, err := Decode(r, V1, Options{}, func(b []byte, _ int) error {
			got = flatten(decodeRequest(t, b))[0].span.Name
			return nil
		})
		if err != nil || got != want {
			t.Fatalf("split at %d: got %q, %v", split, got, err)
		}
	}
}
