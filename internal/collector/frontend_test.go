package collector

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/store"
)

// postCalls sends n frontend → checkout calls of duration d, client and
// server halves, ending now, to c's OTLP/HTTP receiver.
func postCalls(t *testing.T, c *Collector, n int, d time.Duration, seed uint64) {
	t.Helper()
	req := &coltracepb.ExportTraceServiceRequest{}
	end := time.Now()
	for i := range n {
		tid := otlptest.TraceID(seed*1000 + uint64(i))
		st := uint64(end.Add(-d).UnixNano())
		client := &tracepb.Span{TraceId: tid, SpanId: otlptest.SpanID(seed*10000 + uint64(2*i)), Name: "POST /checkout",
			Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: st, EndTimeUnixNano: st + uint64(d)}
		server := &tracepb.Span{TraceId: tid, SpanId: otlptest.SpanID(seed*10000 + uint64(2*i+1)), ParentSpanId: client.SpanId,
			Name: "checkout", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: st + 1000, EndTimeUnixNano: st + uint64(d) - 1000}
		for _, s := range []struct {
			svc  string
			span *tracepb.Span
		}{{"frontend", client}, {"checkout", server}} {
			req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
				Resource:   resourceOf(s.svc),
				ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{s.span}}},
			})
		}
	}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+c.Addrs().OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post calls: %s", resp.Status)
	}
}

// TestFrontEndAlertsOnMergedView: a p99 rule on a query front end fires
// on the merged view when no node alone would (one node holds the fast
// calls, the other the two slow ones, under the rule's min_count), and
// while a node is down its evaluation fails naming the node and the alert
// stays firing instead of resolving on half the data.
func TestFrontEndAlertsOnMergedView(t *testing.T) {
	fast, slow := startTest(t, ""), startTest(t, "")
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yml")
	if err := os.WriteFile(rulesPath, []byte(`rules:
  - alert: CheckoutSlow
    select: {source: frontend, target: checkout}
    signal: p99
    above: 200ms
    window: 1m
    min_count: 5
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.Alerting.Rules = rulesPath
	cfg.Alerting.Interval = 200 * time.Millisecond
	slowURL := "http://" + slow.Addrs().HTTP
	cfg.Query.Peers = []string{"http://" + fast.Addrs().HTTP, slowURL}
	cfg.Query.PeerTimeout = time.Second
	front, err := StartQuery(context.Background(), cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		front.Shutdown(ctx)
	})
	postCalls(t, fast, 100, 15*time.Millisecond, 1)
	postCalls(t, slow, 2, 400*time.Millisecond, 2)

	firing := func() bool {
		for _, a := range front.Alerts.Alerts() {
			if a.Rule == "CheckoutSlow" && a.State == store.AlertFiring {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(20 * time.Second)
	for !firing() {
		if time.Now().After(deadline) {
			t.Fatalf("the merged p99 (2 of 102 calls at 400ms) did not fire: %+v", front.Alerts.Status().Rules)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Neither node alone would fire: one has only fast calls, the other
	// fewer than min_count.
	for name, c := range map[string]*Collector{"fast": fast, "slow": slow} {
		if len(c.Alerts.Alerts()) != 0 {
			t.Errorf("node %s has alerts without rules", name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := slow.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		st := front.Alerts.Status().Rules[0]
		if st.Health == "error" && strings.Contains(st.LastError, slowURL) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with a node down, rule health %q, error %q; want error naming %s", st.Health, st.LastError, slowURL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // several failed evaluations
	if !firing() {
		t.Errorf("the alert resolved while a node was down: %+v", front.Alerts.Alerts())
	}
}

func resourceOf(service string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", service)}}
}
