package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the gRPC gzip bomb
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// sweepBudget bounds the whole sweep (the requests, not the restarts): a
// guard against a hang, far above its usual 15–60 s (-race, shared
// machine). Every case must run: past the budget the sweep fails.
const sweepBudget = 5 * time.Minute

// expectation says what a sweep request may be answered.
type expectation int

const (
	// expectAny: any documented answer (random bytes may happen to parse).
	expectAny expectation = iota
	// expectRefused: nothing of the request may be stored: HTTP 400 or
	// 413, gRPC InvalidArgument or ResourceExhausted, or a partial success
	// that rejects every item.
	expectRefused
	// expectStored: valid content, stored (or refused for overload, with
	// Retry-After).
	expectStored
)

func (e expectation) String() string {
	return [...]string{"any documented answer", "refused", "stored"}[e]
}

// sweepCase is one malformed (or extreme but valid) request body.
type sweepCase struct {
	name   string
	body   []byte
	gzip   bool // sent with Content-Encoding gzip (body already compressed)
	expect expectation
	items  int // spans or points in the request, for a partial success that must reject all
}

// TestMalformedInputSweep starts the real collector binary, stores known
// traces, then sends malformed and extreme requests to every ingest path
// (OTLP/HTTP protobuf and JSON, OTLP/gRPC, Zipkin v1 and v2, import) and
// checks that every answer is a documented one, that the process stays up,
// and that the known traces and their flow-graph edges are unchanged, also
// after a graceful restart. The sweep's valid items use their own service
// names, so they never touch the known edges.
func TestMalformedInputSweep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector binary; skipped under -short")
	}
	bin := sharedCollectorBin(t)
	dir := t.TempDir()
	p := procStartCollector(t, bin, dir)
	p.waitReady(t, 30*time.Second)
	a := sweepAddrsOf(t, p)

	now := time.Now()
	known := storeKnownTraces(t, a, now)
	rangeQ := fmt.Sprintf("level=service&start=%d&end=%d", now.Add(-10*time.Minute).UnixMilli(), now.Add(5*time.Minute).UnixMilli())
	want := knownSnapshot(t, a, known, rangeQ, true)

	r := rand.New(rand.NewPCG(2026, 10))
	deadline := time.Now().Add(sweepBudget)
	hc := &http.Client{Timeout: 30 * time.Second}
	check := func(t *testing.T, c sweepCase, send func(sweepCase) (string, bool, error)) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the sweep took more than %s", c.name, sweepBudget)
		}
		answer, refused, err := send(c)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			return
		}
		switch {
		case c.expect == expectRefused && !refused:
			t.Errorf("%s: %s; want it refused", c.name, answer)
		case c.expect == expectStored && refused:
			t.Errorf("%s: %s; want it stored", c.name, answer)
		}
	}

	traceCases := protoTraceCases(r, now)
	metricCases := protoMetricCases(r, now)
	jsonCases := jsonTraceCases(r, now)
	zipkinCases := zipkinCases(r, now)

	cc, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	httpSend := func(url, ctype, kind string) func(sweepCase) (string, bool, error) {
		return func(c sweepCase) (string, bool, error) { return sweepPostHTTP(hc, url, ctype, kind, c) }
	}
	targets := []struct {
		name  string
		cases []sweepCase
		send  func(sweepCase) (string, bool, error)
	}{
		{"otlphttp/traces/protobuf", traceCases, httpSend("http://"+a.otlpHTTP+"/v1/traces", "application/x-protobuf", "traces")},
		{"otlphttp/traces/json", jsonCases, httpSend("http://"+a.otlpHTTP+"/v1/traces", "application/json", "traces")},
		{"otlphttp/metrics/protobuf", metricCases, httpSend("http://"+a.otlpHTTP+"/v1/metrics", "application/x-protobuf", "metrics")},
		{"otlphttp/metrics/json", jsonMetricCases(r, now), httpSend("http://"+a.otlpHTTP+"/v1/metrics", "application/json", "metrics")},
		{"otlpgrpc/traces", traceCases, func(c sweepCase) (string, bool, error) {
			return sweepInvoke(cc, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &coltracepb.ExportTraceServiceResponse{}, c)
		}},
		{"otlpgrpc/metrics", metricCases, func(c sweepCase) (string, bool, error) {
			return sweepInvoke(cc, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", &colmetricspb.ExportMetricsServiceResponse{}, c)
		}},
		{"zipkin/v2", zipkinCases, httpSend("http://"+a.zipkin+"/api/v2/spans", "application/json", "zipkin")},
		{"zipkin/v1", zipkinV1Cases(r, now), httpSend("http://"+a.zipkin+"/api/v1/spans", "application/json", "zipkin")},
		{"import/otlp-json", jsonCases, httpSend("http://"+a.http+"/api/v1/import?name=sweep.json", "application/octet-stream", "import")},
		{"import/zipkin", zipkinCases, httpSend("http://"+a.http+"/api/v1/import?name=sweep-zipkin.json", "application/octet-stream", "import")},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			for _, c := range tg.cases {
				if tg.name == "import/otlp-json" || tg.name == "import/zipkin" {
					if c.gzip {
						continue // a file upload carries no Content-Encoding; the bomb is sent as a file below
					}
				}
				check(t, c, tg.send)
			}
		})
	}
	t.Run("import/gzip-bomb-file", func(t *testing.T) {
		check(t, sweepCase{name: "gzip bomb as a .gz file", body: gzipBomb(), expect: expectRefused},
			httpSend("http://"+a.http+"/api/v1/import?name=bomb.json.gz", "application/gzip", "import"))
	})

	// The process is up, and the earlier data is intact.
	if code, body := sweepGet(t, hc, "http://"+a.http+"/healthz"); code != 200 {
		t.Fatalf("healthz after the sweep: %d %s", code, body)
	}
	compareSnapshots(t, "after the sweep", want, knownSnapshot(t, a, known, rangeQ, false))
	for _, l := range p.errorLogs() {
		if !strings.HasPrefix(l, "{") {
			t.Errorf("collector wrote a non-log line (a panic?): %.300s", l)
		}
	}

	// And after a graceful restart.
	if code := p.terminate(t, 60*time.Second); code != 0 {
		t.Fatalf("collector exit code %d after SIGTERM:\n%.4000s", code, p.logText())
	}
	p = procStartCollector(t, bin, dir)
	p.waitReady(t, 60*time.Second)
	a = sweepAddrsOf(t, p)
	compareSnapshots(t, "after the restart", want, knownSnapshot(t, a, known, rangeQ, false))
	if code := p.terminate(t, 60*time.Second); code != 0 {
		t.Errorf("collector exit code %d after SIGTERM", code)
	}
}

// sweepAddrs are the listeners of a collector subprocess.
type sweepAddrs struct{ grpc, otlpHTTP, zipkin, http string }

// sweepAddrsOf reads every listener address from the "collector started"
// log line.
func sweepAddrsOf(t *testing.T, p *procCollector) sweepAddrs {
	t.Helper()
	for _, line := range strings.Split(p.logText(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "collector started" {
			continue
		}
		s := func(k string) string { v, _ := rec[k].(string); return v }
		a := sweepAddrs{grpc: s("otlp_grpc"), otlpHTTP: s("otlp_http"), zipkin: s("zipkin"), http: s("http")}
		if a.grpc == "" || a.otlpHTTP == "" || a.zipkin == "" || a.http == "" {
			t.Fatalf("collector started without every address: %s", line)
		}
		return a
	}
	t.Fatalf("no \"collector started\" line:\n%s", p.logText())
	return sweepAddrs{}
}

// knownTraceCount is the number of known traces, each a call from
// known-frontend to known-backend (a client and a server span).
const knownTraceCount = 20

// storeKnownTraces stores the known traces over OTLP/HTTP and returns
// their IDs (hex).
func storeKnownTraces(t *testing.T, a sweepAddrs, now time.Time) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	res := func(svc string) *resourcepb.Resource {
		return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", svc)}}
	}
	front := &tracepb.ResourceSpans{Resource: res("known-frontend"), ScopeSpans: []*tracepb.ScopeSpans{{}}}
	back := &tracepb.ResourceSpans{Resource: res("known-backend"), ScopeSpans: []*tracepb.ScopeSpans{{}}}
	var ids []string
	for i := range knownTraceCount {
		tid, cid, sid := randBytes(r, 16), randBytes(r, 8), randBytes(r, 8)
		start := uint64(now.Add(-time.Minute + time.Duration(i)*time.Second).UnixNano())
		front.ScopeSpans[0].Spans = append(front.ScopeSpans[0].Spans, &tracepb.Span{TraceId: tid, SpanId: cid,
			Name: "GET /known", Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: start, EndTimeUnixNano: start + 5e6,
			Attributes: []*commonpb.KeyValue{strKV("http.route", "/known"), strKV("i", fmt.Sprint(i))}})
		back.ScopeSpans[0].Spans = append(back.ScopeSpans[0].Spans, &tracepb.Span{TraceId: tid, SpanId: sid, ParentSpanId: cid,
			Name: "handle", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: start + 1e6, EndTimeUnixNano: start + 4e6})
		ids = append(ids, hex.EncodeToString(tid))
	}
	body, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{front, back}})
	if err != nil {
		t.Fatal(err)
	}
	code, _, b := post(t, "http://"+a.otlpHTTP+"/v1/traces", "application/x-protobuf", "", bytes.NewReader(body))
	if code != 200 {
		t.Fatalf("store known traces: %d %s", code, b)
	}
	return ids
}

// snapshot is what the test compares: the trace bodies by ID and the
// calls of the known flow-graph edges.
type snapshot struct {
	traces map[string]string
	edges  map[string]float64
}

// knownSnapshot reads the known traces and edges. With wait it polls the
// flow graph until the known edge shows every call (at most 10 s).
func knownSnapshot(t *testing.T, a sweepAddrs, ids []string, rangeQ string, wait bool) snapshot {
	t.Helper()
	hc := &http.Client{Timeout: 30 * time.Second}
	s := snapshot{traces: map[string]string{}, edges: map[string]float64{}}
	for _, id := range ids {
		code, body := sweepGet(t, hc, "http://"+a.http+"/api/v1/traces/"+id)
		if code != 200 {
			t.Fatalf("trace %s: %d %.300s", id, code, body)
		}
		s.traces[id] = string(body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := sweepGet(t, hc, "http://"+a.http+"/api/v1/flowgraph?"+rangeQ)
		if code != 200 {
			t.Fatalf("flowgraph: %d %.300s", code, body)
		}
		var g flowGraph
		if err := json.Unmarshal(body, &g); err != nil {
			t.Fatalf("decode flow graph: %v", err)
		}
		clear(s.edges)
		for _, e := range g.Edges {
			if strings.HasPrefix(e.Source, "known-") || strings.HasPrefix(e.Target, "known-") {
				s.edges[e.Source+" -> "+e.Target] = e.Calls
			}
		}
		if !wait || s.edges["known-frontend -> known-backend"] >= knownTraceCount || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if wait && s.edges["known-frontend -> known-backend"] != knownTraceCount {
		t.Fatalf("known edges %v, want %d calls from known-frontend to known-backend", s.edges, knownTraceCount)
	}
	return s
}

func compareSnapshots(t *testing.T, when string, want, got snapshot) {
	t.Helper()
	for id, w := range want.traces {
		if got.traces[id] != w {
			t.Errorf("%s: trace %s reads back differently:\n got %.500s\nwant %.500s", when, id, got.traces[id], w)
		}
	}
	if fmt.Sprint(got.edges) != fmt.Sprint(want.edges) {
		t.Errorf("%s: known edges %v, want %v", when, got.edges, want.edges)
	}
}

func sweepGet(t *testing.T, hc *http.Client, url string) (int, []byte) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// sweepPostHTTP posts c and classifies the answer: refused is true for
// 400 and 413 and for a partial success rejecting all c.items. Any other
// status than 2xx, 400, 413, 429 and 503 (the last two with Retry-After)
// is an error.
func sweepPostHTTP(hc *http.Client, url, ctype, kind string, c sweepCase) (string, bool, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(c.body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", ctype)
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", false, fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	answer := fmt.Sprintf("HTTP %d %.200s", resp.StatusCode, b)
	switch code := resp.StatusCode; {
	case code == 400 || code == 413:
		return answer, true, nil
	case code == 429 || code == 503:
		if resp.Header.Get("Retry-After") == "" {
			return answer, false, fmt.Errorf("%s without Retry-After", answer)
		}
		return answer, false, nil
	case code >= 200 && code < 300:
		return answer, c.items > 0 && rejectedAll(b, kind, c.items), nil
	default:
		return answer, false, fmt.Errorf("undocumented answer %s", answer)
	}
}

// rejectedAll reports whether a 2xx body is a partial success rejecting at
// least n items (OTLP/JSON or protobuf; Zipkin and import answers carry
// no partial success and count as stored).
func rejectedAll(body []byte, kind string, n int) bool {
	var js struct {
		PartialSuccess struct {
			RejectedSpans      json.Number `json:"rejectedSpans"`
			RejectedDataPoints json.Number `json:"rejectedDataPoints"`
		} `json:"partialSuccess"`
	}
	var got int64
	if json.Unmarshal(body, &js) == nil {
		a, _ := js.PartialSuccess.RejectedSpans.Int64()
		b, _ := js.PartialSuccess.RejectedDataPoints.Int64()
		got = max(a, b)
	} else if kind == "traces" {
		var m coltracepb.ExportTraceServiceResponse
		if proto.Unmarshal(body, &m) == nil {
			got = m.GetPartialSuccess().GetRejectedSpans()
		}
	} else if kind == "metrics" {
		var m colmetricspb.ExportMetricsServiceResponse
		if proto.Unmarshal(body, &m) == nil {
			got = m.GetPartialSuccess().GetRejectedDataPoints()
		}
	}
	return got >= int64(n)
}

// sweepInvoke sends c's bytes as is over gRPC. Only OK, InvalidArgument,
// ResourceExhausted and Unavailable are documented; refused is true for
// InvalidArgument and ResourceExhausted, and for a partial success that
// rejects all c.items.
func sweepInvoke(cc *grpc.ClientConn, method string, resp proto.Message, c sweepCase) (string, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := c.body
	opts := []grpc.CallOption{grpc.ForceCodecV2(bytesCodec{})}
	if c.gzip {
		// The HTTP cases hold the compressed body; gRPC compresses itself.
		body = bytes.Repeat([]byte{0x7a, 0x00}, 32<<20) // unknown field 15: 64 MiB that compress to little
		opts = append(opts, grpc.UseCompressor("gzip"))
	}
	err := cc.Invoke(ctx, method, rawBytes(body), resp, opts...)
	st := status.Convert(err)
	answer := fmt.Sprintf("gRPC %s %.200s", st.Code(), st.Message())
	switch st.Code() {
	case codes.InvalidArgument, codes.ResourceExhausted:
		return answer, true, nil
	case codes.Unavailable:
		return answer, false, nil
	case codes.OK:
		var rejected int64
		switch m := resp.(type) {
		case *coltracepb.ExportTraceServiceResponse:
			rejected = m.GetPartialSuccess().GetRejectedSpans()
		case *colmetricspb.ExportMetricsServiceResponse:
			rejected = m.GetPartialSuccess().GetRejectedDataPoints()
		}
		return answer, c.items > 0 && rejected >= int64(c.items), nil
	}
	return answer, false, fmt.Errorf("undocumented answer %s", answer)
}

func strKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[0] |= 1 // never all zero
	return b
}

// badUTF8 holds invalid UTF-8 (a lone continuation byte, a truncated
// sequence, an encoded surrogate); it is as long as utf8Placeholder, so
// replacing one by the other keeps every protobuf length prefix valid.
const (
	badUTF8         = "a\xffb\xc3\x28\xed\xa0\x80z"
	utf8Placeholder = "BADUTF8XX"
)

// deepValue returns an encoded AnyValue nested depth levels deep, through
// kvlist_value (field 6) or array_value (field 5).
func deepValue(depth int, kvlist bool) []byte {
	v := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x")) // string_value
	for range depth {
		var inner []byte
		if kvlist {
			kv := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("k"))
			kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), v)
			inner = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), kv)
			v = protowire.AppendBytes(protowire.AppendTag(nil, 6, protowire.BytesType), inner)
		} else {
			inner = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), v)
			v = protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), inner)
		}
	}
	return v
}

// deepKV is an encoded KeyValue "deep" holding deepValue.
func deepKV(depth int, kvlist bool) []byte {
	kv := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("deep"))
	return protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), deepValue(depth, kvlist))
}

// sweepSpan is a valid span of a sweep trace.
func sweepSpan(r *rand.Rand, now time.Time, name string) *tracepb.Span {
	start := uint64(now.Add(-30 * time.Second).UnixNano())
	return &tracepb.Span{TraceId: randBytes(r, 16), SpanId: randBytes(r, 8), Name: name,
		Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: start, EndTimeUnixNano: start + 1e6}
}

// traceRequest wraps spans of one sweep service into a request.
func traceRequest(svc string, spans ...*tracepb.Span) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", svc)}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return b
}

// withRawSpanField encodes a one-span request of svc whose span has the
// extra encoded field appended (a repeated field may come last).
func withRawSpanField(span *tracepb.Span, svc string, field protowire.Number, raw []byte) []byte {
	sb := protowire.AppendBytes(protowire.AppendTag(mustMarshal(span), field, protowire.BytesType), raw)
	ss := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), sb)
	res := mustMarshal(&resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", svc)}})
	rs := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), res)
	rs = protowire.AppendBytes(protowire.AppendTag(rs, 2, protowire.BytesType), ss)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)
}

// randomCases are seeded random byte strings of several sizes.
func randomCases(r *rand.Rand) []sweepCase {
	var out []sweepCase
	for _, n := range []int{1, 7, 100, 4 << 10, 256 << 10} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		out = append(out, sweepCase{name: fmt.Sprintf("random %d bytes", n), body: b, expect: expectAny})
	}
	return out
}

// truncations cuts a valid body at a few points.
func truncations(valid []byte) []sweepCase {
	var out []sweepCase
	for _, f := range []float64{0.1, 0.5, 0.9, 0.999} {
		n := max(1, int(f*float64(len(valid))))
		out = append(out, sweepCase{name: fmt.Sprintf("truncated at %d of %d bytes", n, len(valid)), body: valid[:n], expect: expectAny})
	}
	return out
}

// hugeLengthCases claim far more bytes than they hold, at the top level
// and inside a resource.
func hugeLengthCases() []sweepCase {
	top := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.BytesType), 1<<62)
	top = append(top, 0x0a, 0x02, 0x01, 0x02)
	inner := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.BytesType), 1<<31) // resource: 2 GiB
	nested := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), append(inner, 1, 2, 3))
	maxLen := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.BytesType), 1<<64-1)
	return []sweepCase{
		{name: "length prefix 2^62", body: top, expect: expectRefused},
		{name: "nested length prefix 2 GiB", body: nested, expect: expectRefused},
		{name: "length prefix 2^64-1", body: maxLen, expect: expectRefused},
		{name: "varint of 11 bytes", body: []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, expect: expectRefused},
	}
}

// protoTraceCases are the OTLP trace request bodies (protobuf) of the
// sweep: for OTLP/HTTP protobuf and OTLP/gRPC.
func protoTraceCases(r *rand.Rand, now time.Time) []sweepCase {
	out := randomCases(r)
	valid := mustMarshal(traceRequest("sweep-valid", sweepSpan(r, now, "a"), sweepSpan(r, now, "b"), sweepSpan(r, now, "c")))
	out = append(out, truncations(valid)...)
	out = append(out, hugeLengthCases()...)

	// 1e5 attributes on one span.
	many := sweepSpan(r, now, "many-attributes")
	for i := range 100_000 {
		many.Attributes = append(many.Attributes, strKV(fmt.Sprintf("k%d", i), "v"))
	}
	out = append(out, sweepCase{name: "1e5 attributes", body: mustMarshal(traceRequest("sweep-many-attrs", many)), expect: expectAny, items: 1})

	// Deep nesting.
	for _, kvlist := range []bool{true, false} {
		kind := map[bool]string{true: "kvlist", false: "array"}[kvlist]
		out = append(out, sweepCase{name: "10,000-deep " + kind,
			body: withRawSpanField(sweepSpan(r, now, "deep"), "sweep-deep", 9, deepKV(10_000, kvlist)), expect: expectRefused, items: 1})
	}

	// Invalid UTF-8 in each kind of string.
	for _, where := range []string{"span name", "attribute key", "attribute value", "service name"} {
		sp := sweepSpan(r, now, "utf8")
		svc := "sweep-utf8"
		switch where {
		case "span name":
			sp.Name = utf8Placeholder
		case "attribute key":
			sp.Attributes = []*commonpb.KeyValue{strKV(utf8Placeholder, "v")}
		case "attribute value":
			sp.Attributes = []*commonpb.KeyValue{strKV("k", utf8Placeholder)}
		case "service name":
			svc = utf8Placeholder
		}
		b := bytes.ReplaceAll(mustMarshal(traceRequest(svc, sp)), []byte(utf8Placeholder), []byte(badUTF8))
		out = append(out, sweepCase{name: "invalid UTF-8 in the " + where, body: b, expect: expectRefused, items: 1})
	}

	// Extreme timestamps.
	for _, tc := range []struct {
		name       string
		start, end uint64
		expect     expectation
	}{
		{"timestamps 0", 0, 0, expectAny},
		{"end 2^63-1", uint64(now.UnixNano()), 1<<63 - 1, expectRefused},
		{"start and end 2^64-1", 1<<64 - 1, 1<<64 - 1, expectRefused},
		{"end before start", uint64(now.UnixNano()), uint64(now.Add(-time.Hour).UnixNano()), expectAny},
	} {
		sp := sweepSpan(r, now, "time")
		sp.StartTimeUnixNano, sp.EndTimeUnixNano = tc.start, tc.end
		out = append(out, sweepCase{name: tc.name, body: mustMarshal(traceRequest("sweep-time", sp)), expect: tc.expect, items: 1})
	}

	// 20,000 resources in one request, a span each.
	req := &coltracepb.ExportTraceServiceRequest{}
	for i := range 20_000 {
		req.ResourceSpans = append(req.ResourceSpans, traceRequest(fmt.Sprintf("sweep-res-%d", i%50), sweepSpan(r, now, "r")).ResourceSpans[0])
	}
	out = append(out, sweepCase{name: "20,000 resources", body: mustMarshal(req), expect: expectStored})

	// Huge keys and names.
	bigKey := sweepSpan(r, now, "big-key")
	bigKey.Attributes = []*commonpb.KeyValue{strKV(strings.Repeat("k", 64<<10), "v")}
	out = append(out, sweepCase{name: "64 KiB attribute key", body: mustMarshal(traceRequest("sweep-big-key", bigKey)), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "40 KB span name", body: mustMarshal(traceRequest("sweep-big-name", sweepSpan(r, now, strings.Repeat("n", 40_000)))), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "40 KB service name", body: mustMarshal(traceRequest("sweep-"+strings.Repeat("s", 40_000), sweepSpan(r, now, "x"))), expect: expectAny, items: 1})

	out = append(out, sweepCase{name: "gzip bomb", body: gzipBomb(), gzip: true, expect: expectRefused})
	return out
}

// metricRequest is a gauge point of metric name in service svc.
func metricRequest(svc, name string, ts uint64, attrs ...*commonpb.KeyValue) *colmetricspb.ExportMetricsServiceRequest {
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", svc)}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{Name: name,
			Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{
				TimeUnixNano: ts, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 1}, Attributes: attrs}}}}}}}},
	}}}
}

// protoMetricCases are the OTLP metrics request bodies of the sweep.
func protoMetricCases(r *rand.Rand, now time.Time) []sweepCase {
	ts := uint64(now.Add(-30 * time.Second).UnixNano())
	out := randomCases(r)
	out = append(out, truncations(mustMarshal(metricRequest("sweep-m", "sweep.gauge", ts)))...)
	out = append(out, hugeLengthCases()...)

	// Deep nesting in a point attribute: NumberDataPoint.attributes is
	// field 7. Built by hand from the inside out.
	for _, kvlist := range []bool{true, false} {
		kind := map[bool]string{true: "kvlist", false: "array"}[kvlist]
		m := metricRequest("sweep-m-deep", "sweep.deep", ts)
		dp := m.ResourceMetrics[0].ScopeMetrics[0].Metrics[0].GetGauge().DataPoints[0]
		dpb := protowire.AppendBytes(protowire.AppendTag(mustMarshal(dp), 7, protowire.BytesType), deepKV(10_000, kvlist))
		gauge := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), dpb)
		metric := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("sweep.deep"))
		metric = protowire.AppendBytes(protowire.AppendTag(metric, 5, protowire.BytesType), gauge)
		sm := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), metric)
		rm := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), mustMarshal(m.ResourceMetrics[0].Resource))
		rm = protowire.AppendBytes(protowire.AppendTag(rm, 2, protowire.BytesType), sm)
		body := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rm)
		out = append(out, sweepCase{name: "10,000-deep " + kind, body: body, expect: expectRefused, items: 1})
	}
	many := make([]*commonpb.KeyValue, 100_000)
	for i := range many {
		many[i] = strKV(fmt.Sprintf("k%d", i), "v")
	}
	out = append(out, sweepCase{name: "1e5 attributes", body: mustMarshal(metricRequest("sweep-m-many", "sweep.many", ts, many...)), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "invalid UTF-8 in the metric name",
		body:   bytes.ReplaceAll(mustMarshal(metricRequest("sweep-m", utf8Placeholder, ts)), []byte(utf8Placeholder), []byte(badUTF8)),
		expect: expectRefused, items: 1})
	out = append(out, sweepCase{name: "invalid UTF-8 in an attribute value",
		body:   bytes.ReplaceAll(mustMarshal(metricRequest("sweep-m", "sweep.utf8", ts, strKV("k", utf8Placeholder))), []byte(utf8Placeholder), []byte(badUTF8)),
		expect: expectRefused, items: 1})
	for _, tc := range []struct {
		name   string
		ts     uint64
		expect expectation
	}{{"time 0", 0, expectAny}, {"time 2^63-1", 1<<63 - 1, expectRefused}, {"time 2^64-1", 1<<64 - 1, expectRefused}} {
		out = append(out, sweepCase{name: tc.name, body: mustMarshal(metricRequest("sweep-m-time", "sweep.time", tc.ts)), expect: tc.expect, items: 1})
	}
	req := &colmetricspb.ExportMetricsServiceRequest{}
	for i := range 20_000 {
		req.ResourceMetrics = append(req.ResourceMetrics, metricRequest(fmt.Sprintf("sweep-m-res-%d", i%50), "sweep.res", ts).ResourceMetrics[0])
	}
	out = append(out, sweepCase{name: "20,000 resources", body: mustMarshal(req), expect: expectStored})
	out = append(out, sweepCase{name: "40 KB metric name", body: mustMarshal(metricRequest("sweep-m", "sweep."+strings.Repeat("n", 40_000), ts)), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "64 KiB attribute key", body: mustMarshal(metricRequest("sweep-m", "sweep.key", ts, strKV(strings.Repeat("k", 64<<10), "v"))), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "gzip bomb", body: gzipBomb(), gzip: true, expect: expectRefused})
	return out
}

// gzipBomb is 64 MiB of zeros, gzipped (about 64 KiB): far over any
// request limit once inflated.
func gzipBomb() []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 64 {
		w.Write(zeros)
	}
	w.Close()
	return buf.Bytes()
}

// jsonSpan is an OTLP/JSON span with the given fields spliced in raw.
func jsonSpan(r *rand.Rand, name, start, end, attrs string) string {
	return fmt.Sprintf(`{"traceId":"%x","spanId":"%x","name":%s,"kind":2,"startTimeUnixNano":%s,"endTimeUnixNano":%s,"attributes":[%s]}`,
		randBytes(r, 16), randBytes(r, 8), name, start, end, attrs)
}

func jsonTraceBody(svc string, spans ...string) string {
	return `{"resourceSpans":[` + jsonResource(svc, spans...) + `]}`
}

func jsonResource(svc string, spans ...string) string {
	return `{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":` + svc + `}}]},"scopeSpans":[{"spans":[` +
		strings.Join(spans, ",") + `]}]}`
}

// jsonTraceCases are the OTLP/JSON trace bodies of the sweep: for
// OTLP/HTTP JSON and the import.
func jsonTraceCases(r *rand.Rand, now time.Time) []sweepCase {
	start := fmt.Sprintf(`"%d"`, now.Add(-30*time.Second).UnixNano())
	end := fmt.Sprintf(`"%d"`, now.Add(-30*time.Second).UnixNano()+1e6)
	span := func(name string) string { return jsonSpan(r, name, start, end, "") }
	out := randomCases(r)
	valid := jsonTraceBody(`"sweep-json"`, span(`"a"`), span(`"b"`))
	out = append(out, truncations([]byte(valid))...)
	out = append(out, sweepCase{name: "10,000-deep brackets", body: []byte(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)), expect: expectRefused})
	deepKV := strings.Repeat(`{"kvlistValue":{"values":[{"key":"k","value":`, 10_000) + `{"stringValue":"x"}` + strings.Repeat(`}]}}`, 10_000)
	deepArr := strings.Repeat(`{"arrayValue":{"values":[`, 10_000) + `{"stringValue":"x"}` + strings.Repeat(`]}}`, 10_000)
	for name, v := range map[string]string{"kvlist": deepKV, "array": deepArr} {
		out = append(out, sweepCase{name: "10,000-deep " + name,
			body: []byte(jsonTraceBody(`"sweep-json-deep"`, jsonSpan(r, `"deep"`, start, end, `{"key":"deep","value":`+v+`}`))), expect: expectRefused, items: 1})
	}
	var attrs strings.Builder
	for i := range 100_000 {
		if i > 0 {
			attrs.WriteByte(',')
		}
		fmt.Fprintf(&attrs, `{"key":"k%d","value":{"stringValue":"v"}}`, i)
	}
	out = append(out, sweepCase{name: "1e5 attributes", body: []byte(jsonTraceBody(`"sweep-json-many"`, jsonSpan(r, `"many"`, start, end, attrs.String()))), expect: expectAny, items: 1})
	for where, body := range map[string]string{
		"span name":       jsonTraceBody(`"sweep-json-utf8"`, span(`"`+badUTF8+`"`)),
		"attribute key":   jsonTraceBody(`"sweep-json-utf8"`, jsonSpan(r, `"u"`, start, end, `{"key":"`+badUTF8+`","value":{"stringValue":"v"}}`)),
		"attribute value": jsonTraceBody(`"sweep-json-utf8"`, jsonSpan(r, `"u"`, start, end, `{"key":"k","value":{"stringValue":"`+badUTF8+`"}}`)),
		"service name":    jsonTraceBody(`"`+badUTF8+`"`, span(`"u"`)),
	} {
		out = append(out, sweepCase{name: "invalid UTF-8 in the " + where, body: []byte(body), expect: expectRefused, items: 1})
	}
	for _, tc := range []struct {
		name, start, end string
		expect           expectation
	}{
		{"timestamps 0", `"0"`, `"0"`, expectAny},
		{"end 2^63-1", start, `"9223372036854775807"`, expectRefused},
		{"end 2^64-1", start, `"18446744073709551615"`, expectRefused},
		{"end 2^64", start, `"18446744073709551616"`, expectRefused},
		{"end 1e30 as a number", start, `1e30`, expectRefused},
		{"negative end", start, `"-1"`, expectRefused},
		{"end before start", start, fmt.Sprintf(`"%d"`, now.Add(-time.Hour).UnixNano()), expectAny},
	} {
		out = append(out, sweepCase{name: tc.name, body: []byte(jsonTraceBody(`"sweep-json-time"`, jsonSpan(r, `"t"`, tc.start, tc.end, ""))), expect: tc.expect, items: 1})
	}
	res := make([]string, 20_000)
	for i := range res {
		res[i] = jsonResource(fmt.Sprintf(`"sweep-json-res-%d"`, i%50), span(`"r"`))
	}
	out = append(out, sweepCase{name: "20,000 resources", body: []byte(`{"resourceSpans":[` + strings.Join(res, ",") + `]}`), expect: expectStored})
	out = append(out, sweepCase{name: "64 KiB attribute key", body: []byte(jsonTraceBody(`"sweep-json-key"`,
		jsonSpan(r, `"k"`, start, end, `{"key":"`+strings.Repeat("k", 64<<10)+`","value":{"stringValue":"v"}}`))), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "40 KB span name", body: []byte(jsonTraceBody(`"sweep-json-name"`, span(`"`+strings.Repeat("n", 40_000)+`"`))), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "40 KB service name", body: []byte(jsonTraceBody(`"sweep-`+strings.Repeat("s", 40_000)+`"`, span(`"x"`))), expect: expectAny, items: 1})
	out = append(out, sweepCase{name: "gzip bomb", body: gzipBomb(), gzip: true, expect: expectRefused})
	return out
}

// jsonMetricCases are a smaller OTLP/JSON metrics sweep.
func jsonMetricCases(r *rand.Rand, now time.Time) []sweepCase {
	ts := fmt.Sprintf(`"%d"`, now.Add(-30*time.Second).UnixNano())
	body := func(svc, name, ts, attrs string) []byte {
		return []byte(`{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":` + svc +
			`}}]},"scopeMetrics":[{"metrics":[{"name":` + name + `,"gauge":{"dataPoints":[{"timeUnixNano":` + ts +
			`,"asDouble":1,"attributes":[` + attrs + `]}]}}]}]}]}`)
	}
	out := randomCases(r)
	out = append(out, truncations(body(`"sweep-mj"`, `"sweep.gauge"`, ts, ""))...)
	deep := strings.Repeat(`{"kvlistValue":{"values":[{"key":"k","value":`, 10_000) + `{"stringValue":"x"}` + strings.Repeat(`}]}}`, 10_000)
	out = append(out,
		sweepCase{name: "10,000-deep kvlist", body: body(`"sweep-mj"`, `"sweep.deep"`, ts, `{"key":"deep","value":`+deep+`}`), expect: expectRefused, items: 1},
		sweepCase{name: "invalid UTF-8 in the metric name", body: body(`"sweep-mj"`, `"`+badUTF8+`"`, ts, ""), expect: expectRefused, items: 1},
		sweepCase{name: "time 2^64-1", body: body(`"sweep-mj"`, `"sweep.time"`, `"18446744073709551615"`, ""), expect: expectRefused, items: 1},
		sweepCase{name: "40 KB metric name", body: body(`"sweep-mj"`, `"sweep.`+strings.Repeat("n", 40_000)+`"`, ts, ""), expect: expectAny, items: 1},
		sweepCase{name: "gzip bomb", body: gzipBomb(), gzip: true, expect: expectRefused},
	)
	return out
}

// zipkinSpan is a Zipkin v2 span with fields spliced in raw.
func zipkinSpan(r *rand.Rand, svc, name, ts, dur, tags string) string {
	return fmt.Sprintf(`{"traceId":"%x","id":"%x","name":%s,"kind":"SERVER","timestamp":%s,"duration":%s,"localEndpoint":{"serviceName":%s},"tags":{%s}}`,
		randBytes(r, 16), randBytes(r, 8), name, ts, dur, svc, tags)
}

// zipkinCases are the Zipkin v2 JSON bodies of the sweep (for the Zipkin
// receiver and the import).
func zipkinCases(r *rand.Rand, now time.Time) []sweepCase {
	ts := fmt.Sprint(now.Add(-30 * time.Second).UnixMicro())
	span := func(svc, name string) string { return zipkinSpan(r, svc, name, ts, "1000", "") }
	arr := func(spans ...string) []byte { return []byte("[" + strings.Join(spans, ",") + "]") }
	out := randomCases(r)
	out = append(out, truncations(arr(span(`"sweep-zipkin"`, `"a"`), span(`"sweep-zipkin"`, `"b"`)))...)
	out = append(out, sweepCase{name: "10,000-deep brackets", body: []byte(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)), expect: expectRefused})
	out = append(out, sweepCase{name: "10,000-deep objects in a tag",
		body: arr(zipkinSpan(r, `"sweep-zipkin"`, `"deep"`, ts, "1000", `"deep":`+strings.Repeat(`{"a":`, 10_000)+`1`+strings.Repeat(`}`, 10_000))), expect: expectRefused})
	var tags strings.Builder
	for i := range 100_000 {
		if i > 0 {
			tags.WriteByte(',')
		}
		fmt.Fprintf(&tags, `"k%d":"v"`, i)
	}
	out = append(out, sweepCase{name: "1e5 tags", body: arr(zipkinSpan(r, `"sweep-zipkin-many"`, `"many"`, ts, "1000", tags.String())), expect: expectAny})
	for where, body := range map[string][]byte{
		"span name":    arr(span(`"sweep-zipkin-utf8"`, `"`+badUTF8+`"`)),
		"tag key":      arr(zipkinSpan(r, `"sweep-zipkin-utf8"`, `"u"`, ts, "1000", `"`+badUTF8+`":"v"`)),
		"tag value":    arr(zipkinSpan(r, `"sweep-zipkin-utf8"`, `"u"`, ts, "1000", `"k":"`+badUTF8+`"`)),
		"service name": arr(span(`"`+badUTF8+`"`, `"u"`)),
	} {
		// encoding/json turns invalid UTF-8 into U+FFFD, so what is
		// stored is valid: storing it is as right as refusing it.
		out = append(out, sweepCase{name: "invalid UTF-8 in the " + where, body: body, expect: expectAny})
	}
	for _, tc := range []struct {
		name, ts, dur string
		expect        expectation
	}{
		{"timestamp 0", "0", "0", expectAny},
		{"timestamp 2^63-1", "9223372036854775807", "1", expectRefused},
		{"timestamp 2^64-1", "18446744073709551615", "1", expectRefused},
		{"duration 2^63-1", ts, "9223372036854775807", expectRefused},
		{"negative duration", ts, "-1000", expectRefused},
	} {
		out = append(out, sweepCase{name: tc.name, body: arr(zipkinSpan(r, `"sweep-zipkin-time"`, `"t"`, tc.ts, tc.dur, "")), expect: tc.expect})
	}
	many := make([]string, 20_000)
	for i := range many {
		many[i] = span(fmt.Sprintf(`"sweep-zipkin-res-%d"`, i%50), `"r"`)
	}
	out = append(out, sweepCase{name: "20,000 services' spans", body: arr(many...), expect: expectStored})
	out = append(out, sweepCase{name: "64 KiB tag key", body: arr(zipkinSpan(r, `"sweep-zipkin-key"`, `"k"`, ts, "1000", `"`+strings.Repeat("k", 64<<10)+`":"v"`)), expect: expectAny})
	out = append(out, sweepCase{name: "40 KB span name", body: arr(span(`"sweep-zipkin-name"`, `"`+strings.Repeat("n", 40_000)+`"`)), expect: expectAny})
	out = append(out, sweepCase{name: "40 KB service name", body: arr(span(`"sweep-`+strings.Repeat("s", 40_000)+`"`, `"x"`)), expect: expectAny})
	out = append(out, sweepCase{name: "gzip bomb", body: gzipBomb(), gzip: true, expect: expectRefused})
	return out
}

// zipkinV1Cases are a smaller Zipkin v1 sweep.
func zipkinV1Cases(r *rand.Rand, now time.Time) []sweepCase {
	ts := now.Add(-30 * time.Second).UnixMicro()
	span := func(svc, name string, ts, dur int64) string {
		return fmt.Sprintf(`{"traceId":"%x","id":"%x","name":%s,"timestamp":%d,"duration":%d,"annotations":[{"timestamp":%d,"value":"sr","endpoint":{"serviceName":%s}}]}`,
			randBytes(r, 8), randBytes(r, 8), name, ts, dur, ts, svc)
	}
	out := randomCases(r)
	out = append(out, truncations([]byte("["+span(`"sweep-zipkin1"`, `"a"`, ts, 1000)+"]"))...)
	out = append(out,
		sweepCase{name: "10,000-deep brackets", body: []byte(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)), expect: expectRefused},
		sweepCase{name: "invalid UTF-8 in the span name", body: []byte("[" + span(`"sweep-zipkin1"`, `"`+badUTF8+`"`, ts, 1000) + "]"), expect: expectAny},
		sweepCase{name: "timestamp 2^63-1", body: []byte("[" + span(`"sweep-zipkin1"`, `"t"`, 1<<63-1, 1) + "]"), expect: expectRefused},
		sweepCase{name: "40 KB service name", body: []byte("[" + span(`"sweep-`+strings.Repeat("s", 40_000)+`"`, `"x"`, ts, 1000) + "]"), expect: expectAny},
		sweepCase{name: "gzip bomb", body: gzipBomb(), gzip: true, expect: expectRefused},
	)
	return out
}
