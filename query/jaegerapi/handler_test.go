package jaegerapi

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// testNow is the handler's clock in tests: an hour after the fixture's
// spans (testdata/traces.otlp.json, from 2025-06-01T11:00:00Z).
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fixtureBytes reads testdata/traces.otlp.json.
func fixtureBytes(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "traces.otlp.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture decodes testdata/traces.otlp.json.
func fixture(t testing.TB) *tracepb.TracesData {
	t.Helper()
	td, err := otlpjson.UnmarshalTracesData(fixtureBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	return td
}

// fixtureStore opens a store in a temporary directory holding the
// fixture's spans.
func fixtureStore(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(t.TempDir(), store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	req, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: fixture(t).ResourceSpans})
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.WriteTraces(context.Background(), req)
	if err != nil || res.Rejected != 0 {
		t.Fatalf("write fixture: %v %+v", err, res)
	}
	return db
}

func newTestHandler(st Store) http.Handler {
	return NewHandler(Options{Store: st, Now: func() time.Time { return testNow }})
}

// serve sends one request to h.
func serve(h http.Handler, method, target, body string) *http.Response {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, r))
	return w.Result()
}

// checkGolden compares got with testdata/golden/name, or writes it under
// -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./query/jaegerapi -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./query/jaegerapi -update and review the diff):\ngot:\n%s", path, got)
	}
}

// answerText is an answer as a golden file holds it: status and
// Content-Type, then the body indented (json.Indent only adds
// whitespace: every token is as sent).
func answerText(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.WriteString(resp.Status + " " + resp.Header.Get("Content-Type") + "\n")
	if err := json.Indent(&out, body, "", "  "); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	out.WriteString("\n")
	return out.Bytes()
}

// TestHandlerGolden pins every endpoint's answer on the fixture (a real
// store) to testdata/golden/http-*.txt.
func TestHandlerGolden(t *testing.T) {
	h := newTestHandler(fixtureStore(t))
	us := func(s string) string {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(ts.UnixMicro(), 10)
	}
	for _, tc := range []struct {
		name, method, target, body string
	}{
		{name: "services", target: "/api/services"},
		{name: "operations-legacy", target: "/api/services/frontend/operations"},
		{name: "operations-legacy-unknown", target: "/api/services/nope/operations"},
		{name: "operations", target: "/api/operations?service=frontend"},
		{name: "operations-kind", target: "/api/operations?service=cart&spanKind=server"},
		{name: "operations-missing-service-name", target: "/api/operations?service=missing-service-name"},
		{name: "trace", target: "/api/traces/4bf92f3577b34da6a3ce929d0e0e4736"},
		{name: "trace-raw", target: "/api/traces/4bf92f3577b34da6a3ce929d0e0e4736?raw=true"},
		{name: "trace-64bit", target: "/api/traces/c0ffee"},
		{name: "trace-shared-span-id", target: "/api/traces/beef"},
		{name: "trace-orphans", target: "/api/traces/dead"},
		{name: "trace-pretty", target: "/api/traces/c0ffee?prettyPrint=true"},
		{name: "search-service", target: "/api/traces?service=frontend"},
		{name: "search-limit", target: "/api/traces?service=frontend&limit=1"},
		{name: "search-operation-duration", target: "/api/traces?service=frontend&operation=GET+/item&minDuration=20ms"},
		{name: "search-window", target: "/api/traces?service=frontend&start=" + us("2025-06-01T11:00:30Z") + "&end=" + us("2025-06-01T11:01:00.5Z")},
		{name: "search-tags", target: `/api/traces?service=frontend&tags={"http.method":"GET","cached":"true"}&tag=team:["web","sre"]`},
		{name: "search-tag-event", target: "/api/traces?service=frontend&tag=event:cache+miss"},
		{name: "search-tag-kind", target: "/api/traces?service=worker&tag=span.kind:consumer&tag=error:true"},
		{name: "search-empty-service-name", target: "/api/traces?service=empty-service-name"},
		{name: "search-ids", target: "/api/traces?traceID=c0ffee&traceID=0000000000000000000000000000abcd"},
		{name: "search-none", target: "/api/traces?service=frontend&tag=http.method:PUT"},
		{name: "dependencies", target: "/api/dependencies?endTs=" + strconv.FormatInt(testNow.UnixMilli(), 10) + "&lookback=7200000"},
		{name: "dependencies-service", target: "/api/dependencies?service=worker"},
		{name: "transform", method: http.MethodPost, target: "/api/transform",
			body: `{"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[{"traceId":"0000000000000000000000000000abcd","spanId":"00000000000000a1","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"1"}]}]}]}`},
		{name: "transform-fixture", method: http.MethodPost, target: "/api/transform", body: string(fixtureBytes(t))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			checkGolden(t, "http-"+tc.name+".txt", answerText(t, serve(h, method, tc.target, tc.body)))
		})
	}
}
