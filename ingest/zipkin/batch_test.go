package zipkin

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/ingest/internal/budgetio/budgetiotest"
)

// spigoGen generates a spigo-like Zipkin v1 flow file lazily: traces of
// three spans (www → elb → webserver → mysql, the last one a one-way Put
// every fourth trace), each object on its own line with leading commas as
// spigo wrote them in 2016.
type spigoGen struct {
	traces int // traces to write
	n      int // traces written
	nextID int
	buf    []byte
	done   bool
}

var spigoServices = [...]string{
	"lamp.*.*..www00...www.denominator",
	"lamp.us-east-1.*..webserver-elb00...webserver-elb.elb",
	"lamp.us-east-1.zoneA..webserver03...webserver.monolith",
	"lamp.us-east-1.zoneB..rds-mysql01...rds-mysql.store",
}

func (g *spigoGen) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.done {
			return 0, io.EOF
		}
		g.fill()
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func (g *spigoGen) fill() {
	b := g.buf[:0]
	if g.n == 0 {
		b = append(b, "[\n"...)
	}
	if g.n == g.traces {
		g.buf, g.done = append(b, "\n]\n"...), true
		return
	}
	if g.n > 0 {
		b = append(b, ",\n"...)
	}
	g.nextID++
	root := g.nextID
	ts := int64(1463590172000000 + g.n*10000)
	parent := 0
	for hop := range 3 {
		id := root + hop
		if hop > 0 {
			b = append(b, "\n,"...)
			g.nextID++
		}
		name := "GetRequest"
		oneWay := hop == 2 && g.n%4 == 3
		if oneWay {
			name = "Put"
		}
		b = fmt.Appendf(b, `{"traceId":"%016d","name":"%s","id":"%016d"`, root, name, id)
		if parent != 0 {
			b = fmt.Appendf(b, `,"parentId":"%016d"`, parent)
		}
		c, s := spigoServices[hop], spigoServices[hop+1]
		t := ts + int64(hop*10)
		b = fmt.Appendf(b, `,"annotations":[{"endpoint":{"serviceName":"%s","ipv4":"54.198.0.%d","port":8080},"timestamp":%d,"value":"cs"},`+
			`{"endpoint":{"serviceName":"%s","ipv4":"54.198.0.%d","port":8080},"timestamp":%d,"value":"sr"}`, c, hop, t, s, hop+1, t+5)
		if !oneWay {
			d := int64(100 - hop*30)
			b = fmt.Appendf(b, `,{"endpoint":{"serviceName":"%s","ipv4":"54.198.0.%d","port":8080},"timestamp":%d,"value":"ss"},`+
				`{"endpoint":{"serviceName":"%s","ipv4":"54.198.0.%d","port":8080},"timestamp":%d,"value":"cr"}`, s, hop+1, t+d, c, hop, t+d+5)
		}
		b = append(b, "]}"...)
		parent = id
	}
	g.n++
	g.buf = b
}

func spigoInput(traces int) []byte {
	b, _ := io.ReadAll(&spigoGen{traces: traces})
	return b
}

// TestBatching checks the batch rules of Decode: requests hold at most
// BatchSpans spans, traces are not cut when they fit, and the result is the
// same as ConvertAll's.
func TestBatching(t *testing.T) {
	input := spigoInput(50) // 6 OTLP spans per trace
	all, allStats, err := ConvertAll(input, V1)
	if err != nil {
		t.Fatal(err)
	}
	want := shapes(flatten(decodeRequest(t, all)))
	for _, batch := range []int{1, 5, 6, 7, 13, 64, 1000} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) {
			reqs, st, err := decodeAll(t, input, V1, Options{BatchSpans: batch})
			if err != nil {
				t.Fatal(err)
			}
			tracesIn := map[string]int{} // trace → requests holding it
			for _, req := range reqs {
				spans := flatten(req)
				if len(spans) > batch {
					t.Errorf("request of %d spans, BatchSpans %d", len(spans), batch)
				}
				seen := map[string]bool{}
				for _, f := range spans {
					if tr := string(f.span.TraceId); !seen[tr] {
						seen[tr] = true
						tracesIn[tr]++
					}
				}
			}
			for tr, n := range tracesIn {
				if n > 1 && batch >= 6 {
					t.Errorf("trace %x cut over %d requests with BatchSpans %d", tr, n, batch)
				}
			}
			if batch >= 6 {
				// Whole traces packed: only the last request may be short
				// by more than a trace.
				for i, req := range reqs[:len(reqs)-1] {
					if n := len(flatten(req)); n <= batch-6 {
						t.Errorf("request %d holds %d spans, want more than %d", i, n, batch-6)
					}
				}
			}
			if got := shapes(flatten(reqs...)); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("spans differ from ConvertAll's")
			}
			st.Requests, allStats.Requests = 0, 0
			st.ParentsRemembered = 0 // parents of traces cut by tiny batches
			if st != allStats {
				t.Errorf("stats %+v, ConvertAll %+v", st, allStats)
			}
		})
	}
}

// TestBigTrace checks a trace of many batches: it is emitted before its
// end, split over requests, and its children resolve their parents in
// earlier batches through the ID memory, or, without memory, keep the v1
// parent ID (the client half of the shared parent; the store's trace read
// path shows them under its server half).
func TestBigTrace(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	const n = 200
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(",")
		}
		parent := ""
		if i > 1 {
			parent = fmt.Sprintf(`"parentId":"%016x",`, i-1)
		}
		fmt.Fprintf(&b, `{"traceId":"0000000000000001","id":"%016x",%s"annotations":[`+
			`{"timestamp":%d,"value":"cs","endpoint":{"serviceName":"s%d"}},{"timestamp":%d,"value":"sr","endpoint":{"serviceName":"s%d"}}]}`,
			i, parent, 1000+i, i, 1001+i, i+1)
	}
	b.WriteString("]")
	all, _, err := ConvertAll([]byte(b.String()), V1)
	if err != nil {
		t.Fatal(err)
	}
	want := shapes(flatten(decodeRequest(t, all)))
	for _, keep := range []int{0, -1} {
		reqs, st, err := decodeAll(t, []byte(b.String()), V1, Options{BatchSpans: 16, KeepIDs: keep})
		if err != nil {
			t.Fatal(err)
		}
		for _, req := range reqs {
			if len(flatten(req)) > 16 {
				t.Errorf("KeepIDs %d: request of %d spans", keep, len(flatten(req)))
			}
		}
		// Without memory, the first span of each later batch keeps its v1
		// parent ID (the client half) instead of its server half.
		got := shapes(flatten(reqs...))
		kept := int64(0)
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] && keep < 0 && strings.Replace(want[i], "#1 t=", " t=", 1) == got[i] {
				kept++
				continue
			}
			if got[i] != want[i] {
				t.Errorf("KeepIDs %d: span %d is\n%s\nwant\n%s", keep, i, got[i], want[i])
			}
		}
		if len(got) != len(want) || kept != st.ParentsUnresolved {
			t.Errorf("KeepIDs %d: %d spans, want %d; %d kept their v1 parent, %d unresolved",
				keep, len(got), len(want), kept, st.ParentsUnresolved)
		}
		// 2n spans, flushed every 4 batches (64 spans) in full requests.
		if len(reqs) != 2*n/16 || st.OTLPSpans != 2*n {
			t.Errorf("KeepIDs %d: %d requests, %d spans", keep, len(reqs), st.OTLPSpans)
		}
		// Without memory, the trace counts once per flush.
		if keep == 0 && st.Traces != 1 || keep < 0 && st.Traces != 7 {
			t.Errorf("KeepIDs %d: %d traces", keep, st.Traces)
		}
		remembered, derived := st.ParentsRemembered, st.ParentsUnresolved
		if keep == 0 && (remembered == 0 || derived != 0) || keep < 0 && (remembered != 0 || derived == 0) {
			t.Errorf("KeepIDs %d: %d parents remembered, %d derived", keep, remembered, derived)
		}
	}
}

// TestParentAcrossBatches shows what the ID memory is for: a parent that
// was not split (server only) in an earlier batch is found exactly; without
// memory the child keeps the v1 parent ID, which is also right here.
func TestParentAcrossBatches(t *testing.T) {
	input := `[{"traceId":"0000000000000001","id":"0000000000000001","name":"p","annotations":[` +
		`{"timestamp":10,"value":"sr","endpoint":{"serviceName":"b"}}]},` +
		`{"traceId":"0000000000000002","id":"0000000000000009","name":"x","annotations":[` +
		`{"timestamp":11,"value":"sr","endpoint":{"serviceName":"b"}}]},` +
		`{"traceId":"0000000000000001","id":"0000000000000002","parentId":"0000000000000001","name":"c","annotations":[` +
		`{"timestamp":12,"value":"cs","endpoint":{"serviceName":"b"}}]}]`
	for _, tt := range []struct {
		keep   int
		parent string
		traces int64
	}{
		{0, "parent=1 ", 2},
		{-1, "parent=1 ", 3}, // no memory: the trace also counts twice
	} {
		reqs, st, err := decodeAll(t, []byte(input), V1, Options{BatchSpans: 1, KeepIDs: tt.keep})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(shapes(flatten(reqs...)), "\n")
		if !strings.Contains(got, `"c" id=2 `+tt.parent) || st.Traces != tt.traces {
			t.Errorf("KeepIDs %d: want child %s and %d traces, got %d traces:\n%s", tt.keep, tt.parent, tt.traces, st.Traces, got)
		}
	}
}

// TestDecodeStreams checks that Decode emits while reading: with a large
// input generated lazily, the first request is emitted after reading a
// small part of it.
func TestDecodeStreams(t *testing.T) {
	g := &spigoGen{traces: 20000}
	counter := &budgetiotest.CountingReader{R: g}
	var firstAt int64
	var requests int
	st, err := Decode(counter, V1, Options{BatchSpans: 600}, func(req []byte, n int) error {
		if firstAt == 0 {
			firstAt = counter.N
		}
		requests++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Objects != 60000 || st.Traces != 20000 || st.OTLPSpans != 6*20000 || st.Incomplete != 2*20000/4 {
		t.Errorf("stats %+v", st)
	}
	if firstAt == 0 || firstAt > counter.N/20 {
		t.Errorf("first request emitted after reading %d of %d bytes", firstAt, counter.N)
	}
	if requests < 190 {
		t.Errorf("%d requests, want about %d", requests, st.OTLPSpans/600)
	}
}

// TestIDMemoryBounded checks the FIFO eviction of the ID memory.
func TestIDMemoryBounded(t *testing.T) {
	m := newIDMemory(3)
	key := func(i byte) spanKey { return spanKey{trace: [16]byte{15: 1}, span: [8]byte{7: i}} }
	for i := byte(1); i <= 5; i++ {
		m.put([]spanKey{key(i)}, []memEntry{{target: [8]byte{i}}})
		m.put([]spanKey{key(i)}, []memEntry{{target: [8]byte{i}}}) // again: no second slot
	}
	if len(m.m) != 3 || len(m.ring) != 3 {
		t.Fatalf("memory holds %d entries (%d in ring), want 3", len(m.m), len(m.ring))
	}
	for i := byte(1); i <= 5; i++ {
		_, ok := m.get(key(i))
		if want := i >= 3; ok != want {
			t.Errorf("span %d remembered: %v, want %v", i, ok, want)
		}
	}
	var ts traceSet
	ts.size = 2
	for i, want := range []bool{true, true, false, true, true} {
		id := [16]byte{byte([]int{1, 2, 2, 3, 1}[i])}
		if got := ts.add(id); got != want {
			t.Errorf("add %d: %v, want %v", i, got, want)
		}
	}
}

// TestEmitError checks that an error of emit stops Decode and is
// returned wrapped.
func TestEmitError(t *testing.T) {
	boom := fmt.Errorf("consumer gone")
	_, err := Decode(bytes.NewReader(spigoInput(10)), V1, Options{BatchSpans: 6}, func([]byte, int) error { return boom })
	if err == nil || !strings.Contains(err.Error(), "zipkin v1: emit request 1: consumer gone") {
		t.Errorf("got %v", err)
	}
}
