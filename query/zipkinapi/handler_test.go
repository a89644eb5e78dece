package zipkinapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// Trace IDs of testdata, as the API writes them.
const (
	traceA = "463ac35c9f6413ad"                 // zipkin v2: frontend → backend (shared) → mysql
	traceB = "5b8efff798038103d269b633813fc60c" // zipkin v2: Orders → kafka → billing
	traceC = "c000000000000001"                 // zipkin v2: a 128-bit ID with zero high bits
	traceD = "d000000000000001"                 // zipkin v2: two days old
	traceE = "e0000000000000000000000000000001" // OTLP
)

// TestGolden pins every endpoint's answer (status, content type, body).
func TestGolden(t *testing.T) {
	h := newTestHandler(t, newTestDB(t))
	for _, tt := range []struct {
		name, target string
		code         int
	}{
		{"services.json", "/api/v2/services", 200},
		{"spans_backend.json", "/api/v2/spans?serviceName=backend", 200},
		{"spans_backend_client.json", "/api/v2/spans?serviceName=BACKEND&spanKind=Client", 200},
		{"spans_orders.json", "/api/v2/spans?serviceName=orders", 200},
		{"remote_backend.json", "/api/v2/remoteServices?serviceName=backend", 200},
		{"remote_checkout.json", "/api/v2/remoteServices?serviceName=checkout-api", 200},
		{"trace_a.json", "/api/v2/trace/" + traceA, 200},
		{"trace_b.json", "/api/v2/trace/" + traceB, 200},
		{"trace_c.json", "/api/v2/trace/0000000000000000" + traceC, 200},
		{"trace_e.json", "/api/v2/trace/" + traceE, 200},
		{"traces_default.json", "/api/v2/traces", 200},
		{"traces_backend_limit1.json", "/api/v2/traces?serviceName=backend&limit=1", 200},
		{"tracemany.json", "/api/v2/traceMany?traceIds=" + traceB + "," + traceC + ",00000000000000000000000000000abc", 200},
		{"dependencies.json", fmt.Sprintf("/api/v2/dependencies?endTs=%d&lookback=86400000", t0ms), 200},
		{"autocompletekeys.json", "/api/v2/autocompleteKeys", 200},
		{"empty_spans.json", "/api/v2/spans?serviceName=", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, h, tt.target)
			if r.code != tt.code {
				t.Fatalf("GET %s: %d %s", tt.target, r.code, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cl := r.header.Get("Content-Length"); cl != fmt.Sprint(len(r.body)) {
				t.Errorf("Content-Length %q for %d bytes", cl, len(r.body))
			}
			checkGolden(t, tt.name, r.body)
		})
	}
}

// TestBadInput checks Zipkin's status codes and messages for bad
// requests, and 404 for unknown traces and paths.
func TestBadInput(t *testing.T) {
	h := newTestHandler(t, newTestDB(t))
	for _, tt := range []struct {
		target string
		code   int
		msg    string
	}{
		{"/api/v2/traces?limit=abc", 400, `For input string: "abc"`},
		{"/api/v2/traces?limit=3000000000", 400, `For input string: "3000000000"`},
		{"/api/v2/traces?limit=1.5", 400, `For input string: "1.5"`},
		{"/api/v2/traces?limit=0", 400, "limit <= 0"},
		{"/api/v2/traces?limit=-5", 400, "limit <= 0"},
		{"/api/v2/traces?minDuration=", 400, `For input string: ""`},
		{"/api/v2/traces?minDuration=0x10", 400, `For input string: "0x10"`},
		{"/api/v2/traces?maxDuration=99999999999999999999", 400, `For input string: "99999999999999999999"`},
		{"/api/v2/traces?minDuration=0", 400, "minDuration <= 0"},
		{"/api/v2/traces?maxDuration=5", 400, "maxDuration is only valid with minDuration"},
		{"/api/v2/traces?minDuration=10&maxDuration=5", 400, "maxDuration < minDuration"},
		{"/api/v2/traces?endTs=0", 400, "endTs <= 0"},
		{"/api/v2/traces?endTs=tomorrow", 400, `For input string: "tomorrow"`},
		{"/api/v2/traces?lookback=-1", 400, "lookback <= 0"},
		// the first problem in Zipkin's order wins
		{"/api/v2/traces?limit=x&minDuration=y", 400, `For input string: "y"`},
		{"/api/v2/traces?limit=0&endTs=0", 400, "endTs <= 0"},
		{"/api/v2/spans", 400, "Mandatory parameter/header is missing: serviceName"},
		{"/api/v2/spans?serviceName=backend&spanKind=sideways", 400, `spanKind must be one of client, server, producer, consumer, got "sideways"`},
		{"/api/v2/remoteServices", 400, "Mandatory parameter/header is missing: serviceName"},
		{"/api/v2/trace/xyz", 400, "xyz should be lower-hex encoded with no prefix"},
		{"/api/v2/trace/0x463ac35c9f6413ad", 400, "0x463ac35c9f6413ad should be lower-hex encoded with no prefix"},
		{"/api/v2/trace/" + strings.Repeat("0", 32), 400, "traceId is all zeros"},
		{"/api/v2/trace/" + strings.Repeat("a", 33), 400, "traceId.length > 32"},
		{"/api/v2/trace/abc", 404, "0000000000000abc not found"},
		{"/api/v2/trace/5b8efff798038103", 404, "5b8efff798038103 not found"},
		{"/api/v2/trace/" + traceA + "0", 404, hexID(traceA+"0").PadLeft32() + " not found"},
		{"/api/v2/traceMany", 400, "Mandatory parameter/header is missing: traceIds"},
		{"/api/v2/traceMany?traceIds=", 400, "traceIds parameter is empty"},
		{"/api/v2/traceMany?traceIds=" + traceA, 400, "Use /api/v2/trace/{traceId} endpoint to retrieve a single trace"},
		{"/api/v2/traceMany?traceIds=" + traceA + ",0000000000000000" + traceA, 400, "redundant traceId: 0000000000000000" + traceA},
		{"/api/v2/traceMany?traceIds=" + traceA + ",zz", 400, "zz should be lower-hex encoded with no prefix"},
		{"/api/v2/traceMany?traceIds=" + traceA + ",," + traceB, 400, "traceId is empty"},
		{"/api/v2/traceMany?traceIds=" + manyIDs(1001), 400, "3e8,3e9 should be lower-hex encoded with no prefix"},
		{"/api/v2/dependencies", 400, "Mandatory parameter/header is missing: endTs"},
		{"/api/v2/dependencies?endTs=-1", 400, "endTs <= 0"},
		{"/api/v2/dependencies?endTs=1&lookback=0", 400, "lookback <= 0"},
		{"/api/v2/dependencies?endTs=1&lookback=x", 400, `For input string: "x"`},
		{"/api/v2/autocompleteValues", 400, "Mandatory parameter/header is missing: key"},
		{"/api/v2/autocompleteValues?key=", 400, "key was empty"},
		{"/api/v2/nope", 404, "Not Found"},
		{"/api/v2/trace/", 404, "Not Found"},
		{"/api/v2/trace/" + traceA + "/x", 404, "Not Found"},
		{"/api/v1/services", 404, "Not Found"},
		{"/api/v2/services/", 404, "Not Found"},
	} {
		t.Run(fmt.Sprintf("%.80s", tt.target), func(t *testing.T) {
			r := get(t, h, tt.target)
			if r.code != tt.code || string(r.body) != tt.msg {
				t.Errorf("GET %s: %d %q, want %d %q", tt.target, r.code, r.body, tt.code, tt.msg)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// manyIDs returns n distinct trace IDs (1, 2, … in hex), comma-separated.
func manyIDs(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%x", i+1)
	}
	return strings.Join(ids, ",")
}

// PadLeft32 left-pads a hex ID of 17 to 31 digits to 32, as Zipkin
// normalizes it.
type hexID string

func (s hexID) PadLeft32() string { return strings.Repeat("0", 32-len(s)) + string(s) }

// TestMethods checks HEAD, OPTIONS, the 405s and the /zipkin prefix.
func TestMethods(t *testing.T) {
	h := newTestHandler(t, newTestDB(t))
	svcs := get(t, h, "/api/v2/services")
	head := do(t, h, http.MethodHead, "/api/v2/services")
	if head.code != 200 || head.header.Get("Content-Length") != svcs.header.Get("Content-Length") ||
		head.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("HEAD: %d %v, want GET's headers %v", head.code, head.header, svcs.header)
	}
	opt := do(t, h, http.MethodOptions, "/api/v2/traces")
	if opt.code != 200 || opt.header.Get("Allow") != "GET, HEAD, OPTIONS" || len(opt.body) != 0 {
		t.Errorf("OPTIONS: %d %v %q", opt.code, opt.header, opt.body)
	}
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodPost} {
		r := do(t, h, m, "/api/v2/services")
		if r.code != 405 || r.header.Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("%s: %d %v", m, r.code, r.header)
		}
	}
	if r := do(t, h, http.MethodTrace, "/anything"); r.code != 405 {
		t.Errorf("TRACE: %d", r.code)
	}
	if r := do(t, h, http.MethodPut, "/nothing/here"); r.code != 404 {
		t.Errorf("PUT on an unknown path: %d", r.code)
	}
	if r := get(t, h, "/zipkin/api/v2/services"); r.code != 200 || string(r.body) != string(svcs.body) {
		t.Errorf("/zipkin/api/v2/services: %d %s", r.code, r.body)
	}
}

// TestNamesCacheControl checks Zipkin's Cache-Control on name lists: none
// until /services has seen more than three services.
func TestNamesCacheControl(t *testing.T) {
	h := newTestHandler(t, newTestDB(t))
	if cc := get(t, h, "/api/v2/spans?serviceName=backend").header.Get("Cache-Control"); cc != "" {
		t.Errorf("before /services: Cache-Control %q", cc)
	}
	if cc := get(t, h, "/api/v2/services").header.Get("Cache-Control"); cc != "max-age=300, must-revalidate" {
		t.Errorf("/services: Cache-Control %q", cc)
	}
	for _, p := range []string{"/api/v2/spans?serviceName=backend", "/api/v2/remoteServices?serviceName=backend", "/api/v2/autocompleteKeys"} {
		if cc := get(t, h, p).header.Get("Cache-Control"); cc != "max-age=300, must-revalidate" {
			t.Errorf("%s: Cache-Control %q", p, cc)
		}
	}
	if cc := get(t, h, "/api/v2/traces").header.Get("Cache-Control"); cc != "" {
		t.Errorf("/traces: Cache-Control %q", cc)
	}
}

// failingStore fails every call.
type failingStore struct{ err error }

func (f failingStore) FindTraces(context.Context, store.TraceQuery) ([]store.TraceSummary, error) {
	return nil, f.err
}
func (f failingStore) Trace(context.Context, store.TraceID) (*tracepb.TracesData, error) {
	return nil, f.err
}
func (f failingStore) Services(context.Context, time.Time, time.Time) ([]store.ServiceStats, error) {
	return nil, f.err
}
func (f failingStore) Operations(context.Context, string) ([]store.Operation, error) {
	return nil, f.err
}
func (f failingStore) FlowGraph(context.Context, time.Time, time.Time, aggregate.GraphQuery) (*aggregate.Graph, error) {
	return nil, f.err
}

// TestStoreFailure checks that a failing store gives 500 with the error,
// as Zipkin answers a storage exception, and 503 when the store is warming
// up or closed (a client should retry).
func TestStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New("disk on fire"), 500},
		{fmt.Errorf("%w: re-indexing chunks 1 to 9", store.ErrWarmingUp), 503},
		{store.ErrClosed, 503},
	} {
		h := newTestHandler(t, failingStore{tc.err})
		for _, target := range []string{
			"/api/v2/services", "/api/v2/spans?serviceName=a", "/api/v2/remoteServices?serviceName=a",
			"/api/v2/traces", "/api/v2/traces?serviceName=a", "/api/v2/trace/" + traceA,
			"/api/v2/traceMany?traceIds=" + traceA + "," + traceB, "/api/v2/dependencies?endTs=1",
		} {
			r := get(t, h, target)
			if r.code != tc.code || !strings.Contains(string(r.body), tc.err.Error()) {
				t.Errorf("GET %s with %q: %d %q, want %d with the error", target, tc.err, r.code, r.body, tc.code)
			}
		}
		// Bad input is judged before the store is asked.
		if r := get(t, h, "/api/v2/traces?limit=0"); r.code != 400 {
			t.Errorf("bad input with a failing store: %d", r.code)
		}
	}
}
