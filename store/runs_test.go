package store

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestSortRunEntries checks the bucketed sort against a plain comparison
// sort, for random IDs, IDs whose first half is constant (padded 64-bit
// IDs), a single bucket, duplicates and small inputs.
func TestSortRunEntries(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gen := func(n int, id func(i int) TraceID) []runEntry {
		e := make([]runEntry, n)
		for i := range e {
			e[i] = runEntry{id: id(i), seq: r.Uint64N(50)}
		}
		return e
	}
	random := func(int) TraceID {
		var id TraceID
		binary.BigEndian.PutUint64(id[:8], r.Uint64())
		binary.BigEndian.PutUint64(id[8:], r.Uint64())
		return id
	}
	padded := func(int) TraceID {
		var id TraceID
		binary.BigEndian.PutUint64(id[8:], r.Uint64())
		return id
	}
	sameTop := func(int) TraceID {
		var id TraceID
		binary.BigEndian.PutUint64(id[:8], 7<<48|r.Uint64N(1000))
		binary.BigEndian.PutUint64(id[8:], r.Uint64N(1000))
		return id
	}
	for _, tc := range []struct {
		name    string
		entries []runEntry
	}{
		{"empty", nil},
		{"small", gen(100, random)},
		{"random", gen(100_000, random)},
		{"padded 64-bit IDs", gen(50_000, padded)},
		{"one bucket", gen(20_000, sameTop)},
		{"duplicates", func() []runEntry {
			e := gen(10_000, func(i int) TraceID { return TraceID{byte(i % 7), byte(i % 3)} })
			return append(e, e...)
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := slices.Clone(tc.entries)
			slices.SortFunc(want, compareRunEntries)
			want = slices.Compact(want)
			got := sortRunEntries(slices.Clone(tc.entries))
			if !slices.Equal(got, want) {
				t.Fatalf("got %d entries, want %d, or a different order", len(got), len(want))
			}
		})
	}
}

// TestRunStepsAndMerge writes runs in bounded steps, merges them and checks
// that every entry is found, that the merged-away runs' pages are gone,
// and that pages left by an interrupted write are swept.
func TestRunStepsAndMerge(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	r := rand.New(rand.NewPCG(3, 4))
	var all []runEntry
	// runFanIn runs of more than runStepBytes each, so that both the
	// writes and the page deletions take several transactions.
	perRun := 3 * runStepBytes / runEntrySize
	for i := range runFanIn {
		first := uint64(i*1000 + 1)
		entries := make([]runEntry, perRun)
		for j := range entries {
			binary.BigEndian.PutUint64(entries[j].id[:8], r.Uint64())
			binary.BigEndian.PutUint64(entries[j].id[8:], r.Uint64())
			entries[j].seq = first + uint64(j%1000)
		}
		all = append(all, entries...)
		b := buildRun(0, first, first+999, slices.Clone(entries))
		_, err := db.putRunSteps(b, func(tx *bolt.Tx, ri runInfo) error {
			db.runs = append(db.runs, ri)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// An interrupted write: pages under an allocated ID, no header.
	var orphan uint64
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		var err error
		if orphan, err = nextRunID(tx); err != nil {
			return err
		}
		return buildRun(0, 1, 2, []runEntry{{id: TraceID{1}, seq: 1}}).putPages(tx, orphan, 0, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	old := db.catalogRuns()
	if len(old) != runFanIn {
		t.Fatalf("%d runs, want %d", len(old), runFanIn)
	}
	if err := db.mergeRuns(); err != nil {
		t.Fatal(err)
	}
	runs := db.catalogRuns()
	if len(runs) != 1 || runs[0].level != 1 || runs[0].entries != uint64(len(all)) {
		t.Fatalf("after the merge: %+v, want one level-1 run of %d entries", runs, len(all))
	}
	err = db.bolt.View(func(tx *bolt.Tx) error {
		for _, ri := range append(old, runInfo{id: orphan}) {
			if k, _ := tx.Bucket(bucketRunPages).Cursor().Seek(u64(ri.id)); k != nil && bytes.HasPrefix(k, u64(ri.id)) {
				t.Errorf("pages of run %d are left", ri.id)
			}
			if tx.Bucket(bucketRuns).Get(u64(ri.id)) != nil {
				t.Errorf("header of run %d is left", ri.id)
			}
		}
		for i := 0; i < len(all); i += 997 {
			e := all[i]
			if got := lookupRun(tx, runs[0], e.id); !slices.Contains(got, e.seq) {
				t.Fatalf("entry %d: lookup %x gave %v, want %d among them", i, e.id, got, e.seq)
			}
		}
		if got := readRun(tx, runs[0]); len(got) != len(all) {
			t.Errorf("merged run reads %d entries, want %d", len(got), len(all))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
