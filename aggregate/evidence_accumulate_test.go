package aggregate

import (
	"reflect"
	"testing"
)

// TestAccumulateEncodedEvidence checks that accumulating encoded windows
// adds their retries and merges their failed-duration bands (sorted, one
// per band), as accumulating the decoded windows does: the graph and
// latency accumulators decode every window's rollup into one.
func TestAccumulateEncodedEvidence(t *testing.T) {
	geo := DefaultGeometry()
	src := Node{Service: "checkout"}
	dst := Node{Service: "payments"}
	window := func(start int64, durs ...int64) *Window {
		r := geo.NewRollup()
		for _, d := range durs {
			r.Record(d, true, Exemplar{Value: d, Time: start * 1e9})
		}
		r.Retried = 1
		return &Window{Start: start, Width: 10,
			Series: map[SeriesKey]*Rollup{},
			Edges:  map[EdgeKey]*Rollup{{Source: src, Target: dst, Operation: "charge"}: r}}
	}
	windows := []*Window{window(0, 100e6, 300e6), window(10, 110e6), window(20, 90e6, 120e6, 400e6)}

	enc := NewGraphAccumulator(GraphQuery{}, geo)
	dec := NewGraphAccumulator(GraphQuery{}, geo)
	for _, w := range windows {
		if err := enc.AddEncoded(AppendWindow(nil, w)); err != nil {
			t.Fatal(err)
		}
		dec.Add(w)
	}
	got, want := enc.Result(), dec.Result()
	if len(got.Edges) != 1 || len(want.Edges) != 1 {
		t.Fatalf("edges: %d encoded, %d decoded; want 1", len(got.Edges), len(want.Edges))
	}
	ge, we := got.Edges[0].Calls, want.Edges[0].Calls
	if ge.Retried != 3 || we.Retried != 3 {
		t.Errorf("retried: %d from encoded windows, %d from decoded ones; want 3", ge.Retried, we.Retried)
	}
	wantBands := []FailedBand{{Band: 27, Count: 4, Min: 90e6, Max: 120e6}, {Band: 29, Count: 2, Min: 300e6, Max: 400e6}}
	if !reflect.DeepEqual(ge.Failed, wantBands) || !reflect.DeepEqual(we.Failed, wantBands) {
		t.Errorf("failed bands:\nencoded %+v\ndecoded %+v\nwant    %+v", ge.Failed, we.Failed, wantBands)
	}

	lenc := NewLatencyAccumulator(LatencyQuery{Source: "checkout", Target: "payments"}, geo)
	for _, w := range windows {
		if err := lenc.AddEncoded(AppendWindow(nil, w)); err != nil {
			t.Fatal(err)
		}
	}
	if l := lenc.Result(); l.Total.Retried != 3 || !reflect.DeepEqual(l.Total.Failed, wantBands) {
		t.Errorf("latency total: retried %d, failed %+v; want 3 and %+v", l.Total.Retried, l.Total.Failed, wantBands)
	}
}
