package aggregate

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/otlpwire"
)

// TestBucketFloor checks that recording the bucket floor of a value gives
// the histogram that recording the value gives, at every precision.
func TestBucketFloor(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for digits := 1; digits <= 5; digits++ {
		t.Run(fmt.Sprint("digits", digits), func(t *testing.T) {
			o := DefaultOptions()
			o.SignificantDigits = digits
			a := New(o)
			raw, floored := a.geom.NewRollup(), a.geom.NewRollup()
			vals := []int64{0, 1, 2, 127, 128, 255, 256, 257, 1000, 2047, 2048, 2049, a.provMax - 1, a.provMax}
			for range 20000 {
				vals = append(vals, r.Int64N(a.provMax+1)>>r.IntN(40))
			}
			for _, v := range vals {
				f := a.bucketFloor(v)
				if f > v {
					t.Fatalf("bucketFloor(%d) = %d > v", v, f)
				}
				_ = raw.Hist.RecordValues(v, 1)
				_ = floored.Hist.RecordValues(f, 1)
			}
			if string(rollupBytes(raw)) != string(rollupBytes(floored)) {
				t.Errorf("histograms of the values and of their bucket floors differ")
			}
		})
	}
}

// answer is what a query sees at service level: the persisted windows,
// the open deltas and the provisional calls, merged. Lines per edge key
// (a virtual target marked '*') with its count, errors, provisional
// count and histogram buckets (rounded to ms); graph lines per
// service-level edge; exemplars are left out (provisional calls have none).
func answer(a *Aggregator, persisted []*Window) []string {
	open, prov := a.Live(math.MinInt64, math.MaxInt64)
	merged := NewWindow(0, 1)
	ga := NewGraphAccumulator(GraphQuery{Level: LevelService}, a.Geometry())
	for _, w := range append(slices.Clone(persisted), open...) {
		merged.Merge(w)
		ga.Add(w)
	}
	provCount := map[EdgeKey]int64{}
	for _, w := range prov {
		merged.Merge(w)
		ga.AddProvisional(w)
		for k, r := range w.Edges {
			provCount[k] += r.Count
		}
	}
	var out []string
	for k, r := range merged.Edges {
		dst := k.Target.Service
		if k.Target.Virtual {
			dst = "*" + dst
		}
		var hist []string
		for v, c := range r.Hist.ForEachBucket {
			for range c {
				hist = append(hist, time.Duration(v).Round(time.Millisecond).String())
			}
		}
		out = append(out, fmt.Sprintf("%s->%s %s n=%d err=%d prov=%d [%s]", k.Source.Service, dst, k.Operation,
			r.Count, r.Errors, provCount[k], strings.Join(hist, " ")))
	}
	for _, e := range ga.Result().Edges {
		out = append(out, fmt.Sprintf("graph %s->%s n=%d prov=%d", e.Source, e.Target, e.Calls.Count, e.Provisional))
	}
	slices.Sort(out)
	return out
}

// provRun plays a scenario as the store would: chunks applied in order,
// Expire always right before a Flush (the store does both under one lock),
// the flushed windows persisted with their checkpoint.
type provRun struct {
	a         *Aggregator
	opts      Options
	chunks    []*otlpwire.Traces // seq i+1
	commits   []int64
	persisted []*Window
	cp        Checkpoint
}

func (r *provRun) apply(commit int64, tr *otlpwire.Traces) {
	r.chunks = append(r.chunks, tr)
	r.commits = append(r.commits, commit)
	r.a.Apply(uint64(len(r.chunks)), commit, tr)
}

func (r *provRun) flush() {
	r.cp = r.a.Flush()
	r.persisted = append(r.persisted, r.cp.Windows...)
}

// crash replaces the aggregator by one recovered as the store recovers:
// the unflushed deltas are lost, the pairing state rebuilt from the
// checkpoint, and the chunks after it applied again.
func (r *provRun) crash() {
	a := New(r.opts)
	for seq := r.cp.ReplayFrom; seq <= r.cp.AppliedSeq; seq++ {
		a.Rebuild(seq, r.commits[seq-1], r.chunks[seq-1])
	}
	a.EndRebuild(r.cp.ExpiredBefore, r.cp.AppliedSeq)
	for seq := r.cp.AppliedSeq + 1; seq <= uint64(len(r.chunks)); seq++ {
		a.Apply(seq, r.commits[seq-1], r.chunks[seq-1])
	}
	r.a = a
}

// TestProvisionalCalls follows five calls to a callee named by
// peer.service through pairing and expiry, with a crash and recovery after
// every step: at every step each call is counted exactly once, and a
// recovered aggregator gives the answer of the one that crashed.
func TestProvisionalCalls(t *testing.T) {
	client := func(i int, dur int64, isErr bool) tspan {
		return tspan{svc: "frontend", trace: uint64(i), id: uint64(10 * i), name: "GET /cart", kind: kClient,
			start: int64(i) * ms, dur: dur, err: isErr, attrs: []kv{{"peer.service", "cart"}}}
	}
	server := func(i int, id uint64) tspan {
		return tspan{svc: "cart", trace: uint64(i), id: id, parent: uint64(10 * i), name: "GET /cart", kind: kServer,
			start: int64(i)*ms + ms, dur: ms}
	}
	clients := traces(t, client(1, 10*ms, false), client(2, 20*ms, true), client(3, 30*ms, false),
		client(4, 40*ms, false), client(5, 50*ms, false))
	all5 := []string{
		"frontend->*cart GET /cart n=5 err=1 prov=5 [10ms 20ms 30ms 40ms 50ms]",
		"graph frontend->cart n=5 prov=5",
	}
	split := []string{
		"frontend->*cart GET /cart n=3 err=0 prov=3 [30ms 40ms 50ms]",
		"frontend->cart GET /cart n=2 err=1 prov=0 [10ms 20ms]",
		"graph frontend->cart n=5 prov=3",
	}
	fanOut := []string{
		"frontend->*cart GET /cart n=3 err=0 prov=3 [30ms 40ms 50ms]",
		"frontend->cart GET /cart n=3 err=1 prov=0 [10ms 10ms 20ms]",
		"graph frontend->cart n=6 prov=3",
	}
	expired := []string{
		"frontend->*cart GET /cart n=3 err=0 prov=0 [30ms 40ms 50ms]",
		"frontend->cart GET /cart n=3 err=1 prov=0 [10ms 10ms 20ms]",
		"graph frontend->cart n=6 prov=0",
	}
	steps := []struct {
		name string
		do   func(r *provRun)
		want []string
	}{
		{"five clients applied", func(r *provRun) { r.apply(commitAt(0), clients) }, all5},
		{"flushed", (*provRun).flush, all5},
		{"two servers pair", func(r *provRun) {
			r.apply(commitAt(time.Second), traces(t, server(1, 11), server(2, 21)))
		}, split},
		{"expired before PairWait and flushed", func(r *provRun) {
			r.a.Expire(commitAt(2 * time.Second))
			r.flush()
		}, split},
		{"second server of a paired client (fan-out)", func(r *provRun) {
			r.apply(commitAt(3*time.Second), traces(t, server(1, 12)))
		}, fanOut},
		{"flushed again", (*provRun).flush, fanOut},
		{"expired and flushed", func(r *provRun) {
			r.a.Expire(commitAt(10*time.Second + 1))
			r.flush()
		}, expired},
		{"server after expiry pairs nothing", func(r *provRun) {
			r.apply(commitAt(11*time.Second), traces(t, server(3, 31)))
		}, expired},
		{"all expired and flushed", func(r *provRun) {
			r.a.Expire(commitAt(time.Minute))
			r.flush()
		}, expired},
	}
	for crashAfter := -1; crashAfter < len(steps); crashAfter++ {
		name := "no crash"
		if crashAfter >= 0 {
			name = "crash after " + steps[crashAfter].name
		}
		t.Run(name, func(t *testing.T) {
			r := &provRun{opts: testOptions()}
			r.a = New(r.opts)
			r.cp = Checkpoint{ReplayFrom: 1}
			for i, s := range steps {
				s.do(r)
				diffLines(t, s.name, answer(r.a, r.persisted), s.want)
				if i == crashAfter {
					r.crash()
					diffLines(t, "recovered after "+s.name, answer(r.a, r.persisted), s.want)
				}
			}
			if st := r.a.Stats(); st.PendingClients != 0 || len(r.a.prov) != 0 {
				t.Errorf("left: %d pending clients, %d provisional summaries", st.PendingClients, len(r.a.prov))
			}
		})
	}
}

// TestProvisionalDurations checks that provisional calls of unknown,
// clamped and zero durations are what their recorded virtual calls will
// be.
func TestProvisionalDurations(t *testing.T) {
	a := New(testOptions())
	untimed := dbClient(kv{"db.system", "redis"}, kv{DurationUnknownAttr, "true"})
	untimed.dur = 0
	var spans []tspan
	for i, dur := range []int64{0, 3 * ms, int64(2 * time.Hour), int64(3 * time.Hour)} {
		s := dbClient(kv{"db.system", "redis"})
		s.id, s.dur, s.err = uint64(100+i), dur, i == 1
		spans = append(spans, s)
	}
	a.Apply(1, commitAt(0), traces(t, append(spans, untimed)...))
	_, prov := a.Live(math.MinInt64, math.MaxInt64)
	if len(prov) != 1 || len(prov[0].Edges) != 1 {
		t.Fatalf("provisional windows %v", edgeLines(prov))
	}
	for _, r := range prov[0].Edges {
		if r.Count != 5 || r.Errors != 1 || r.Clamped != 2 || r.Hist.TotalCount() != 4 {
			t.Errorf("provisional rollup: count %d errors %d clamped %d hist %d", r.Count, r.Errors, r.Clamped, r.Hist.TotalCount())
		}
	}
	persisted := a.Flush().Windows
	a.Expire(commitAt(time.Minute))
	recorded := append(persisted, a.Flush().Windows...)
	if got, want := canonical(noExemplars(append(persisted, prov...))), canonical(noExemplars(recorded)); !maps.Equal(got, want) {
		t.Errorf("provisional calls differ from the recorded ones:\n%v\nwant\n%v", edgeLines(prov), edgeLines(recorded))
	}
}

// TestProvisionalLatency checks the latency API of a virtual edge: the
// provisional durations are in the distribution, in the window of their
// span, and counted in Latency.Provisional.
func TestProvisionalLatency(t *testing.T) {
	a := New(testOptions())
	db := func(i int, start, dur int64) tspan {
		return tspan{svc: "cart", trace: uint64(i), id: uint64(i), name: "SELECT", kind: kClient, start: start, dur: dur,
			attrs: []kv{{"db.system", "postgresql"}}}
	}
	a.Apply(1, commitAt(0), traces(t, db(1, 0, 3*ms), db(2, ms, 5*ms), db(3, 25*int64(time.Second), 7*ms)))
	for _, c := range []struct {
		name        string
		q           LatencyQuery
		n, prov     int64
		max         time.Duration
		steps       int
		firstStepOf int64
	}{
		{"edge", LatencyQuery{Source: "cart", Target: "postgresql", Step: 10}, 3, 3, 7 * time.Millisecond, 2, 2},
		{"any source", LatencyQuery{Target: "postgresql"}, 3, 3, 7 * time.Millisecond, 0, 0},
		{"other target", LatencyQuery{Source: "cart", Target: "redis"}, 0, 0, 0, 0, 0},
		{"client series", LatencyQuery{Service: "cart", Kind: KindClient}, 3, 0, 7 * time.Millisecond, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			open, prov := a.Live(math.MinInt64, math.MaxInt64)
			la := NewLatencyAccumulator(c.q, a.Geometry())
			for _, w := range open {
				la.Add(w)
			}
			for _, w := range prov {
				la.AddProvisional(w)
			}
			l := la.Result()
			if l.Total.Count != c.n || l.Provisional != c.prov || l.Total.Hist.TotalCount() != c.n {
				t.Errorf("count %d (hist %d), provisional %d; want %d, %d", l.Total.Count, l.Total.Hist.TotalCount(), l.Provisional, c.n, c.prov)
			}
			if got := time.Duration(l.Total.Hist.Max()).Round(time.Millisecond); got != c.max {
				t.Errorf("max %v, want %v", got, c.max)
			}
			if len(l.Series) != c.steps || (c.steps > 0 && l.Series[0].Rollup.Count != c.firstStepOf) {
				t.Errorf("steps %+v, want %d steps, the first of %d calls", l.Series, c.steps, c.firstStepOf)
			}
		})
	}
	// Only the windows asked for.
	base := t0.Unix()
	for _, c := range []struct {
		from, to int64
		want     []int64
	}{
		{base, base + 10, []int64{base}},
		{base + 20, base + 30, []int64{base + 20}},
		{base + 10, base + 20, nil},
	} {
		_, prov := a.Live(c.from, c.to)
		var got []int64
		for _, w := range prov {
			got = append(got, w.Start)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Live(%d, %d) provisional windows %v, want %v", c.from-base, c.to-base, got, c.want)
		}
	}
}

// bruteProv is the provisional summary computed from scratch over the
// queue, as windows.
func bruteProv(a *Aggregator) []*Window {
	b := New(a.opts)
	b.in = a.in
	for id := a.q.head; id < a.q.tail; id++ {
		if e := *a.q.get(id); provisional(&e) {
			b.addProv(&e)
		}
	}
	b.provSeen = math.MaxUint64 // nothing to scan: b has no queue
	_, prov := b.Live(math.MinInt64, math.MaxInt64)
	return prov
}

// noExemplars returns copies of ws without exemplars, retries and failed
// durations (what provisional calls do not carry).
func noExemplars(ws []*Window) []*Window {
	out := make([]*Window, 0, len(ws))
	for _, w := range ws {
		c := NewWindow(w.Start, w.Width)
		c.Merge(w)
		for _, r := range c.Series {
			r.Exemplars, r.Spread, r.ErrorExemplars, r.spreadMask, r.Retried, r.Failed = nil, nil, nil, 0, 0, nil
		}
		for _, r := range c.Edges {
			r.Exemplars, r.Spread, r.ErrorExemplars, r.spreadMask, r.Retried, r.Failed = nil, nil, nil, 0, 0, nil
		}
		out = append(out, c)
	}
	return out
}

// TestProvisionalInvariants plays random workloads, querying at random
// moments, and checks that (1) the lazily kept provisional summary always
// equals one computed from the pairing state, (2) Expire and Flush never
// change the answer (an expiring provisional call becomes a recorded
// virtual call, counted once), (3) queries never change what is recorded.
func TestProvisionalInvariants(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			wl := genWorkload(t, seed, 150)
			opts := testOptions()
			want, _ := wl.run(New(opts), wl.events)
			r := rand.New(rand.NewPCG(seed, 9))
			a := New(opts)
			var persisted []*Window
			full := func() map[int64]string {
				open, prov := a.Live(math.MinInt64, math.MaxInt64)
				return canonical(noExemplars(slices.Concat(persisted, open, prov)))
			}
			var provCalls int64
			for i, ev := range wl.events {
				var before map[int64]string
				query := r.IntN(3) == 0
				if query && ev.kind != evApply {
					before = full()
				}
				switch ev.kind {
				case evApply:
					a.Apply(ev.seq, wl.commits[ev.seq-1], wl.chunks[ev.seq-1])
				case evExpire:
					a.Expire(ev.now)
				case evFlush:
					persisted = append(persisted, a.Flush().Windows...)
				}
				if !query {
					continue
				}
				if before != nil {
					if after := full(); !maps.Equal(before, after) {
						t.Fatalf("event %d (%v): the answer changed", i, ev.kind)
					}
				}
				_, prov := a.Live(math.MinInt64, math.MaxInt64)
				if got, want := canonical(prov), canonical(bruteProv(a)); !maps.Equal(got, want) {
					t.Fatalf("event %d: provisional summary differs from the pairing state", i)
				}
				for _, w := range prov {
					for _, ro := range w.Edges {
						provCalls += ro.Count
					}
				}
			}
			if provCalls == 0 {
				t.Error("no provisional call was ever seen")
			}
			if got, want := canonical(persisted), canonical(want); !maps.Equal(got, want) {
				t.Error("queries changed the recorded windows")
			}
			if len(a.prov) != 0 {
				t.Errorf("%d provisional summaries left after the last Expire", len(a.prov))
			}
		})
	}
}

// TestProvisionalSurvivesCompaction checks that compacting the intern
// tables keeps the provisional summary's names.
func TestProvisionalSurvivesCompaction(t *testing.T) {
	a := New(testOptions())
	// Names that compaction drops, so that the kept ones move.
	a.Apply(1, commitAt(0), traces(t, tspan{svc: "x", trace: 5, id: 5, name: "a", kind: kInternal},
		tspan{svc: "x", trace: 5, id: 6, name: "b", kind: kInternal}))
	a.Apply(2, commitAt(0), traces(t, dbClient(kv{"db.name", "orders"})))
	want := answer(a, nil)
	name := a.in.strIdx["orders"]
	a.in.strLimit, a.in.nodeLimit = 0, 0 // compact at the next Flush
	persisted := a.Flush().Windows
	if a.in.strIdx["orders"] == name {
		t.Fatal("compaction kept the indices: the test tests nothing")
	}
	if got := answer(a, persisted); !slices.Equal(got, want) {
		t.Errorf("after compaction:\n%v\nwant\n%v", got, want)
	}
	a.Expire(commitAt(time.Minute))
	persisted = append(persisted, a.Flush().Windows...)
	diffLines(t, "expired", answer(a, persisted), []string{
		"cart->*orders query n=1 err=0 prov=0 [7ms]",
		"graph cart->orders n=1 prov=0",
	})
}
