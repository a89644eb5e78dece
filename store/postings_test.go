package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// downgradeToV3 rewrites a closed store file as schema 3 wrote it: every
// segment's postings in bucket terms under termKey, bucket postings empty
// and no postings_from.
func downgradeToV3(t *testing.T, dir string) {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(func(tx *bolt.Tx) error {
		pb, tb := tx.Bucket(bucketPostings), tx.Bucket(bucketTerms)
		var keys [][]byte
		err := pb.ForEach(func(k, v []byte) error {
			if err := tb.Put(termKey(nil, string(k[8:]), binary.BigEndian.Uint64(k)), bytes.Clone(v)); err != nil {
				return err
			}
			keys = append(keys, bytes.Clone(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := pb.Delete(k); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Delete(keyPostingsFrom); err != nil {
			return err
		}
		return meta.Put(keySchema, u64(3))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bucketKeys counts the keys of a bucket.
func bucketKeys(t *testing.T, db *DB, name []byte) int {
	t.Helper()
	n := 0
	db.bolt.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(name).Stats().KeyN
		return nil
	})
	return n
}

// TestPostingsLayoutAndUpgrade checks the segment-major postings of schema
// 4: a checkpoint appends them to bucket postings; a schema-3 file keeps
// its older segments' postings in bucket terms, which searches still read
// after the upgrade, next to the new segments' postings; retention removes
// the postings of expired segments from both buckets.
func TestPostingsLayoutAndUpgrade(t *testing.T) {
	dir := t.TempDir()
	now := t0
	db := openTest(t, dir, &now)
	old := otlptest.Generate(otlptest.Options{Traces: 12, Services: 3, SpansPerTrace: 2, Start: t0.Add(-time.Hour)})
	writeDataset(t, db, old, 4)
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if n := bucketKeys(t, db, bucketPostings); n == 0 || bucketKeys(t, db, bucketTerms) != 0 {
		t.Fatalf("after a checkpoint: %d postings keys, %d terms keys; want some and none", n, bucketKeys(t, db, bucketTerms))
	}
	// Keys are segment-major: every key starts with the segment's key.
	db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPostings).ForEach(func(k, _ []byte) error {
			if seg := binary.BigEndian.Uint64(k); seg != db.segs[0].lastSeq {
				t.Errorf("postings key %q has segment %d, want %d", k, seg, db.segs[0].lastSeq)
			}
			return nil
		})
	})
	ckpt := db.segs[len(db.segs)-1].lastSeq
	base, err := db.FindTraces(context.Background(), TraceQuery{Service: "svc-00", Limit: 1000})
	if err != nil || len(base) == 0 {
		t.Fatalf("search before the downgrade: %d traces, %v", len(base), err)
	}
	n := len(base)
	db.Close()
	downgradeToV3(t, dir)

	db = openTest(t, dir, &now)
	if db.postingsFrom != ckpt+1 {
		t.Fatalf("postings_from after the upgrade: %d, want %d", db.postingsFrom, ckpt+1)
	}
	search := func(phase, svc string, want int) {
		t.Helper()
		got, err := db.FindTraces(context.Background(), TraceQuery{Service: svc, Limit: 1000})
		if err != nil || len(got) != want {
			t.Fatalf("%s: search %s: %d traces (%v), want %d", phase, svc, len(got), err, want)
		}
	}
	search("upgraded", "svc-00", n)
	now = t0.Add(8 * 24 * time.Hour)
	fresh := otlptest.Generate(otlptest.Options{Traces: 12, Services: 3, SpansPerTrace: 2, Start: now, Seed: 9})
	writeDataset(t, db, fresh, 4)
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	search("both layouts", "svc-00", 2*n)
	if bucketKeys(t, db, bucketTerms) == 0 || bucketKeys(t, db, bucketPostings) == 0 {
		t.Fatal("want postings in both buckets")
	}
	// The old segment expires: its terms go, the new postings stay.
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if n := bucketKeys(t, db, bucketTerms); n != 0 {
		t.Errorf("%d terms keys left after the old segment expired", n)
	}
	search("after retention", "svc-00", n)
	before := bucketKeys(t, db, bucketPostings)
	now = now.Add(8 * 24 * time.Hour)
	if err := db.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if n := bucketKeys(t, db, bucketPostings); n != 0 || before == 0 {
		t.Errorf("postings keys: %d before the last segment expired, %d after; want some, then none", before, n)
	}
}

// TestPostingsSweep checks that postings written by a checkpoint that did
// not finish (a crash between the postings and the segment record) are
// removed on open, and that a retried checkpoint of the same chunks
// leaves exactly its own postings.
func TestPostingsSweep(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, nil)
	ds := otlptest.Generate(otlptest.Options{Traces: 10, Services: 2, SpansPerTrace: 2, Start: t0})
	writeDataset(t, db, ds, 5)
	if err := db.checkpoint(); err != nil {
		t.Fatal(err)
	}
	good := bucketKeys(t, db, bucketPostings)
	// Orphans: postings of a segment after the checkpoint.
	orphan := db.segs[len(db.segs)-1].lastSeq + 7
	db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPostings)
		for _, term := range []string{"sfoo", "sbar"} {
			if err := b.Put(postingKey(nil, orphan, term), []byte{1}); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	db = openTest(t, dir, nil)
	if n := bucketKeys(t, db, bucketPostings); n != good {
		t.Fatalf("%d postings keys after reopening, want the %d of the persisted segment", n, good)
	}
	got, err := db.FindTraces(context.Background(), TraceQuery{Service: "svc-01", Limit: 100})
	if err != nil || len(got) == 0 {
		t.Fatalf("search after the sweep: %d traces, %v", len(got), err)
	}
}

// TestCheckpointBytes checks that the in-memory index is persisted early
// once its estimated memory passes Options.CheckpointBytes, long before
// CheckpointInterval and CheckpointSpans.
func TestCheckpointBytes(t *testing.T) {
	db, err := Open(t.TempDir(), Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour, CheckpointSpans: 1 << 30, CheckpointBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ds := otlptest.Generate(otlptest.Options{Traces: 400, Services: 4, SpansPerTrace: 3, Start: t0})
	writeDataset(t, db, ds, 20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.catMu.RLock()
		n := len(db.segs)
		db.catMu.RUnlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no segment persisted with a %d-byte index bound", 16<<10)
		}
		time.Sleep(10 * time.Millisecond)
	}
	got, err := db.FindTraces(context.Background(), TraceQuery{Limit: 1000})
	if err != nil || len(got) != 400 {
		t.Fatalf("search: %d traces, %v", len(got), err)
	}
}
