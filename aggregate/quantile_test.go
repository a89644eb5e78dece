package aggregate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// multiModal draws n durations from three modes (cache hit ≈1ms, miss
// ≈5ms, disk ≈50ms), each log-normally spread.
func multiModal(r *rand.Rand, n int, hit, miss float64) []int64 {
	out := make([]int64, n)
	for i := range out {
		base := 50 * time.Millisecond
		switch u := r.Float64(); {
		case u < hit:
			base = time.Millisecond
		case u < hit+miss:
			base = 5 * time.Millisecond
		}
		out[i] = int64(float64(base) * math.Exp(r.NormFloat64()*0.2))
	}
	return out
}

var testQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

// checkQuantiles compares the quantiles of r with the exact nearest-rank
// quantiles of sorted (within 1%).
func checkQuantiles(t *testing.T, what string, r *Rollup, sorted []int64) {
	t.Helper()
	for _, q := range testQuantiles {
		exact := sorted[int(math.Ceil(q*float64(len(sorted))))-1]
		got := r.Hist.ValueAtPercentile(q * 100)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.01 {
			t.Errorf("%s: p%g = %v, exact %v: %.2f%% off", what, q*100, time.Duration(got), time.Duration(exact), rel*100)
		}
	}
}

func buckets(r *Rollup) [][2]int64 {
	var out [][2]int64
	for v, c := range r.Hist.ForEachBucket {
		out = append(out, [2]int64{v, c})
	}
	return out
}

// TestQuantileAccuracy checks quantiles of multi-modal latencies against
// the exact values, directly, after an encode/decode round trip, and after
// merging the data split over many windows.
func TestQuantileAccuracy(t *testing.T) {
	g := DefaultGeometry()
	for i, mix := range [][2]float64{{0.8, 0.15}, {0.5, 0.3}, {0.95, 0.04}, {0.3, 0.3}, {0.9, 0.099}} {
		t.Run(fmt.Sprintf("hit%g-miss%g", mix[0], mix[1]), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 3))
			vals := multiModal(r, 100_000, mix[0], mix[1])
			sorted := slices.Clone(vals)
			slices.Sort(sorted)

			one := g.NewRollup()
			parts := make([]*Rollup, 100)
			for j := range parts {
				parts[j] = g.NewRollup()
			}
			for j, v := range vals {
				one.Record(v, false, Exemplar{})
				parts[r.IntN(len(parts))].Record(v, false, Exemplar{TraceID: [16]byte{byte(j), byte(j >> 8), byte(j >> 16), 1}, Time: int64(j)})
			}
			checkQuantiles(t, "one rollup", one, sorted)

			w := NewWindow(0, 10)
			w.Series[SeriesKey{Node: Node{Service: "s"}, Operation: "op"}] = one
			dec, err := DecodeWindow(AppendWindow(nil, w), g)
			if err != nil {
				t.Fatal(err)
			}
			rt := dec.Series[SeriesKey{Node: Node{Service: "s"}, Operation: "op"}]
			if !slices.Equal(buckets(rt), buckets(one)) {
				t.Error("buckets changed in the round trip")
			}
			for _, q := range testQuantiles {
				if a, b := rt.Hist.ValueAtPercentile(q*100), one.Hist.ValueAtPercentile(q*100); a != b {
					t.Errorf("p%g after round trip = %d, want %d", q*100, a, b)
				}
			}

			merged := g.NewRollup()
			for _, p := range parts {
				// Through the encoding too, as queries see persisted windows.
				pw := NewWindow(0, 10)
				pw.Series[SeriesKey{Operation: "op"}] = p
				d, err := DecodeWindow(AppendWindow(nil, pw), g)
				if err != nil {
					t.Fatal(err)
				}
				merged.Merge(d.Series[SeriesKey{Operation: "op"}])
			}
			if merged.Count != int64(len(vals)) || !slices.Equal(buckets(merged), buckets(one)) {
				t.Errorf("merged rollup: count %d, buckets equal %v", merged.Count, slices.Equal(buckets(merged), buckets(one)))
			}
			checkQuantiles(t, "merged", merged, sorted)
			if len(merged.Exemplars) != DefaultMaxExemplars || merged.Exemplars[0].Value != sorted[len(sorted)-1] {
				t.Errorf("merged exemplars %v, want the %d slowest starting with %d", merged.Exemplars, DefaultMaxExemplars, sorted[len(sorted)-1])
			}
		})
	}
}

func TestRollupRecordAndMerge(t *testing.T) {
	g := DefaultGeometry()
	ex := func(n byte, v int64) Exemplar { return Exemplar{TraceID: [16]byte{n}, SpanID: [8]byte{n}, Value: v} }
	a, b := g.NewRollup(), g.NewRollup()
	for i, d := range []int64{5, 1, 9, 3, 7, 2, 8} {
		a.Record(d*ms, i%3 == 0, ex(byte(i+1), 0))
	}
	b.Record(0, false, ex(20, 0))       // zero duration is kept as 0
	b.Record(-5, true, ex(21, 0))       // negative: recorded as 0
	b.Record(100*ms, false, Exemplar{}) // no exemplar
	if a.Count != 7 || a.Errors != 3 {
		t.Fatalf("a: count %d errors %d", a.Count, a.Errors)
	}
	var vals []int64
	for _, e := range a.Exemplars {
		vals = append(vals, e.Value/ms)
	}
	if !slices.Equal(vals, []int64{9, 8, 7, 5, 3}) {
		t.Errorf("exemplars %v, want the 5 slowest", vals)
	}
	if b.Hist.Min() != 0 || b.Hist.TotalCount() != 3 || len(b.Exemplars) != 2 {
		t.Errorf("b: min %d total %d exemplars %d", b.Hist.Min(), b.Hist.TotalCount(), len(b.Exemplars))
	}

	ab := a.Clone()
	ab.Merge(b)
	ba := b.Clone()
	ba.Merge(a)
	for _, m := range []*Rollup{ab, ba} {
		if m.Count != 10 || m.Errors != 4 || m.Hist.TotalCount() != 10 || m.Exemplars[0].Value != 100*ms && m.Exemplars[0].Value != 9*ms {
			t.Errorf("merged: %+v", m)
		}
	}
	if string(rollupBytes(ab)) != string(rollupBytes(ba)) {
		t.Error("Merge is not commutative")
	}
	if a.Count != 7 || b.Count != 3 {
		t.Error("Merge changed its argument")
	}
	// Self-merge doubles and keeps distinct exemplars.
	c := a.Clone()
	c.Merge(c)
	if c.Count != 14 || c.Hist.TotalCount() != 14 || len(c.Exemplars) != 5 {
		t.Errorf("self-merge: count %d hist %d exemplars %d", c.Count, c.Hist.TotalCount(), len(c.Exemplars))
	}
	// A zero Rollup takes the geometry of what it merges.
	var z Rollup
	z.Merge(a)
	if z.Hist == nil || z.Hist.TotalCount() != 7 || z.exemplarCap() != DefaultMaxExemplars {
		t.Errorf("zero rollup after merge: %+v", z)
	}
	z.Record(ms, false, Exemplar{})
	var z2 Rollup
	z2.Record(ms, false, Exemplar{})
	if z2.Hist == nil || z2.Count != 1 {
		t.Error("Record on a zero Rollup")
	}
}

func TestExemplarCap(t *testing.T) {
	g := Geometry{Digits: 2, MaxValue: int64(time.Hour), MaxExemplars: 2}
	r := g.NewRollup()
	for i := range 10 {
		r.Record(int64(i), false, Exemplar{TraceID: [16]byte{byte(i + 1)}})
	}
	if len(r.Exemplars) != 2 || r.Exemplars[0].Value != 9 || r.Exemplars[1].Value != 8 {
		t.Errorf("exemplars %+v", r.Exemplars)
	}
	var z Rollup
	z.Merge(r)
	z.Merge(r.Clone())
	if len(z.Exemplars) != 2 {
		t.Errorf("merged into zero rollup: %d exemplars, want the cap 2", len(z.Exemplars))
	}
}

// TestSpreadAndErrorExemplars checks the exemplars beyond the slowest: one
// per octave of duration (the newest of each), the newest failing spans,
// and that merging and encoding give the same sets whatever the order in
// which spans and rollups come.
func TestSpreadAndErrorExemplars(t *testing.T) {
	g := DefaultGeometry()
	type span struct {
		dur  int64
		at   int64
		err  bool
		id   byte
		band int
	}
	// A bimodal distribution: a cache-hit mode around 2 ms, a miss mode
	// around 48 ms, a few failures, and the slowest 5 in the miss mode.
	var spans []span
	for i := range 40 {
		dur := 2*ms + int64(i%5)*50*time.Microsecond.Nanoseconds()
		if i%4 == 3 {
			dur = 48*ms + int64(i)*100*time.Microsecond.Nanoseconds()
		}
		spans = append(spans, span{dur: dur, at: int64(1000 + i), err: i%13 == 7, id: byte(i + 1)})
	}
	record := func(order []int) *Rollup {
		r := g.NewRollup()
		for _, i := range order {
			s := spans[i]
			r.Record(s.dur, s.err, Exemplar{TraceID: [16]byte{s.id}, SpanID: [8]byte{s.id}, Time: s.at})
		}
		return r
	}
	fwd := make([]int, len(spans))
	for i := range fwd {
		fwd[i] = i
	}
	r := record(fwd)

	// Spread: one exemplar per band present, the newest of each, sorted.
	want := map[int]span{}
	for _, s := range spans {
		b := SpreadBand(s.dur)
		if w, ok := want[b]; !ok || s.at > w.at {
			want[b] = s
		}
	}
	if len(r.Spread) != len(want) || len(want) < 2 {
		t.Fatalf("spread has %d exemplars, want %d (≥ 2 bands)", len(r.Spread), len(want))
	}
	for i, ex := range r.Spread {
		b := SpreadBand(ex.Value)
		if i > 0 && SpreadBand(r.Spread[i-1].Value) >= b {
			t.Errorf("spread not sorted by band: %+v", r.Spread)
		}
		if w := want[b]; ex.TraceID[0] != w.id || ex.Time != w.at || ex.Value != w.dur || ex.Error != w.err {
			t.Errorf("band %d: exemplar %+v, want span %+v", b, ex, w)
		}
	}
	// Errors: the newest MaxErrorExemplars failing spans, newest first.
	var errs []span
	for i := len(spans) - 1; i >= 0 && len(errs) < MaxErrorExemplars; i-- {
		if spans[i].err {
			errs = append(errs, spans[i])
		}
	}
	if len(r.ErrorExemplars) != len(errs) {
		t.Fatalf("error exemplars %+v, want %+v", r.ErrorExemplars, errs)
	}
	for i, ex := range r.ErrorExemplars {
		if ex.TraceID[0] != errs[i].id || !ex.Error {
			t.Errorf("error exemplar %d: %+v, want span %+v", i, ex, errs[i])
		}
	}
	for _, ex := range r.Exemplars {
		if ex.Error != spans[ex.TraceID[0]-1].err {
			t.Errorf("slowest exemplar %+v: Error flag wrong", ex)
		}
	}

	// Any order of spans, any split into merged rollups, and an encoding
	// round trip keep the same exemplars.
	rev := slices.Clone(fwd)
	slices.Reverse(rev)
	a, b := record(rev[:17]), record(rev[17:])
	a.Merge(b)
	w := NewWindow(0, 10)
	w.Series[SeriesKey{Node: Node{Service: "s"}, Operation: "op", Kind: kindServer}] = a
	d, err := DecodeWindow(AppendWindow(nil, w), g)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Series[SeriesKey{Node: Node{Service: "s"}, Operation: "op", Kind: kindServer}]
	for name, pair := range map[string][2][]Exemplar{
		"slowest": {r.Exemplars, got.Exemplars},
		"spread":  {r.Spread, got.Spread},
		"errors":  {r.ErrorExemplars, got.ErrorExemplars},
	} {
		if !slices.Equal(pair[0], pair[1]) {
			t.Errorf("%s after reverse order, merge and encoding:\n%+v\nwant\n%+v", name, pair[1], pair[0])
		}
	}
	// The graph accumulator merges them too.
	acc := NewLatencyAccumulator(LatencyQuery{Service: "s"}, g)
	acc.Add(d)
	if err := acc.AddEncoded(AppendWindow(nil, w)); err != nil {
		t.Fatal(err)
	}
	lat := acc.Result()
	if !slices.Equal(lat.Total.Spread, r.Spread) || !slices.Equal(lat.Total.ErrorExemplars, r.ErrorExemplars) {
		t.Errorf("latency accumulator: spread %+v errors %+v", lat.Total.Spread, lat.Total.ErrorExemplars)
	}
}

// TestDecodeVersion2Exemplars checks that a version 2 window (slowest
// exemplars only, no flags) still decodes: its exemplars are the slowest,
// and no spread or error exemplars are invented.
func TestDecodeVersion2Exemplars(t *testing.T) {
	g := DefaultGeometry()
	r := g.NewRollup()
	r.Record(5*ms, true, Exemplar{TraceID: [16]byte{1}, SpanID: [8]byte{1}, Time: 7})
	w := NewWindow(0, 10)
	k := SeriesKey{Node: Node{Service: "s"}, Operation: "op", Kind: kindServer}
	w.Series[k] = r
	// Version 2 body: buckets, then the slowest exemplars without flags.
	buckets := appendRollupBody(nil, &Rollup{Hist: r.Hist})
	buckets = buckets[:len(buckets)-5] // without the three empty exemplar lists, retried and failed
	body := append(slices.Clone(buckets), 1)
	body = append(body, r.Exemplars[0].TraceID[:]...)
	body = append(body, r.Exemplars[0].SpanID[:]...)
	body = binary.AppendVarint(body, r.Exemplars[0].Value)
	body = binary.AppendVarint(body, r.Exemplars[0].Time)
	// Splice it into the current encoding in place of the current body
	// (both shorter than 128 bytes: one byte of length).
	v3 := AppendWindow(nil, w)
	v3body := appendRollupBody(nil, r)
	at := bytes.Index(v3, v3body)
	if at < 1 || len(v3body) >= 128 || int(v3[at-1]) != len(v3body) {
		t.Fatal("rollup body not found in the encoding")
	}
	v2w := slices.Concat(v3[:at-1], []byte{byte(len(body))}, body, v3[at+len(v3body):])
	v2w[0] = 2
	d, err := DecodeWindow(v2w, g)
	if err != nil {
		t.Fatal(err)
	}
	got := d.Series[k]
	if len(got.Exemplars) != 1 || got.Exemplars[0].Value != 5*ms || got.Exemplars[0].Error || got.Spread != nil || got.ErrorExemplars != nil {
		t.Errorf("version 2 rollup: %+v", got)
	}
}
