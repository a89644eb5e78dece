package zipkinapi

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/ingest/zipkin"
	"github.com/flowscope/flowscope/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// t0 is the clock of the test store and handler: the data in testdata
// lies in the 10 minutes before it (and one span two days before).
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// t0ms is t0 in Unix milliseconds.
var t0ms = t0.UnixMilli()

// newTestDB opens a store on a fixed clock holding testdata/zipkin_v2.json
// (through the Zipkin receiver's conversion) and testdata/otlp.json.
func newTestDB(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.Options{
		CheckpointInterval: time.Hour, RetentionInterval: time.Hour, Retention: 365 * 24 * time.Hour,
		Now: func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	writeZipkin(t, db, zipkin.V2, readFile(t, "testdata/zipkin_v2.json"))
	req, err := otlpjson.UnmarshalTraces(readFile(t, "testdata/otlp.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	writeOTLP(t, db, b)
	return db
}

// writeZipkin stores Zipkin JSON as our Zipkin receiver converts it.
func writeZipkin(t testing.TB, db *store.DB, v zipkin.Version, body []byte) {
	t.Helper()
	req, _, err := zipkin.ConvertAll(body, v)
	if err != nil {
		t.Fatal(err)
	}
	writeOTLP(t, db, req)
}

func writeOTLP(t testing.TB, db *store.DB, req []byte) {
	t.Helper()
	res, err := db.WriteTraces(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 0 {
		t.Fatalf("store rejected spans: %+v", res)
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTestHandler returns the handler on db with the fixed clock, logging
// to the test log.
func newTestHandler(t testing.TB, s Store) http.Handler {
	return NewHandler(Options{Store: s, Now: func() time.Time { return t0 },
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// response is an answer of the handler.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t testing.TB, h http.Handler, method, target string) response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return response{rec.Code, rec.Result().Header, body}
}

func get(t testing.TB, h http.Handler, target string) response {
	t.Helper()
	return do(t, h, http.MethodGet, target)
}

// checkGolden compares got with testdata/golden/name, or rewrites it with
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot  %s\nwant %s", name, got, want)
	}
}
