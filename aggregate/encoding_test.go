package aggregate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// sampleWindows returns windows covering the encoding's features: virtual
// nodes, empty and non-ASCII strings, zero and clamped durations, errors,
// exemplars, several kinds and statuses.
func sampleWindows(tb testing.TB) []*Window {
	g := DefaultGeometry()
	w := NewWindow(1_700_000_040, 10)
	n1 := Node{Service: "frontend", Instance: "fe-1", Zone: "z1", Region: "r1", Namespace: "shop"}
	n2 := Node{Service: "négociant ✓"}
	v := Node{Service: "postgresql", Virtual: true}
	r := g.NewRollup()
	for i, d := range []int64{0, 1, 999, 1000, 12345678, int64(2 * time.Hour)} {
		r.Record(d, i%2 == 0, Exemplar{TraceID: [16]byte{byte(i + 1)}, SpanID: [8]byte{9}, Time: 1_700_000_040_000_000_000 + int64(i)})
	}
	w.Series[SeriesKey{Node: n1, Operation: "GET /", Kind: 2, Status: 2}] = r
	w.Series[SeriesKey{Node: n1, Operation: "GET /", Kind: 2, Status: 0}] = g.NewRollup()
	w.Series[SeriesKey{Node: n2, Operation: "", Kind: 5, Status: 1}] = r.Clone()
	w.Edges[EdgeKey{Source: n1, Target: v, Operation: "SELECT"}] = r.Clone()
	w.Edges[EdgeKey{Source: n1, Target: n2}] = g.NewRollup()
	ws := []*Window{NewWindow(-20, 10), w}

	// And what the aggregator makes of the fixtures.
	a := New(DefaultOptions())
	for i, f := range []string{"trace-client-server.json", "trace-messaging.json", "trace-errors.json"} {
		a.Apply(uint64(i+1), commitAt(0), parse(tb, loadJSON(tb, f)))
	}
	a.Expire(commitAt(time.Minute))
	return append(ws, a.Flush().Windows...)
}

func TestWindowRoundTrip(t *testing.T) {
	g := DefaultGeometry()
	for _, w := range sampleWindows(t) {
		b := AppendWindow(nil, w)
		if again := AppendWindow(nil, w); !bytes.Equal(b, again) {
			t.Fatal("encoding is not deterministic")
		}
		d, err := DecodeWindow(b, g)
		if err != nil {
			t.Fatalf("window %d: %v", w.Start, err)
		}
		if d.Start != w.Start || d.Width != w.Width || len(d.Series) != len(w.Series) || len(d.Edges) != len(w.Edges) {
			t.Fatalf("window %d: decoded %d+%d with %d series %d edges", w.Start, d.Start, d.Width, len(d.Series), len(d.Edges))
		}
		check := func(what string, got, want *Rollup) {
			t.Helper()
			if got == nil {
				t.Fatalf("%s missing after decode", what)
			}
			if got.Count != want.Count || got.Errors != want.Errors || got.Clamped != want.Clamped ||
				len(got.Exemplars) != len(want.Exemplars) || got.Hist.TotalCount() != want.Hist.TotalCount() {
				t.Errorf("%s: decoded %+v, want %+v", what, got, want)
			}
			for i := range want.Exemplars {
				if got.Exemplars[i] != want.Exemplars[i] {
					t.Errorf("%s: exemplar %d = %+v, want %+v", what, i, got.Exemplars[i], want.Exemplars[i])
				}
			}
			gb, wb := buckets(got), buckets(want)
			if len(gb) != len(wb) {
				t.Fatalf("%s: %d buckets, want %d", what, len(gb), len(wb))
			}
			for i := range wb {
				if gb[i] != wb[i] {
					t.Errorf("%s: bucket %d = %v, want %v", what, i, gb[i], wb[i])
				}
			}
			for _, p := range []float64{0, 1, 50, 90, 99, 99.9, 100} {
				if a, b := got.Hist.ValueAtPercentile(p), want.Hist.ValueAtPercentile(p); a != b {
					t.Errorf("%s: p%g = %d, want %d", what, p, a, b)
				}
			}
			if got.Hist.Max() != want.Hist.Max() || got.Hist.Min() != want.Hist.Min() || got.Hist.Mean() != want.Hist.Mean() {
				t.Errorf("%s: min/max/mean changed", what)
			}
		}
		for k, r := range w.Series {
			check("series "+k.Operation, d.Series[k], r)
		}
		for k, r := range w.Edges {
			check("edge "+k.Operation, d.Edges[k], r)
		}
		if b2 := AppendWindow(nil, d); !bytes.Equal(b, b2) {
			t.Error("re-encoding the decoded window differs")
		}
	}
}

func TestDecodeWindowErrors(t *testing.T) {
	g := DefaultGeometry()
	valid := AppendWindow(nil, sampleWindows(t)[1])
	// Every truncation fails cleanly.
	for n := range len(valid) {
		if _, err := DecodeWindow(valid[:n], g); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err = %v", n, err)
		}
	}
	uv := binary.AppendUvarint
	sv := binary.AppendVarint
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	// header: version 2, start 0, width 10, then strings and nodes.
	hdr := func(rest ...byte) []byte { return append([]byte{2, 0, 20}, rest...) }
	// dict: the string "a" and one node with all fields "a".
	dict := []byte{1, 1, 'a', 1, 0, 0, 0, 0, 0, 0}
	// body: a histogram of (delta, count) pairs and no exemplars, length-prefixed.
	body := func(pairs ...uint64) []byte {
		b := uv(nil, uint64(len(pairs)/2))
		for _, p := range pairs {
			b = uv(b, p)
		}
		b = append(b, 0)
		return append(uv(nil, uint64(len(b))), b...)
	}
	rollup := func(count int64, body []byte) []byte { return cat(sv(nil, count), sv(nil, 0), sv(nil, 0), body) }
	// series: node 0, op 0, kind, status 0.
	series := func(kind int64, r []byte) []byte { return cat([]byte{0, 0}, sv(nil, kind), []byte{0}, r) }
	window := func(ss ...[]byte) []byte {
		return cat(hdr(dict...), uv(nil, uint64(len(ss))), cat(ss...), []byte{0})
	}
	ok := window(series(2, rollup(2, body(5, 2))))
	if _, err := DecodeWindow(ok, g); err != nil {
		t.Fatalf("builder's valid window: %v", err)
	}
	cases := []struct {
		name string
		b    []byte
		want string // in the error message
	}{
		{"empty", nil, "unexpected end"},
		{"version 5", []byte{5, 0, 20, 0, 0, 0, 0}, "version 5"},
		{"version 0", []byte{0, 0, 20, 0, 0, 0, 0}, "version 0"},
		{"zero width", []byte{2, 0, 0, 0, 0, 0, 0}, "width 0"},
		{"negative width", []byte{2, 0, 1, 0, 0, 0, 0}, "width -1"},
		{"trailing bytes", append(slices.Clone(ok), 7), "trailing"},
		{"string count too large", hdr(uv(nil, 1<<40)...), "string count"},
		{"string length too large", hdr(1, 100, 'a'), "string length"},
		{"node string index out of range", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 5, 0, 0, 0), "string index 5"},
		{"node flags", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 2, 0, 0), "node flags"},
		{"series node out of range", cat(hdr(dict...), []byte{1, 3, 0, 0, 0}, rollup(1, body(5, 1)), []byte{0}), "node index 3"},
		{"kind out of range", window(series(1<<40, rollup(1, body(5, 1)))), "span kind"},
		{"negative count", window(series(2, rollup(-1, body(5, 1)))), "negative count"},
		{"body longer than the window", window(series(2, cat(rollup(1, nil), uv(nil, 50)))), "rollup of 50 bytes"},
		{"zero bucket count", window(series(2, rollup(1, body(5, 0)))), "bucket count 0"},
		{"bucket value overflow", window(series(2, rollup(2, body(1<<62, 1, 1<<62, 1)))), "overflows"},
		{"bucket count overflow", window(series(2, rollup(2, body(5, 1<<62, 6, 1<<62)))), "overflow"},
		{"bytes left in the body", window(series(2, rollup(1, append(uv(nil, 5), 1, 5, 1, 0, 9)))), "trailing"},
		{"duplicate series", window(series(2, rollup(1, body(5, 1))), series(2, rollup(1, body(5, 1)))), "duplicate series"},
	}
	for _, c := range cases {
		_, err := DecodeWindow(c.b, g)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrCorrupt with %q", c.name, err, c.want)
		}
	}
	// The smallest valid window.
	if w, err := DecodeWindow(hdr(0, 0, 0, 0), g); err != nil || w.Width != 10 || w.Series == nil || w.Edges == nil {
		t.Errorf("empty window: %+v, %v", w, err)
	}
}

// TestDecodeOtherGeometry decodes rollups recorded with a larger range:
// values above the new maximum are clamped and counted.
func TestDecodeOtherGeometry(t *testing.T) {
	big := Geometry{Digits: 3, MaxValue: int64(time.Hour)}
	small := Geometry{Digits: 2, MaxValue: int64(time.Second)}
	r := big.NewRollup()
	r.Record(int64(time.Millisecond), false, Exemplar{})
	r.Record(int64(time.Minute), false, Exemplar{})
	w := NewWindow(0, 10)
	w.Series[SeriesKey{}] = r
	d, err := DecodeWindow(AppendWindow(nil, w), small)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Series[SeriesKey{}]
	if got.Count != 2 || got.Clamped != 1 || got.Hist.TotalCount() != 2 || got.Hist.Max() > int64(1010*time.Millisecond) {
		t.Errorf("decoded %+v (max %d)", got, got.Hist.Max())
	}
}

// FuzzDecodeWindow checks that DecodeWindow and the accumulators'
// AddEncoded never panic on arbitrary bytes, and that what DecodeWindow
// accepts re-encodes to a fixed point: decode(encode(w)) == w.
func FuzzDecodeWindow(f *testing.F) {
	for _, w := range sampleWindows(f) {
		f.Add(AppendWindow(nil, w))
	}
	f.Add([]byte{})
	f.Add([]byte{2, 0, 20, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 20, 1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 4, 0, 4, 0, 0, 6, 2, 5, 3, 7, 1, 0, 0})
	f.Add(v1Window)
	g := DefaultGeometry()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		// The accumulators read encoded windows too.
		if err := NewGraphAccumulator(GraphQuery{}, g).AddEncoded(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("GraphAccumulator.AddEncoded: error %v does not wrap ErrCorrupt", err)
		}
		if err := NewLatencyAccumulator(LatencyQuery{Kind: KindAll, Step: 10}, g).AddEncoded(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("LatencyAccumulator.AddEncoded: error %v does not wrap ErrCorrupt", err)
		}
		w, err := DecodeWindow(b, g)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		b1 := AppendWindow(nil, w)
		w1, err := DecodeWindow(b1, g)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if b2 := AppendWindow(nil, w1); !bytes.Equal(b1, b2) {
			t.Fatalf("not a fixed point:\n%x\n%x", b1, b2)
		}
	})
}

// v1Window is a version 1 encoding (no rollup body lengths): one string
// "a", one node, one series with 3 spans in buckets 5 and 12 and one
// exemplar, one edge with an empty histogram.
var v1Window = []byte{
	1, 0, 20, // version 1, start 0, width 10
	1, 1, 'a', // strings
	1, 0, 0, 0, 0, 0, 0, // nodes
	1, 0, 0, 4, 0, // series: node 0, op 0, kind 2, status 0
	6, 2, 0, // count 3, errors 1, clamped 0
	2, 5, 2, 7, 1, // buckets: 5×2, 12×1
	1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8, 8, 24, 2, // exemplar: value 12, time 1
	1, 0, 0, 0, // edge: node 0 → node 0, op 0
	2, 0, 0, 0, 0, // count 1, no buckets, no exemplars
}

func TestDecodeVersion1(t *testing.T) {
	g := DefaultGeometry()
	w, err := DecodeWindow(v1Window, g)
	if err != nil {
		t.Fatal(err)
	}
	k := SeriesKey{Node: Node{Service: "a", Instance: "a", Zone: "a", Region: "a", Namespace: "a"}, Operation: "a", Kind: 2}
	r := w.Series[k]
	if r == nil || r.Count != 3 || r.Errors != 1 || r.Hist.TotalCount() != 3 || r.Hist.Max() != 12 ||
		len(r.Exemplars) != 1 || r.Exemplars[0].Value != 12 || r.Exemplars[0].Time != 1 || len(w.Edges) != 1 {
		t.Fatalf("decoded %+v, series %+v", w, r)
	}
	// It re-encodes as the current version, which decodes to the same.
	b := AppendWindow(nil, w)
	if b[0] != windowFormatVersion {
		t.Errorf("re-encoded as version %d", b[0])
	}
	w2, err := DecodeWindow(b, g)
	if err != nil || !bytes.Equal(AppendWindow(nil, w2), b) {
		t.Errorf("version %d round trip: %v", windowFormatVersion, err)
	}
	acc := NewGraphAccumulator(GraphQuery{}, g)
	if err := acc.AddEncoded(v1Window); err != nil {
		t.Fatal(err)
	}
	if gr := acc.Result(); len(gr.Nodes) != 1 || gr.Nodes[0].Requests.Count != 3 || gr.Edges[0].Calls.Count != 1 {
		t.Errorf("graph from version 1: %s", renderGraph(gr))
	}
}
