package store

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// noFreelist is bbolt's meta freelist page ID for "not written; rebuild
// it by walking the file" (common.PgidNoFreelist).
const noFreelist = ^uint64(0)

// metaFreelist reads the freelist page ID of the newest valid meta page
// of the bbolt file at path (bbolt's layout: a 16-byte page header, then
// magic, version, page size, flags, root bucket (16 bytes), freelist,
// high-water page and transaction ID).
func metaFreelist(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const magic = 0xED0CDAED
	pageSize := int(binary.LittleEndian.Uint32(b[16+8:]))
	var best, freelist uint64
	found := false
	for _, off := range []int{0, pageSize} {
		m := b[off+16:]
		if binary.LittleEndian.Uint32(m) != magic {
			continue
		}
		txid := binary.LittleEndian.Uint64(m[48:])
		if !found || txid > best {
			best, freelist, found = txid, binary.LittleEndian.Uint64(m[32:]), true
		}
	}
	if !found {
		t.Fatalf("%s: no meta page", path)
	}
	return freelist
}

// TestSyncFreelist checks Options.SyncFreelist: with it, the file left by
// a crash has its freelist written, so the next Open reads it instead of
// walking every page; without it, only a clean Close writes it. Either
// way the store reopens with every span.
func TestSyncFreelist(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sync  bool
		clean bool
		want  bool // freelist written
	}{
		{"crash, no sync", false, false, false},
		{"crash, sync", true, false, true},
		{"clean close, no sync", false, true, true},
		{"clean close, sync", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour, SyncFreelist: tc.sync}
			db, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			ds := otlptest.Generate(otlptest.Options{Traces: 300, Services: 5, SpansPerTrace: 4, Start: t0, Step: 10 * time.Millisecond})
			writeDataset(t, db, ds, 10)
			if tc.clean {
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(db)
			}
			got := metaFreelist(t, filepath.Join(dir, FileName)) != noFreelist
			if got != tc.want {
				t.Fatalf("freelist written: %v, want %v", got, tc.want)
			}
			db, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for i := 0; i < len(ds.Spans); i += 41 {
				var id TraceID
				copy(id[:], ds.Spans[i].Span.TraceId)
				if _, err := db.Trace(context.Background(), id); err != nil {
					t.Fatalf("trace %x after reopening: %v", id, err)
				}
			}
		})
	}
}
