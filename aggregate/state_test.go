package aggregate

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"testing"
)

// TestStateSaveLoad saves the state after Flushes of random workloads,
// loads it into a new aggregator and checks that it then behaves exactly
// as the one that saved it: the same gauges, counters, provisional calls
// and checkpoint, and, going on with the rest of the workload, the same
// windows, series and exemplars included.
func TestStateSaveLoad(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for _, parentSlots := range []int{0, 4} {
		for seed := range uint64(seeds) {
			t.Run(fmt.Sprintf("parents%d-seed%d", parentSlots, seed), func(t *testing.T) {
				testSaveLoad(t, seed, parentSlots)
			})
		}
	}
}

func testSaveLoad(t *testing.T, seed uint64, parentSlots int) {
	wl := genWorkload(t, seed, 150)
	opts := testOptions()
	opts.ParentSlots = parentSlots
	var points []int
	for p, ev := range wl.events {
		if ev.kind == evFlush && p != len(wl.events)-1 {
			points = append(points, p)
		}
	}
	if len(points) == 0 {
		t.Fatal("no flush points")
	}
	held := 0
	for i, p := range points[:min(len(points), 12)] {
		a1 := New(opts)
		wl.run(a1, wl.events[:p+1])
		if i%2 == 0 {
			a1.Live(math.MinInt64, math.MaxInt64) // a query marked the provisional calls
		}
		state, err := a1.AppendState(nil)
		if err != nil {
			t.Fatal(err)
		}
		a2 := New(opts)
		if err := a2.LoadState(state); err != nil {
			t.Fatalf("event %d: %v", p, err)
		}
		if st1, st2 := a1.Stats(), a2.Stats(); st1 != st2 {
			t.Errorf("event %d: loaded stats %+v, want %+v", p, st2, st1)
		}
		if a1.Stats().PendingClients+a1.Stats().PendingServers > 0 {
			held++
		}
		_, prov1 := a1.Live(math.MinInt64, math.MaxInt64)
		_, prov2 := a2.Live(math.MinInt64, math.MaxInt64)
		if got, want := canonical(prov2), canonical(prov1); !maps.Equal(got, want) {
			t.Errorf("event %d: loaded provisional calls differ", p)
			diffLines(t, "provisional edges", edgeLines(prov2), edgeLines(prov1))
		}
		// Saving the loaded state gives the same bytes (link order aside,
		// which depends on the hash seeds): compare its length.
		if again, err := a2.AppendState(nil); err != nil || len(again) != len(state) {
			t.Errorf("event %d: saved again: %d bytes, %v; want %d", p, len(again), err, len(state))
		}
		cp1, cp2 := a1.Flush(), a2.Flush()
		if cp1.AppliedSeq != cp2.AppliedSeq || cp1.ReplayFrom != cp2.ReplayFrom || cp1.ExpiredBefore != cp2.ExpiredBefore || len(cp2.Windows) != 0 {
			t.Errorf("event %d: checkpoint after load %+v, want %+v", p, cp2, cp1)
		}
		after1, _ := wl.run(a1, wl.events[p+1:])
		after2, _ := wl.run(a2, wl.events[p+1:])
		if got, want := canonical(after2), canonical(after1); !maps.Equal(got, want) {
			t.Errorf("event %d: windows after the load differ", p)
			diffLines(t, "edges", edgeLines(after2), edgeLines(after1))
			return
		}
		if st1, st2 := a1.Stats(), a2.Stats(); st1 != st2 {
			t.Errorf("event %d: stats at the end %+v, want %+v", p, st2, st1)
		}
	}
	if held == 0 {
		t.Error("no save point with pairing state held")
	}
}

// TestStateRefused checks that LoadState refuses, leaving the aggregator
// as it was, a state of other options, a truncated or altered one, and a
// load into an aggregator in use.
func TestStateRefused(t *testing.T) {
	wl := genWorkload(t, 3, 80)
	a := New(testOptions())
	wl.run(a, wl.events[:len(wl.events)/2])
	a.Flush()
	state, err := a.AppendState(nil)
	if err != nil {
		t.Fatal(err)
	}
	other := testOptions()
	other.PairWait *= 2
	if err := New(other).LoadState(state); !errors.Is(err, ErrStateMismatch) {
		t.Errorf("other pair wait: %v, want ErrStateMismatch", err)
	}
	for _, n := range []int{0, 7, len(state) / 3, len(state) - 1} {
		b := New(testOptions())
		if err := b.LoadState(state[:n]); err == nil {
			t.Errorf("truncated to %d bytes: loaded", n)
		}
		if st := b.Stats(); st != (Stats{}) {
			t.Errorf("truncated to %d bytes: stats changed to %+v", n, st)
		}
	}
	if err := New(testOptions()).LoadState(append(state[:len(state):len(state)], 0)); err == nil {
		t.Error("a byte after the end: loaded")
	}
	if err := a.LoadState(state); err == nil {
		t.Error("load into an aggregator in use: loaded")
	}
	a.Apply(a.applied+1, a.lastCommit, traces(t, feClient))
	if _, err := a.AppendState(nil); err == nil {
		t.Error("save with unflushed windows: saved")
	}
}

// FuzzLoadState checks that no input makes LoadState panic, and that a
// state it accepts can be used and saved again.
func FuzzLoadState(f *testing.F) {
	// A small parent table: New clears it for every input.
	opts := testOptions()
	opts.MaxPending = 4096
	for seed := range uint64(3) {
		wl := genWorkload(f, seed, 40)
		a := New(opts)
		wl.run(a, wl.events[:len(wl.events)/2])
		a.Flush()
		state, err := a.AppendState(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(state)
	}
	wl := genWorkload(f, 9, 20)
	f.Fuzz(func(t *testing.T, b []byte) {
		a := New(opts)
		if err := a.LoadState(b); err != nil {
			return
		}
		a.Expire(a.lastCommit)
		for seq := range uint64(len(wl.chunks)) {
			a.Apply(a.applied+1, max(a.lastCommit, wl.commits[seq]), wl.chunks[seq])
		}
		a.Live(math.MinInt64, math.MaxInt64)
		a.Expire(a.lastCommit + int64(a.pairWait)*3)
		a.Flush()
		if _, err := a.AppendState(nil); err != nil {
			t.Fatal(err)
		}
	})
}
