package aggregate

import (
	"bytes"
	"encoding/binary"
	"errors"
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
	// header: version, start 0, width 10, then the rest.
	hdr := func(rest ...byte) []byte { return append([]byte{1, 0, 20}, rest...) }
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version 2", []byte{2, 0, 20, 0, 0, 0, 0}},
		{"zero width", []byte{1, 0, 0, 0, 0, 0, 0}},
		{"negative width", []byte{1, 0, 1, 0, 0, 0, 0}},
		{"trailing bytes", hdr(0, 0, 0, 0, 7)},
		{"string count too large", hdr(uv(nil, 1<<40)...)},
		{"string length too large", hdr(1, 200, 'a')},
		{"node string index out of range", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 5, 0, 0, 0)},
		{"node flags", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 2, 0, 0)},
		{"series node out of range", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"negative count", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0)},
		{"zero bucket count", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 1, 5, 0, 0, 0)},
		{"bucket value overflow", append(hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 2),
			append(uv(uv(uv(uv(nil, 1<<62), 1), 1<<62), 1), 0, 0)...)},
		{"kind out of range", append(hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 1, 0, 0), append(sv(nil, 1<<40), 0, 0, 0, 0, 0, 0, 0)...)},
		{"duplicate series", hdr(1, 1, 'a', 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
	}
	for _, c := range cases {
		if _, err := DecodeWindow(c.b, g); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", c.name, err)
		} else {
			t.Logf("%s: %v", c.name, err)
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

// FuzzDecodeWindow checks that DecodeWindow never panics, and that what it
// accepts re-encodes to a fixed point: decode(encode(w)) == w.
func FuzzDecodeWindow(f *testing.F) {
	for _, w := range sampleWindows(f) {
		f.Add(AppendWindow(nil, w))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 20, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 20, 1, 1, 'a', 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 2, 0, 0, 2, 5, 3, 7, 1, 0})
	g := DefaultGeometry()
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
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
