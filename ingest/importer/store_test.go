package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest/storesink"

	"github.com/flowscope/flowscope/ingest/spigo"
	"github.com/flowscope/flowscope/store"
)

// openStore opens a store in a temporary directory.
func openStore(t testing.TB, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestImportIntoStore imports the spigo samples into a real store and
// reads them back.
func TestImportIntoStore(t *testing.T) {
	ctx := context.Background()
	db := openStore(t, t.TempDir())
	sink := storesink.New(db)
	rebase := time.Now().Add(-time.Minute).Truncate(time.Microsecond)

	sum, err := Import(ctx, fileInput(t, spigoDir+"json_metrics/lamp_flow.json"), sink, Options{Rebase: rebase})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rejected != 0 || !sum.End.Equal(rebase.UTC()) {
		t.Fatalf("summary %+v", sum)
	}
	// Every trace reads back whole: the roots' IDs are spigo's trace IDs,
	// stored under the IDs of this import (spigoids.go).
	if !sum.SpigoTraceIDs {
		t.Errorf("trace IDs not rewritten: %+v", sum)
	}
	roots := []string{}
	var total int
	var latest uint64
	for i := 1; i <= 100 && len(roots) < int(sum.Traces); i++ {
		td, err := db.Trace(ctx, spigoImportID(t, spigoDir+"json_metrics/lamp_flow.json", true, i))
		if err != nil {
			continue
		}
		roots = append(roots, spanIDHex(i))
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				total += len(ss.Spans)
				for _, sp := range ss.Spans {
					latest = max(latest, sp.EndTimeUnixNano)
				}
			}
		}
	}
	if len(roots) != int(sum.Traces) || int64(total) != sum.OTLPSpans {
		t.Errorf("read back %d traces (%v) with %d spans; want %d traces, %d spans", len(roots), roots, total, sum.Traces, sum.OTLPSpans)
	}
	if latest != uint64(rebase.UnixNano()) {
		t.Errorf("latest stored end %d, want %d", latest, rebase.UnixNano())
	}
	services, err := db.Services(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range services {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, sum.Services) {
		t.Errorf("store services %q, summary %q", names, sum.Services)
	}

	// The storage flow without rebase: 2016 times are stored as they are.
	sum2, err := Import(ctx, fileInput(t, spigoDir+"json_metrics/storage_flow.json"), sink, Options{})
	if err != nil || sum2.Rejected != 0 {
		t.Fatalf("storage flow: %v, %+v", err, sum2)
	}

	// An architecture and metrics.
	if _, err := Import(ctx, fileInput(t, spigoDir+"json/lamp.json"), sink, Options{}); err != nil {
		t.Fatal(err)
	}
	a, err := db.Architecture(ctx, "lamp")
	if err != nil || len(a.Nodes) != 23 || len(a.Edges) != 73 || a.Source != "spigo graph lamp.json" {
		t.Errorf("architecture %q: %d nodes, %d edges, %v", a.Name, len(a.Nodes), len(a.Edges), err)
	}
	msum, err := Import(ctx, fileInput(t, spigoDir+"json_metrics/lamp.guess"), sink, Options{})
	if err != nil || msum.Rejected != 0 {
		t.Fatalf("guess: %v, %+v", err, msum)
	}
	mnames, err := db.MetricNames(ctx, time.Time{}, time.Time{})
	if err != nil || len(mnames) != 1 || mnames[0].Name != spigo.MetricLatency {
		t.Errorf("metric names %+v, %v", mnames, err)
	}
}

// spigoImportID is the trace ID an import of the spigo flow file at path
// gives spigo's trace number i, as docs/import.md tells how to compute it.
func spigoImportID(t testing.TB, path string, rebased bool, i int) store.TraceID {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	file := sha256.Sum256(b)
	in := append(file[:], 0)
	if rebased {
		in[len(in)-1] = 1
	}
	var orig [16]byte
	hex.Decode(orig[8:], []byte(spanIDHex(i)))
	sum := sha256.Sum256(append(in, orig[:]...))
	return store.TraceID(sum[:16])
}

// spanIDHex is the hex span ID spigo writes for counter value i.
func spanIDHex(i int) string {
	b := []byte("0000000000000000")
	for k := len(b) - 1; i > 0; k-- {
		b[k] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

// TestStoreSinkClosed checks that a closed store is reported as
// unavailable, which Import retries until its context ends.
func TestStoreSinkClosed(t *testing.T) {
	db := openStore(t, t.TempDir())
	db.Close()
	err := storesink.New(db).PutArchitecture(context.Background(), store.Architecture{Name: "x"})
	if !retryable(err) || !errors.Is(err, store.ErrClosed) {
		t.Errorf("closed store: %v is not retryable", err)
	}
}
