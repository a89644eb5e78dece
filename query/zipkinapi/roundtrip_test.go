package zipkinapi

import (
	"encoding/json"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openzipkin/zipkin-go/model"

	"github.com/flowscope/flowscope/ingest/zipkin"
	"github.com/flowscope/flowscope/store"
)

// zipkinRoundTripSpans are v2 spans as zipkin-go reports them: a 64-bit
// and a 128-bit trace, a call with a shared server span and children on
// both sides, every endpoint field, tags, annotations, an error, a span
// without duration.
func zipkinRoundTripSpans() []model.SpanModel {
	ts := t0.Add(-time.Minute).Truncate(time.Microsecond)
	id := func(n uint64) model.ID { return model.ID(n) }
	pid := func(n uint64) *model.ID { p := model.ID(n); return &p }
	t64 := model.TraceID{Low: 0x1234_5678_9abc_def0}
	t128 := model.TraceID{High: 0xfedc_ba98_7654_3210, Low: 0x0f0e_0d0c_0b0a_0908}
	return []model.SpanModel{
		{SpanContext: model.SpanContext{TraceID: t64, ID: id(1)}, Name: "get /home", Kind: model.Server,
			Timestamp: ts, Duration: 20 * time.Millisecond,
			LocalEndpoint:  &model.Endpoint{ServiceName: "web"},
			RemoteEndpoint: &model.Endpoint{IPv4: net.ParseIP("192.168.0.7").To4(), Port: 40000},
			Tags:           map[string]string{"http.method": "GET", "http.path": "/home"}},
		{SpanContext: model.SpanContext{TraceID: t64, ID: id(2), ParentID: pid(1)}, Name: "get /api", Kind: model.Client,
			Timestamp: ts.Add(time.Millisecond), Duration: 15 * time.Millisecond,
			LocalEndpoint:  &model.Endpoint{ServiceName: "web"},
			RemoteEndpoint: &model.Endpoint{ServiceName: "api", IPv6: net.ParseIP("2001:db8::5"), Port: 8080},
			Annotations:    []model.Annotation{{Timestamp: ts.Add(1100 * time.Microsecond), Value: "ws"}, {Timestamp: ts.Add(15 * time.Millisecond), Value: "wr"}},
			Tags:           map[string]string{"http.status_code": "500", "error": "server failed"}},
		{SpanContext: model.SpanContext{TraceID: t64, ID: id(2), ParentID: pid(1)}, Name: "get /api", Kind: model.Server,
			Shared: true, Timestamp: ts.Add(2 * time.Millisecond), Duration: 12 * time.Millisecond,
			LocalEndpoint:  &model.Endpoint{ServiceName: "api"},
			RemoteEndpoint: &model.Endpoint{ServiceName: "web", IPv4: net.ParseIP("10.0.0.1").To4()},
			Tags:           map[string]string{"error": ""}},
		{SpanContext: model.SpanContext{TraceID: t64, ID: id(3), ParentID: pid(2)}, Name: "query",
			Kind: model.Client, Timestamp: ts.Add(3 * time.Millisecond), Duration: 5 * time.Millisecond,
			LocalEndpoint: &model.Endpoint{ServiceName: "api"}, RemoteEndpoint: &model.Endpoint{ServiceName: "db"}},
		{SpanContext: model.SpanContext{TraceID: t64, ID: id(4), ParentID: pid(2)}, Name: "serialize",
			Timestamp: ts.Add(9 * time.Millisecond), Duration: time.Microsecond,
			LocalEndpoint: &model.Endpoint{ServiceName: "api"}, Tags: map[string]string{"lc": "json"}},
		{SpanContext: model.SpanContext{TraceID: t128, ID: id(10)}, Name: "publish", Kind: model.Producer,
			Timestamp:     ts.Add(time.Second),
			LocalEndpoint: &model.Endpoint{ServiceName: "web"}, RemoteEndpoint: &model.Endpoint{ServiceName: "queue", Port: 5672}},
		{SpanContext: model.SpanContext{TraceID: t128, ID: id(11), ParentID: pid(10)}, Name: "consume", Kind: model.Consumer,
			Timestamp: ts.Add(time.Second + time.Millisecond), Duration: 3 * time.Millisecond,
			LocalEndpoint: &model.Endpoint{ServiceName: "worker"}, RemoteEndpoint: &model.Endpoint{ServiceName: "queue"},
			Annotations: []model.Annotation{{Timestamp: ts.Add(time.Second + 2*time.Millisecond), Value: "acked"}}},
	}
}

// TestZipkinRoundTrip sends zipkin-go's JSON through the receiver's
// conversion into the store and checks that /api/v2/trace/{id} gives
// back exactly the spans sent, decoded with zipkin-go's model.
func TestZipkinRoundTrip(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sent := zipkinRoundTripSpans()
	body, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	writeZipkin(t, db, zipkin.V2, body)
	// zipkin-go's own encoding is the reference: decode what was sent.
	var want []model.SpanModel
	if err := json.Unmarshal(body, &want); err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, db)
	for _, tid := range []model.TraceID{sent[0].TraceID, sent[5].TraceID} {
		r := get(t, h, "/api/v2/trace/"+tid.String())
		if r.code != 200 {
			t.Fatalf("trace %s: %d %s", tid, r.code, r.body)
		}
		var got []model.SpanModel
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
		var wantTrace []model.SpanModel
		for _, s := range want {
			if s.TraceID == tid {
				wantTrace = append(wantTrace, s)
			}
		}
		compareSpans(t, got, wantTrace)
	}
}

// compareSpans compares Zipkin spans by (ID, shared), field by field.
func compareSpans(t *testing.T, got, want []model.SpanModel) {
	t.Helper()
	key := func(s model.SpanModel) string { return s.ID.String() + map[bool]string{true: "/shared"}[s.Shared] }
	sortSpans := func(ss []model.SpanModel) {
		slices.SortFunc(ss, func(a, b model.SpanModel) int { return strings.Compare(key(a), key(b)) })
	}
	sortSpans(got)
	sortSpans(want)
	if len(got) != len(want) {
		t.Errorf("%d spans, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if key(g) != key(w) {
			t.Errorf("span %d is %s, want %s", i, key(g), key(w))
			continue
		}
		if !g.Timestamp.Equal(w.Timestamp) {
			t.Errorf("span %s: timestamp %v, want %v", key(w), g.Timestamp, w.Timestamp)
		}
		g.Timestamp, w.Timestamp = time.Time{}, time.Time{}
		for j := range g.Annotations {
			if j < len(w.Annotations) && g.Annotations[j].Timestamp.Equal(w.Annotations[j].Timestamp) {
				g.Annotations[j].Timestamp = w.Annotations[j].Timestamp
			}
		}
		if !reflect.DeepEqual(g, w) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			t.Errorf("span %s:\ngot  %s\nwant %s", key(w), gj, wj)
		}
	}
}

// TestZipkinV1Shared sends a Zipkin v1 span holding both halves of a call
// and checks it comes back as Zipkin's v1 conversion gives it: a client
// span and a shared server span with the same ID.
func TestZipkinV1Shared(t *testing.T) {
	db, err := store.Open(t.TempDir(), store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	writeZipkin(t, db, zipkin.V1, []byte(`[
	 {"traceId":"00000000000000aa","id":"00000000000000b1","name":"root","timestamp":1714564000000000,"duration":500,
	  "annotations":[{"timestamp":1714564000000000,"value":"sr","endpoint":{"serviceName":"web"}},
	                 {"timestamp":1714564000000500,"value":"ss","endpoint":{"serviceName":"web"}}]},
	 {"traceId":"00000000000000aa","parentId":"00000000000000b1","id":"00000000000000b2","name":"call",
	  "timestamp":1714564000000100,"duration":300,
	  "annotations":[{"timestamp":1714564000000100,"value":"cs","endpoint":{"serviceName":"web"}},
	                 {"timestamp":1714564000000150,"value":"sr","endpoint":{"serviceName":"api"}},
	                 {"timestamp":1714564000000350,"value":"ss","endpoint":{"serviceName":"api"}},
	                 {"timestamp":1714564000000400,"value":"cr","endpoint":{"serviceName":"web"}}],
	  "binaryAnnotations":[{"key":"http.path","value":"/x","endpoint":{"serviceName":"api"}},
	                       {"key":"sa","value":true,"endpoint":{"serviceName":"api","ipv4":"10.0.0.9","port":80}}]},
	 {"traceId":"00000000000000aa","parentId":"00000000000000b2","id":"00000000000000b3","name":"local",
	  "timestamp":1714564000000200,"duration":50,
	  "binaryAnnotations":[{"key":"lc","value":"cache","endpoint":{"serviceName":"api"}}]}]`))
	r := get(t, newTestHandler(t, db), "/api/v2/trace/aa")
	if r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	var got []model.SpanModel
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP("10.0.0.9") // 16 bytes, as JSON decodes it
	micro := func(us int64) time.Time { return time.Unix(0, us*1000) }
	p1, p2 := model.ID(0xb1), model.ID(0xb2)
	tid := model.TraceID{Low: 0xaa}
	want := []model.SpanModel{
		{SpanContext: model.SpanContext{TraceID: tid, ID: 0xb1}, Name: "root", Kind: model.Server,
			Timestamp: micro(1714564000000000), Duration: 500 * time.Microsecond, LocalEndpoint: &model.Endpoint{ServiceName: "web"}},
		{SpanContext: model.SpanContext{TraceID: tid, ID: 0xb2, ParentID: &p1}, Name: "call", Kind: model.Client,
			Timestamp: micro(1714564000000100), Duration: 300 * time.Microsecond, LocalEndpoint: &model.Endpoint{ServiceName: "web"},
			RemoteEndpoint: &model.Endpoint{ServiceName: "api", IPv4: ip, Port: 80}},
		{SpanContext: model.SpanContext{TraceID: tid, ID: 0xb2, ParentID: &p1}, Name: "call", Kind: model.Server, Shared: true,
			Timestamp: micro(1714564000000150), Duration: 200 * time.Microsecond, LocalEndpoint: &model.Endpoint{ServiceName: "api"},
			Tags: map[string]string{"http.path": "/x"}},
		{SpanContext: model.SpanContext{TraceID: tid, ID: 0xb3, ParentID: &p2}, Name: "local",
			Timestamp: micro(1714564000000200), Duration: 50 * time.Microsecond, LocalEndpoint: &model.Endpoint{ServiceName: "api"},
			Tags: map[string]string{"lc": "cache"}},
	}
	compareSpans(t, got, want)
}

// TestUndoSharedSplit checks the reverse of the receiver's split on its
// own: a derived server ID becomes the shared ID, its parent the client's
// parent, its children point at the shared ID; a server span without its
// client span loses its parent; spans of other scopes are left alone.
func TestUndoSharedSplit(t *testing.T) {
	tid := store.TraceID{15: 9}
	client, root, child := [8]byte{7: 2}, [8]byte{7: 1}, [8]byte{7: 3}
	derived := zipkin.DerivedSpanID(tid, client, 1)
	orphan := [8]byte{7: 5}
	spans := []zspan{
		{TraceID: tid, ID: root, fromZipkin: true, Kind: "SERVER"},
		{TraceID: tid, ID: client, ParentID: root, HasParent: true, fromZipkin: true, Kind: "CLIENT"},
		{TraceID: tid, ID: derived, ParentID: client, HasParent: true, fromZipkin: true, Kind: "SERVER"},
		{TraceID: tid, ID: child, ParentID: derived, HasParent: true, fromZipkin: true},
		{TraceID: tid, ID: zipkin.DerivedSpanID(tid, orphan, 1), ParentID: orphan, HasParent: true, fromZipkin: true, Kind: "CONSUMER"},
		{TraceID: tid, ID: zipkin.DerivedSpanID(tid, root, 1), ParentID: root, HasParent: true, Kind: "SERVER"}, // not ours
	}
	undoSharedSplit(spans)
	type view struct {
		id, parent [8]byte
		hasParent  bool
		shared     bool
	}
	got := make([]view, len(spans))
	for i, s := range spans {
		got[i] = view{s.ID, s.ParentID, s.HasParent, s.Shared}
	}
	want := []view{
		{root, [8]byte{}, false, false},
		{client, root, true, false},
		{client, root, true, true},
		{child, client, true, false},
		{orphan, [8]byte{}, false, true},
		{zipkin.DerivedSpanID(tid, root, 1), root, true, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}
