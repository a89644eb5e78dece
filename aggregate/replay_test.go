package aggregate

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/otlpwire"
)

// workload is a random stream of chunks with Expire and Flush calls
// between them, as the store makes them.
type workload struct {
	chunks  []*otlpwire.Traces // chunks[i] has seq i+1
	commits []int64
	events  []event
}

type eventKind int

const (
	evApply eventKind = iota
	evExpire
	evFlush
)

type event struct {
	kind eventKind
	seq  uint64 // evApply
	now  int64  // evExpire
}

// genTraces makes random traces: CLIENT/SERVER calls, calls to
// uninstrumented callees (with and without a target name), PRODUCER fan-out,
// servers under non-client parents in other services, servers with missing
// parents. Each span gets an arrival time: most within 2 s of the trace,
// some around PairWait later.
func genTraces(r *rand.Rand, n int) (spans []tspan, arrive []int64) {
	var id uint64
	next := func() uint64 { id++; return id }
	svc := func() (string, []kv) {
		i := r.IntN(6)
		return fmt.Sprintf("s%d", i), []kv{{"service.instance.id", fmt.Sprintf("s%d-%d", i, r.IntN(2))}}
	}
	add := func(s tspan, base int64) {
		s.dur = int64(r.IntN(50)+1) * ms
		s.err = r.IntN(15) == 0
		spans = append(spans, s)
		d := int64(r.IntN(2000)) * ms
		if r.IntN(20) == 0 {
			d += int64(8+r.IntN(6)) * int64(time.Second)
		}
		arrive = append(arrive, base+d)
		if r.IntN(50) == 0 { // a retried request stores the span again
			spans = append(spans, s)
			arrive = append(arrive, base+d+int64(r.IntN(3000))*ms)
		}
	}
	var call func(tr uint64, parent uint64, name string, res []kv, depth int, base int64)
	call = func(tr uint64, parent uint64, from string, fromRes []kv, depth int, base int64) {
		to, toRes := svc()
		op := fmt.Sprintf("op%d", r.IntN(3))
		cid := next()
		start := base + int64(r.IntN(100))*ms
		switch v := r.IntN(12); {
		case v == 0: // uninstrumented database
			add(tspan{svc: from, resAttrs: fromRes, trace: tr, id: cid, parent: parent, name: "query", kind: kClient, start: start,
				attrs: []kv{{"db.system", []string{"redis", "postgresql"}[r.IntN(2)]}}}, base)
		case v == 1: // client without a target name
			add(tspan{svc: from, resAttrs: fromRes, trace: tr, id: cid, parent: parent, name: op, kind: kClient, start: start}, base)
		case v == 2: // fan-out
			add(tspan{svc: from, resAttrs: fromRes, trace: tr, id: cid, parent: parent, name: "publish", kind: kProducer, start: start,
				attrs: []kv{{"messaging.destination.name", "topic"}}}, base)
			for range r.IntN(3) {
				s, res := svc()
				add(tspan{svc: s, resAttrs: res, trace: tr, id: next(), parent: cid, name: "consume", kind: kConsumer, start: start + 5*ms}, base)
			}
		case v == 3: // server under a non-client parent
			add(tspan{svc: from, resAttrs: fromRes, trace: tr, id: cid, parent: parent, name: "route", kind: kInternal, start: start}, base)
			add(tspan{svc: to, resAttrs: toRes, trace: tr, id: next(), parent: cid, name: op, kind: kServer, start: start + ms}, base)
		case v == 4: // server whose parent never comes
			add(tspan{svc: to, resAttrs: toRes, trace: tr, id: next(), parent: 1 << 40, name: op, kind: kServer, start: start}, base)
		default:
			add(tspan{svc: from, resAttrs: fromRes, trace: tr, id: cid, parent: parent, name: op, kind: kClient, start: start,
				attrs: []kv{{"peer.service", to}}}, base)
			sid := next()
			add(tspan{svc: to, resAttrs: toRes, trace: tr, id: sid, parent: cid, name: op, kind: kServer, start: start + ms}, base)
			if depth < 3 {
				for range r.IntN(3) {
					call(tr, sid, to, toRes, depth+1, base)
				}
			}
		}
	}
	for tr := range uint64(n) {
		base := int64(r.IntN(60_000)) * ms
		root, res := svc()
		rid := next()
		add(tspan{svc: root, resAttrs: res, trace: tr + 1, id: rid, name: "GET /", kind: kServer, start: base}, base)
		for range 1 + r.IntN(3) {
			call(tr+1, rid, root, res, 1, base)
		}
	}
	return spans, arrive
}

func genWorkload(tb testing.TB, seed uint64, n int) *workload {
	r := rand.New(rand.NewPCG(seed, 1))
	spans, arrive := genTraces(r, n)
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return int(sign(arrive[x] - arrive[y])) })
	wl := &workload{}
	var commit int64
	for i := 0; i < len(order); {
		m := min(1+r.IntN(8), len(order)-i)
		var chunk []tspan
		for _, j := range order[i : i+m] {
			chunk = append(chunk, spans[j])
		}
		i += m
		// Chunks of one group commit share its time.
		if len(wl.commits) == 0 || r.IntN(3) != 0 {
			commit = t0.UnixNano() + arrive[order[i-1]]
		}
		wl.chunks = append(wl.chunks, traces(tb, chunk...))
		wl.commits = append(wl.commits, commit)
		seq := uint64(len(wl.chunks))
		wl.events = append(wl.events, event{kind: evApply, seq: seq})
		if r.IntN(4) == 0 {
			// Expire never runs ahead of the next commit.
			wl.events = append(wl.events, event{kind: evExpire, now: commit})
		}
		if r.IntN(6) == 0 {
			wl.events = append(wl.events, event{kind: evFlush})
		}
	}
	wl.events = append(wl.events, event{kind: evExpire, now: commit + int64(time.Minute)}, event{kind: evFlush})
	return wl
}

// run plays events on a and returns the flushed windows and the
// checkpoint of the last Flush.
func (wl *workload) run(a *Aggregator, events []event) ([]*Window, Checkpoint) {
	var ws []*Window
	var cp Checkpoint
	for _, ev := range events {
		switch ev.kind {
		case evApply:
			a.Apply(ev.seq, wl.commits[ev.seq-1], wl.chunks[ev.seq-1])
		case evExpire:
			a.Expire(ev.now)
		case evFlush:
			cp = a.Flush()
			ws = append(ws, cp.Windows...)
		}
	}
	return ws, cp
}

func gauges(st Stats) [3]int64 {
	return [3]int64{st.PendingClients, st.PendingServers, st.RememberedParents}
}

// TestReplayEquivalence crashes after every Flush of random workloads and
// checks that rebuilding from the checkpoint yields the provisional calls
// of the crashed aggregator and, going on, exactly the totals of the run
// without a crash.
func TestReplayEquivalence(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { testReplay(t, seed, 0) })
	}
	// A parent table of 4 slots: parents are overwritten all the time,
	// and replay must still give the same answers.
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("tiny-parents-seed", seed), func(t *testing.T) { testReplay(t, seed, 4) })
	}
}

// testReplay runs the replay check of TestReplayEquivalence for one seed,
// with Options.ParentSlots = parentSlots.
func testReplay(t *testing.T, seed uint64, parentSlots int) {
	{
		{
			wl := genWorkload(t, seed, 150)
			opts := testOptions()
			opts.ParentSlots = parentSlots
			full, _ := wl.run(New(opts), wl.events)
			want := canonical(full)
			if len(full) == 0 {
				t.Fatal("no windows")
			}
			var edges int
			for _, w := range full {
				edges += len(w.Edges)
			}
			if edges == 0 {
				t.Fatal("no edges")
			}
			// Crash after a sample of the flushes (every one is slow).
			var points []int
			for p, ev := range wl.events {
				if ev.kind == evFlush && p != len(wl.events)-1 {
					points = append(points, p)
				}
			}
			r := rand.New(rand.NewPCG(seed, 2))
			r.Shuffle(len(points), func(i, j int) { points[i], points[j] = points[j], points[i] })
			points = points[:min(len(points), 10)]
			crashes, provCrashes := 0, 0
			for _, p := range points {
				crashes++
				a1 := New(opts)
				before, cp := wl.run(a1, wl.events[:p+1])
				a2 := New(opts)
				for seq := cp.ReplayFrom; seq <= cp.AppliedSeq; seq++ {
					a2.Rebuild(seq, wl.commits[seq-1], wl.chunks[seq-1])
				}
				a2.EndRebuild(cp.ExpiredBefore, cp.AppliedSeq)
				if g1, g2 := gauges(a1.Stats()), gauges(a2.Stats()); g1 != g2 {
					t.Errorf("crash at event %d: rebuilt state (clients, servers, parents) %v, want %v", p, g2, g1)
				}
				// The provisional calls (pending clients that name their
				// callee) a query shows are rebuilt too.
				_, prov1 := a1.Live(math.MinInt64, math.MaxInt64)
				_, prov2 := a2.Live(math.MinInt64, math.MaxInt64)
				if len(prov1) > 0 {
					provCrashes++
				}
				if got, want := canonical(prov2), canonical(prov1); !maps.Equal(got, want) {
					t.Errorf("crash at event %d: rebuilt provisional calls differ", p)
					diffLines(t, "provisional edges", edgeLines(prov2), edgeLines(prov1))
				}
				if cp2 := a2.Flush(); len(cp2.Windows) != 0 || cp2.ReplayFrom != cp.ReplayFrom || cp2.ExpiredBefore != cp.ExpiredBefore {
					t.Errorf("crash at event %d: rebuilt aggregator checkpoint %+v (%d windows), want %+v", p, cp2, len(cp2.Windows), cp)
				}
				after, _ := wl.run(a2, wl.events[p+1:])
				got := canonical(append(before, after...))
				if !maps.Equal(got, want) {
					t.Errorf("crash at event %d (replay %d..%d): merged windows differ", p, cp.ReplayFrom, cp.AppliedSeq)
					diffLines(t, "edges", edgeLines(append(before, after...)), edgeLines(full))
					return
				}
			}
			if crashes == 0 {
				t.Fatal("no crash points")
			}
			if provCrashes == 0 {
				t.Error("no crash point with provisional calls")
			}
		}
	}
}

// TestReplayNaiveCheckpointWouldBeWrong shows why ReplayFrom reaches back
// PairWait before the oldest held state: a server half that was paired by
// a client arriving later leaves no state, yet the client's replay needs it.
func TestReplayNaiveCheckpointWouldBeWrong(t *testing.T) {
	srv := cartSrv
	cli := with(feClient, func(s *tspan) { s.attrs = []kv{{"peer.service", "cart"}} })
	other := tspan{svc: "x", trace: 9, id: 90, name: "job", kind: kInternal, dur: ms}
	chunks := []*otlpwire.Traces{traces(t, srv), traces(t, other), traces(t, cli)}
	commits := []int64{commitAt(0), commitAt(time.Second), commitAt(2 * time.Second)}
	a := New(testOptions())
	for i, c := range chunks {
		a.Apply(uint64(i+1), commits[i], c)
	}
	cp := a.Flush()
	if cp.ReplayFrom != 1 {
		t.Fatalf("ReplayFrom = %d, want 1 (the server half of the client in chunk 3)", cp.ReplayFrom)
	}
	b := New(testOptions())
	for seq := cp.ReplayFrom; seq <= cp.AppliedSeq; seq++ {
		b.Rebuild(seq, commits[seq-1], chunks[seq-1])
	}
	b.EndRebuild(cp.ExpiredBefore, cp.AppliedSeq)
	b.Expire(commitAt(time.Minute))
	if ws := b.Flush().Windows; len(ws) != 0 {
		t.Errorf("replayed aggregator recorded %v, want nothing (the call was flushed before the crash)", edgeLines(ws))
	}
}

func TestEndRebuildDropsExpired(t *testing.T) {
	a := New(testOptions())
	a.Rebuild(1, commitAt(0), traces(t, feClient))
	a.Rebuild(2, commitAt(5*time.Second), traces(t, with(feClient, func(s *tspan) { s.id = 8 })))
	a.EndRebuild(commitAt(time.Second), 2)
	if st := a.Stats(); st.PendingClients != 1 {
		t.Errorf("PendingClients = %d, want 1", st.PendingClients)
	}
	if cp := a.Flush(); cp.AppliedSeq != 2 || cp.ReplayFrom != 1 || cp.ExpiredBefore != commitAt(5*time.Second) {
		t.Errorf("checkpoint = %+v", cp)
	}
	var _ = tracepb.Span_SPAN_KIND_CLIENT
}
