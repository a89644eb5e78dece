package store

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/logtest"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestAggStateRestart checks the aggregator's state file across restarts:
// client halves held at a clean stop pair with server halves sent after
// the start, with the state loaded from the file (and the file removed)
// instead of replayed; after a crash, a damaged file, or a stale file of
// an earlier stop, the chunks are replayed and the answer is the same.
func TestAggStateRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		// restart stops db and returns the directory's next DB; it may
		// tamper with the state file in between.
		restart  func(t *testing.T, db *DB, dir string) *DB
		loaded   bool
		wantFile bool // a state file is left after the restart
	}{
		{"clean", func(t *testing.T, db *DB, dir string) *DB {
			closeDB(t, db)
			if _, err := os.Stat(filepath.Join(dir, AggStateFileName)); err != nil {
				t.Fatalf("no state file after a clean stop: %v", err)
			}
			return nil
		}, true, false},
		{"crash", func(t *testing.T, db *DB, dir string) *DB { crash(db); return nil }, false, false},
		{"damaged", func(t *testing.T, db *DB, dir string) *DB {
			closeDB(t, db)
			path := filepath.Join(dir, AggStateFileName)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x40
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false, false},
		{"stale", func(t *testing.T, db *DB, dir string) *DB {
			// A state file of an earlier clean stop, then more traffic and
			// a crash: the file is not the store's checkpoint's.
			closeDB(t, db)
			path := filepath.Join(dir, AggStateFileName)
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			db2 := openWithLog(t, dir, nil)
			writeReq(t, db2, otlptest.NewMesh(10, 30, t0, 99).Minute(3), 0)
			// Flush as the rollup loop would: after the state is loaded
			// and the write applied (a flush before that would write the
			// checkpoint of an empty aggregator).
			if err := db2.awaitAggregation(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := db2.flushRollups(false); err != nil {
				t.Fatal(err)
			}
			crash(db2)
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var log logtest.Buffer
			db := openWithLog(t, dir, &log)
			mesh := otlptest.NewMesh(10, 30, t0, 1)
			calls := mesh.Minute(0)
			// Every client half and the first half of the server halves.
			writeReq(t, db, calls, 0)
			writeReq(t, db, calls[:len(calls)/2], 1)
			tc.restart(t, db, dir)
			log = logtest.Buffer{}
			db = openWithLog(t, dir, &log)
			writeReq(t, db, calls[len(calls)/2:], 1)
			g, err := db.FlowGraph(context.Background(), t0, t0.Add(2*time.Minute), aggregate.GraphQuery{Level: aggregate.LevelService})
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, e := range g.Edges {
				if e.Source == "" || strings.HasPrefix(e.Target, "unknown") {
					t.Errorf("edge %s -> %s", e.Source, e.Target)
				}
				n += e.Calls.Count
			}
			if n != int64(len(calls)) || len(g.Edges) != len(calls) {
				t.Errorf("%d edges with %d calls, want %d calls each on its edge", len(g.Edges), n, len(calls))
			}
			if got := strings.Contains(log.String(), "loaded the aggregator's state"); got != tc.loaded {
				t.Errorf("state loaded: %v, want %v; log:\n%s", got, tc.loaded, log.String())
			}
			if _, err := os.Stat(filepath.Join(dir, AggStateFileName)); (err == nil) != tc.wantFile {
				t.Errorf("state file after the start: %v, want present %v", err, tc.wantFile)
			}
			if st := db.agg.Stats(); st.UnpairedServers != 0 {
				t.Errorf("%d unpaired servers", st.UnpairedServers)
			}
		})
	}
}

func openWithLog(t *testing.T, dir string, log *logtest.Buffer) *DB {
	t.Helper()
	now := t0.Add(30 * time.Second)
	opts := Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour, RollupFlushInterval: time.Hour,
		Now: func() time.Time { return now }}
	if log != nil {
		opts.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	db, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func closeDB(t *testing.T, db *DB) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeReq writes side half (0 client, 1 server) of calls in one request.
func writeReq(t *testing.T, db *DB, calls [][2]*tracepb.ResourceSpans, side int) {
	t.Helper()
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, c := range calls {
		req.ResourceSpans = append(req.ResourceSpans, c[side])
	}
	raw, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := db.WriteTraces(context.Background(), raw); err != nil || res.Rejected != 0 {
		t.Fatalf("write: %v %+v", err, res)
	}
}
