package query

import (
	"math"
	"math/rand/v2"
	"testing"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
)

// component is a log-normal mode of a synthetic latency distribution.
type component struct {
	median float64 // ns
	sigma  float64 // of the natural log
	n      int
}

// bars samples the components into an HDR histogram of the collector's
// geometry and returns its non-empty buckets.
func sampleBars(seed uint64, comps ...component) []hdr.Bar {
	r := rand.New(rand.NewPCG(seed, 1))
	h := hdr.New(1, 3_600_000_000_000, 2)
	for _, c := range comps {
		for range c.n {
			v := c.median * math.Exp(c.sigma*r.NormFloat64())
			_ = h.RecordValue(int64(v))
		}
	}
	var out []hdr.Bar
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			out = append(out, b)
		}
	}
	return out
}

// TestFindModes checks mode detection on sampled distributions: the
// number of modes, each peak near its component's median, and the shares.
func TestFindModes(t *testing.T) {
	ms := 1e6
	cases := []struct {
		name  string
		comps []component
		want  []float64 // peaks (ns); shares follow the components' n
	}{
		{"unimodal", []component{{20 * ms, 0.25, 5000}}, []float64{20 * ms}},
		{"unimodal wide", []component{{20 * ms, 0.6, 5000}}, []float64{20 * ms}},
		{"cache hit and miss", []component{{2 * ms, 0.15, 6000}, {48 * ms, 0.2, 4000}}, []float64{2 * ms, 48 * ms}},
		{"hit, miss and disk", []component{{2 * ms, 0.1, 5000}, {48 * ms, 0.1, 3000}, {400 * ms, 0.1, 2000}}, []float64{2 * ms, 48 * ms, 400 * ms}},
		{"timeouts", []component{{30 * ms, 0.2, 9800}, {5000 * ms, 0.01, 200}}, []float64{30 * ms, 5000 * ms}},
		{"a factor of 3 apart", []component{{10 * ms, 0.08, 3000}, {30 * ms, 0.08, 3000}}, []float64{10 * ms, 30 * ms}},
		{"too few to be a mode", []component{{10 * ms, 0.2, 9950}, {900 * ms, 0.05, 50}}, []float64{10 * ms}},
		{"few spans", []component{{5 * ms, 0.3, 12}}, nil}, // any count ≥ 1: sparse
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 5; seed++ {
				bars := sampleBars(seed, tc.comps...)
				modes := findModes(bars)
				var total int64
				for _, b := range bars {
					total += b.Count
				}
				var sum int64
				for i, m := range modes {
					sum += m.count
					if m.from > int64(m.peak) || m.to < int64(m.peak) || (i > 0 && m.from <= modes[i-1].to) {
						t.Errorf("seed %d: mode %d range [%d, %d] peak %.0f (previous %+v)", seed, i, m.from, m.to, m.peak, modes[max(i-1, 0)])
					}
				}
				if sum != total {
					t.Errorf("seed %d: modes hold %d of %d spans", seed, sum, total)
				}
				if tc.want == nil {
					if len(modes) == 0 || len(modes) > maxModes {
						t.Errorf("seed %d: %d modes", seed, len(modes))
					}
					continue
				}
				if len(modes) != len(tc.want) {
					t.Errorf("seed %d: %d modes %+v, want peaks %v", seed, len(modes), modes, tc.want)
					continue
				}
				for i, m := range modes {
					if r := m.peak / tc.want[i]; r < 0.8 || r > 1.25 {
						t.Errorf("seed %d: mode %d peak %.3g ns, want about %.3g", seed, i, m.peak, tc.want[i])
					}
					if len(tc.comps) == len(tc.want) {
						share := float64(m.count) / float64(total)
						want := float64(tc.comps[i].n) / float64(total)
						if math.Abs(share-want) > 0.05 {
							t.Errorf("seed %d: mode %d share %.3f, want about %.3f", seed, i, share, want)
						}
					}
				}
			}
		})
	}
	if findModes(nil) != nil {
		t.Error("modes of an empty distribution")
	}
}

// TestModeExemplar checks the choice of a mode's exemplar: in its range,
// nearest the peak, successful before failing, newest on a tie.
func TestModeExemplar(t *testing.T) {
	m := mode{peak: 48e6, from: 40e6, to: 60e6}
	ex := func(n byte, v int64, at int64, failed bool) aggregate.Exemplar {
		return aggregate.Exemplar{TraceID: [16]byte{n}, Value: v, Time: at, Error: failed}
	}
	cases := []struct {
		name  string
		lists [][]aggregate.Exemplar
		want  byte // 0: none
	}{
		{"none in range", [][]aggregate.Exemplar{{ex(1, 2e6, 1, false), ex(2, 70e6, 1, false)}}, 0},
		{"nearest the peak", [][]aggregate.Exemplar{{ex(1, 41e6, 1, false)}, {ex(2, 50e6, 1, false)}}, 2},
		{"successful first", [][]aggregate.Exemplar{{ex(1, 48e6, 1, true), ex(2, 59e6, 1, false)}}, 2},
		{"failing when alone", [][]aggregate.Exemplar{{ex(1, 48e6, 1, true)}}, 1},
		{"newest on a tie", [][]aggregate.Exemplar{{ex(1, 48e6, 1, false)}, {ex(2, 48e6, 5, false)}}, 2},
		{"range bounds inclusive", [][]aggregate.Exemplar{{ex(1, 40e6, 1, false)}}, 1},
	}
	for _, tc := range cases {
		got := modeExemplar(&m, tc.lists...)
		switch {
		case tc.want == 0 && got != nil:
			t.Errorf("%s: got %+v, want none", tc.name, got)
		case tc.want != 0 && (got == nil || got.TraceID[0] != tc.want):
			t.Errorf("%s: got %+v, want exemplar %d", tc.name, got, tc.want)
		}
	}
}
