package query

import (
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
)

// Fixtures for the flow graph and latency endpoints: hand-built aggregates
// with HDR histograms of the geometry the aggregator uses (1 ns to 1 h, 2
// significant digits).

const (
	fixtureLowest  = 1
	fixtureHighest = 3_600_000_000_000
	fixtureDigits  = 2
)

// hist returns a packed histogram holding the given (value ns, count) pairs.
func hist(pairs ...int64) *hdr.PackedHistogram {
	h := hdr.NewPacked(fixtureLowest, fixtureHighest, fixtureDigits)
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := h.RecordValues(pairs[i], pairs[i+1]); err != nil {
			panic("BUG: fixture value out of range: " + err.Error())
		}
	}
	return h
}

const ms = int64(time.Millisecond)

// rollup returns a rollup over the histogram of pairs with the given errors.
func rollup(errors int64, pairs ...int64) aggregate.Rollup {
	h := hist(pairs...)
	return aggregate.Rollup{Count: h.TotalCount(), Errors: errors, Hist: h}
}

// fixtureGraph is a service-level graph over 60 s: frontend (the entry)
// calls checkout and cart in us-east-1; checkout calls payments in
// eu-west-1, the virtual node postgres, and itself; reports (no region) is
// isolated.
func fixtureGraph() *aggregate.Graph {
	return &aggregate.Graph{
		Seconds: 60,
		Nodes: []aggregate.GraphNode{
			{ID: "cart", Region: "us-east-1", Requests: rollup(0, 8*ms, 590, 30*ms, 10), Spans: 1200},
			{ID: "checkout", Region: "us-east-1", Requests: rollup(3, 12*ms, 600, 48*ms, 140, 95*ms, 10), Spans: 2250, SpanErrors: 3},
			{ID: "frontend", Region: "us-east-1", Requests: rollup(12, 20*ms, 1000, 45*ms, 190, 250*ms, 10), Spans: 3600, SpanErrors: 12},
			{ID: "payments", Region: "eu-west-1", Requests: rollup(30, 150*ms, 290, 900*ms, 10), Spans: 300, SpanErrors: 30},
			{ID: "postgres", Virtual: true, Requests: rollup(0, 2*ms, 380, 7*ms, 20)},
			{ID: "reports", Spans: 10},
		},
		Edges: []aggregate.GraphEdge{
			{Source: "checkout", Target: "checkout", Calls: rollup(0, 1*ms, 5)},
			{Source: "checkout", Target: "payments", Calls: rollup(30, 160*ms, 290, 950*ms, 10)},
			{Source: "checkout", Target: "postgres", Virtual: true, Calls: rollup(0, 2*ms, 380, 7*ms, 20)},
			{Source: "frontend", Target: "cart", Calls: rollup(0, 9*ms, 590, 31*ms, 10)},
			{Source: "frontend", Target: "checkout", Calls: rollup(3, 13*ms, 600, 50*ms, 140, 97*ms, 10)},
		},
	}
}

// fixtureRegionGraph is fixtureGraph at level=region.
func fixtureRegionGraph() *aggregate.Graph {
	return &aggregate.Graph{
		Seconds: 60,
		Nodes: []aggregate.GraphNode{
			{ID: "eu-west-1", Requests: rollup(30, 150*ms, 290, 900*ms, 10), Spans: 300, SpanErrors: 30},
			{ID: "postgres", Virtual: true, Requests: rollup(0, 2*ms, 380, 7*ms, 20)},
			{ID: "us-east-1", Requests: rollup(15, 8*ms, 590, 12*ms, 600, 20*ms, 1000), Spans: 7050, SpanErrors: 15},
		},
		Edges: []aggregate.GraphEdge{
			{Source: "us-east-1", Target: "eu-west-1", Calls: rollup(30, 160*ms, 290, 950*ms, 10)},
			{Source: "us-east-1", Target: "postgres", Virtual: true, Calls: rollup(0, 2*ms, 380, 7*ms, 20)},
			{Source: "us-east-1", Target: "us-east-1", Calls: rollup(3, 13*ms, 1190, 50*ms, 10)},
		},
	}
}

// Fixture exemplar IDs.
var (
	exTrace = [16]byte{0x5b, 0x8e, 0xfa, 0xf1, 0x6e, 0x7d, 0x4c, 0x90, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18}
	exSpan  = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
)

// exemplar returns an exemplar of value ns at t with trace and span IDs
// ending in n.
func exemplar(n byte, value int64, t time.Time) aggregate.Exemplar {
	e := aggregate.Exemplar{TraceID: exTrace, SpanID: exSpan, Value: value, Time: t.UnixNano()}
	e.TraceID[15], e.SpanID[7] = n, n
	return e
}

// fixtureLatency is a multi-modal distribution of 1000 spans (cache hit 12
// ms, miss 48 ms, disk 95 ms, timeouts 1.2 s) with five exemplars, and when
// step > 0 a series over [start, end) whose step i holds 100·(i+1) spans of
// 10·(i+1) ms.
func fixtureLatency(start, end time.Time, step int64) *aggregate.Latency {
	lat := &aggregate.Latency{Total: rollup(5, 12*ms, 800, 48*ms, 150, 95*ms, 40, 1200*ms, 10)}
	lat.Total.Exemplars = []aggregate.Exemplar{
		exemplar(1, 1250*ms, t1),
		exemplar(2, 1201*ms, t0.Add(10*time.Second)),
		exemplar(3, 96*ms, t0),
		exemplar(4, 48*ms+100_000, t1.Add(-time.Second)),
		exemplar(5, 47*ms, t0.Add(-time.Second)),
	}
	lat.Total.Exemplars[1].Error = true // a timeout
	// One exemplar per octave (the newest of each), by band, and the
	// failing ones, as rollups keep them.
	lat.Total.Spread = []aggregate.Exemplar{
		exemplar(6, 12*ms+50_000, t1.Add(-2*time.Second)),
		exemplar(4, 48*ms+100_000, t1.Add(-time.Second)),
		exemplar(3, 96*ms, t0),
		lat.Total.Exemplars[1],
	}
	lat.Total.ErrorExemplars = []aggregate.Exemplar{lat.Total.Exemplars[1]}
	if step <= 0 {
		return lat
	}
	first := start.Unix() - start.Unix()%step
	for i, s := int64(0), first; s < end.Unix(); i, s = i+1, s+step {
		n := 100 * (i + 1)
		lat.Series = append(lat.Series, aggregate.LatencyStep{
			Start:  s,
			Rollup: rollup(i, 10*ms*(i+1), n),
		})
	}
	return lat
}

// TestFixtureHistograms guards the fixtures' assumptions about HDR
// buckets: 48 ms and 48.1 ms share a bucket, 47 ms does not.
func TestFixtureHistograms(t *testing.T) {
	h := hdr.New(fixtureLowest, fixtureHighest, fixtureDigits)
	if !h.ValuesAreEquivalent(48*ms, 48*ms+100_000) || h.ValuesAreEquivalent(47*ms, 48*ms) {
		t.Fatal("fixture exemplars do not fall into the buckets the golden files assume")
	}
}
