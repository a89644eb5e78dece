package jaegerapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// fakeStore answers every query with nothing, or with err.
type fakeStore struct{ err error }

func (f fakeStore) FindTraces(context.Context, store.TraceQuery) ([]store.TraceSummary, error) {
	return nil, f.err
}

func (f fakeStore) Trace(context.Context, store.TraceID) (*tracepb.TracesData, error) {
	if f.err != nil {
		return nil, f.err
	}
	return nil, store.ErrNotFound
}

func (f fakeStore) Services(context.Context, time.Time, time.Time) ([]store.ServiceStats, error) {
	return nil, f.err
}

func (f fakeStore) Operations(context.Context, string) ([]store.Operation, error) { return nil, f.err }

func (f fakeStore) FlowGraph(context.Context, time.Time, time.Time, aggregate.GraphQuery) (*aggregate.Graph, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &aggregate.Graph{}, nil
}

// TestBadRequests checks the status and the exact error envelope of bad
// requests: Jaeger's codes and messages (internal/e2e/jaeger_test.go
// compares them with Jaeger's own).
func TestBadRequests(t *testing.T) {
	h := newTestHandler(fixtureStore(t))
	for _, tc := range []struct {
		method, target, body string
		status               int
		msg                  string // "" for answers without the envelope
	}{
		{target: "/api/traces", status: 400, msg: "parameter 'service' is required"},
		{target: "/api/traces?operation=x", status: 400, msg: "parameter 'service' is required"},
		{target: "/api/traces?service=frontend&limit=abc", status: 400, msg: `strconv.ParseInt: parsing "abc": invalid syntax`},
		{target: "/api/traces?service=frontend&limit=99999999999", status: 400, msg: `strconv.ParseInt: parsing "99999999999": value out of range`},
		{target: "/api/traces?service=frontend&limit=1e3", status: 400, msg: `strconv.ParseInt: parsing "1e3": invalid syntax`},
		{target: "/api/traces?service=frontend&start=abc", status: 400, msg: `unable to parse param 'start': strconv.ParseInt: parsing "abc": invalid syntax`},
		{target: "/api/traces?service=frontend&end=99999999999999999999", status: 400, msg: `unable to parse param 'end': strconv.ParseInt: parsing "99999999999999999999": value out of range`},
		{target: "/api/traces?service=frontend&minDuration=5", status: 400, msg: `unable to parse param 'minDuration': time: missing unit in duration "5"`},
		{target: "/api/traces?service=frontend&maxDuration=1x", status: 400, msg: `unable to parse param 'maxDuration': time: unknown unit "x" in duration "1x"`},
		{target: "/api/traces?service=frontend&minDuration=2s&maxDuration=1s", status: 400, msg: "'maxDuration' should be greater than 'minDuration'"},
		{target: "/api/traces?service=frontend&tag=novalue", status: 400, msg: "malformed 'tag' parameter, expecting key:value, received: novalue"},
		{target: "/api/traces?service=frontend&tags=%7Bbad", status: 400, msg: "malformed 'tags' parameter, cannot unmarshal JSON: invalid character 'b' looking for beginning of object key string"},
		{target: "/api/traces?service=frontend&tags=%7B%22a%22:1%7D", status: 400, msg: "malformed 'tags' parameter, cannot unmarshal JSON: json: cannot unmarshal number into Go value of type string"},
		{target: "/api/traces?traceID=xyz", status: 400, msg: `cannot parse traceID param: strconv.ParseUint: parsing "xyz": invalid syntax`},
		{target: "/api/traces?traceID=" + strings.Repeat("a", 33), status: 400, msg: "cannot parse traceID param: TraceID cannot be longer than 32 hex characters: " + strings.Repeat("a", 33)},
		{target: "/api/traces?traceID=&service=x", status: 400, msg: `cannot parse traceID param: strconv.ParseUint: parsing "": invalid syntax`},
		{target: "/api/traces?service=frontend&raw=maybe", status: 400, msg: `unable to parse param 'raw': strconv.ParseBool: parsing "maybe": invalid syntax`},
		{target: "/api/traces/xyz", status: 400, msg: `strconv.ParseUint: parsing "xyz": invalid syntax`},
		{target: "/api/traces/0x12", status: 400, msg: `strconv.ParseUint: parsing "0x12": invalid syntax`},
		{target: "/api/traces/%2B12", status: 400, msg: `strconv.ParseUint: parsing "%2B12": invalid syntax`},
		{target: "/api/traces/12345678901234567890123456789012z", status: 400, msg: "TraceID cannot be longer than 32 hex characters: 12345678901234567890123456789012z"},
		{target: "/api/traces/g0000000000000000", status: 400, msg: `strconv.ParseUint: parsing "g": invalid syntax`},
		{target: "/api/traces/ffffffffffffffff", status: 404, msg: "trace not found"},
		{target: "/api/traces/0", status: 404, msg: "trace not found"},
		{target: "/api/traces/c0ffee?raw=x", status: 400, msg: `unable to parse param 'raw': strconv.ParseBool: parsing "x": invalid syntax`},
		{target: "/api/traces/c0ffee?start=x", status: 400, msg: `unable to parse param 'start': strconv.ParseInt: parsing "x": invalid syntax`},
		{target: "/api/operations", status: 400, msg: "parameter 'service' is required"},
		{target: "/api/dependencies?endTs=x", status: 400, msg: `unable to parse param 'endTs': strconv.ParseInt: parsing "x": invalid syntax`},
		{target: "/api/dependencies?lookback=1h", status: 400, msg: `unable to parse param 'lookback': strconv.ParseInt: parsing "1h": invalid syntax`},
		{target: "/api/dependencies?lookback=-1", status: 400, msg: "end time must be greater than start time"},
		{method: http.MethodPost, target: "/api/transform", body: "{x", status: 400, msg: "cannot unmarshal OTLP : "},
		{method: http.MethodPost, target: "/api/transform", body: strings.Repeat(" ", maxTransformBytes+1), status: 413, msg: "read body: http: request body too large"},
		{method: http.MethodPost, target: "/api/traces", status: 405},
		{target: "/api/nope", status: 404},
		{target: "/api/traces/", status: 404},
	} {
		t.Run(tc.target, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			resp := serve(h, method, tc.target, tc.body)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.msg == "" {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q (Jaeger answers errors with http.Error)", ct)
			}
			var e envelope
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(e.Errors) != 1 || e.Errors[0].Code != tc.status || !strings.HasPrefix(e.Errors[0].Msg, tc.msg) ||
				(e.Errors[0].Msg != tc.msg && !strings.HasSuffix(tc.msg, ": ")) {
				t.Errorf("errors %+v, want code %d msg %q", e.Errors, tc.status, tc.msg)
			}
			want := `{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":`
			if !strings.HasPrefix(string(body), want) || !strings.HasSuffix(string(body), "}]}\n") {
				t.Errorf("envelope %s", body)
			}
		})
	}
}

// TestLimits checks limits Jaeger's storages differ on: 0 or negative is
// the default (100), and at most store.MaxSearchLimit are asked for.
func TestLimits(t *testing.T) {
	var got []int
	st := &recordingStore{onFind: func(q store.TraceQuery) { got = append(got, q.Limit) }}
	h := newTestHandler(st)
	for _, l := range []string{"", "0", "-5", "7", "2000", "2147483647"} {
		if resp := serve(h, http.MethodGet, "/api/traces?service=s&limit="+l, ""); resp.StatusCode != 200 {
			t.Fatalf("limit=%s: %d", l, resp.StatusCode)
		}
	}
	if want := []int{100, 100, 100, 7, store.MaxSearchLimit, store.MaxSearchLimit}; !reflect.DeepEqual(got, want) {
		t.Errorf("limits %v, want %v", got, want)
	}
}

// recordingStore is fakeStore that records searches.
type recordingStore struct {
	fakeStore
	onFind func(store.TraceQuery)
}

func (r *recordingStore) FindTraces(_ context.Context, q store.TraceQuery) ([]store.TraceSummary, error) {
	r.onFind(q)
	return nil, nil
}

// TestStoreErrors checks that a failing store gives 500 with the envelope,
// 503 when the store is warming up or closed (404 only for
// store.ErrNotFound, in TestTrace...).
func TestStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New("disk on fire"), 500},
		{fmt.Errorf("%w: re-indexing chunks 1 to 9", store.ErrWarmingUp), 503},
		{store.ErrClosed, 503},
	} {
		h := newTestHandler(fakeStore{err: tc.err})
		for _, target := range []string{
			"/api/services", "/api/services/x/operations", "/api/operations?service=x", "/api/traces?service=x",
			"/api/traces/abc", "/api/traces?traceID=abc", "/api/dependencies",
		} {
			resp := serve(h, http.MethodGet, target, "")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(body), fmt.Sprintf(`"code":%d`, tc.code)) || !strings.Contains(string(body), tc.err.Error()) {
				t.Errorf("%s with %q: %d %s, want %d", target, tc.err, resp.StatusCode, body, tc.code)
			}
		}
	}
}

// TestParseTraceQuery checks parsed values (the errors are in
// TestBadRequests).
func TestParseTraceQuery(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  traceQuery
	}{
		{"service=a", traceQuery{service: "a", start: testNow.Add(-48 * time.Hour), end: testNow, tags: map[string]string{}, limit: 100}},
		{"service=a&operation=GET+/x&start=1000000&end=2000000&limit=5&minDuration=1ms&maxDuration=1.5s&raw=true&lookback=1h",
			traceQuery{service: "a", operation: "GET /x", start: time.Unix(1, 0), end: time.Unix(2, 0), tags: map[string]string{}, limit: 5,
				minDuration: time.Millisecond, maxDuration: 1500 * time.Millisecond, raw: true}},
		{`service=a&tag=k:v:w&tag=x:&tags={"k":"j","y":"z"}&tags={"y":"2"}`, traceQuery{service: "a", start: testNow.Add(-48 * time.Hour), end: testNow,
			tags: map[string]string{"k": "j", "x": "", "y": "2"}, limit: 100}},
		{"traceID=abc&traceID=0123456789abcdef0123456789ABCDEF", traceQuery{start: testNow.Add(-48 * time.Hour), end: testNow, tags: map[string]string{}, limit: 100,
			traceIDs: []traceID{{low: 0xabc}, {high: 0x0123456789abcdef, low: 0x0123456789abcdef}}}},
		{"service=a&start=-5&end=0", traceQuery{service: "a", start: time.Unix(0, -5000), end: time.Unix(0, 0), tags: map[string]string{}, limit: 100}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			form, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseTraceQuery(form, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !got.start.Equal(tc.want.start) || !got.end.Equal(tc.want.end) {
				t.Errorf("range [%v, %v], want [%v, %v]", got.start, got.end, tc.want.start, tc.want.end)
			}
			got.start, got.end, tc.want.start, tc.want.end = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// TestParseTraceID checks IDs as Jaeger reads and prints them.
func TestParseTraceID(t *testing.T) {
	f := func(in, want string, ok bool) {
		t.Helper()
		id, err := parseTraceID(in)
		if (err == nil) != ok {
			t.Fatalf("parseTraceID(%q): error %v, want ok=%v", in, err, ok)
		}
		if ok && id.String() != want {
			t.Errorf("parseTraceID(%q) = %s, want %s", in, id, want)
		}
	}
	f("1", "0000000000000001", true)
	f("c0ffee", "0000000000c0ffee", true)
	f("00000000000000000000000000c0ffee", "0000000000c0ffee", true)
	f("4BF92F3577B34DA6A3CE929D0E0E4736", "4bf92f3577b34da6a3ce929d0e0e4736", true)
	f("14bf92f3577b34da6", "00000000000000014bf92f3577b34da6", true)
	f("0", "0000000000000000", true)
	f("", "", false)
	f("0x1", "", false)
	f("-1", "", false)
	f("+1", "", false)
	f("1_0", "", false)
	f(strings.Repeat("f", 33), "", false)
	f(" 1", "", false)
}

// TestDependencyLinks checks the flow graph's edges as Jaeger links:
// names without namespace, summed, virtual targets and idle edges left
// out, unknown_service renamed, filtered by service, sorted.
func TestDependencyLinks(t *testing.T) {
	g := &aggregate.Graph{
		Nodes: []aggregate.GraphNode{{ID: "shop/frontend", Namespace: "shop"}, {ID: "cart"}, {ID: "other/cart", Namespace: "other"},
			{ID: "postgres", Virtual: true}, {ID: "unknown_service"}},
		Edges: []aggregate.GraphEdge{
			{Source: "shop/frontend", Target: "cart", Calls: aggregate.Rollup{Count: 3}},
			{Source: "shop/frontend", Target: "other/cart", Calls: aggregate.Rollup{Count: 2}},
			{Source: "cart", Target: "postgres", Virtual: true, Calls: aggregate.Rollup{Count: 9}},
			{Source: "unknown_service", Target: "cart", Calls: aggregate.Rollup{Count: 1}},
			{Source: "cart", Target: "shop/frontend"},
		},
	}
	want := []uiDependencyLink{{"frontend", "cart", 5}, {"missing-service-name", "cart", 1}}
	if got := dependencyLinks(g, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("links %v, want %v", got, want)
	}
	if got := dependencyLinks(g, "missing-service-name"); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("links of missing-service-name %v", got)
	}
	if got := dependencyLinks(g, "nope"); got == nil || len(got) != 0 {
		t.Errorf("links of an unknown service %#v, want []", got)
	}
}
