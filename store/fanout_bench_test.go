package store_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/query"
	"github.com/flowscope/flowscope/query/fanout"
	"github.com/flowscope/flowscope/store"
)

type benchPeers []string

func (p benchPeers) Current() []string { return p }

// BenchmarkFrontEndFlowGraph24h compares the 24-hour flow graph asked of
// one node holding everything with the same graph asked of a query front
// end over three nodes holding it split by trace ID (issue 19: at most
// 2×). Both are asked through the REST API (GET /api/v1/flowgraph), the
// nodes answer the front end over HTTP on loopback; the data is
// BenchmarkFlowGraph24h's (100 services, 300 edges, traffic every
// minute, flushed and compacted as a running collector does). All four
// stores and the front end share this machine's cores, so the three
// nodes' work runs on the cores the single node has to itself.
//
//	go test -run=^$ -bench=FrontEndFlowGraph24h -benchtime=40x ./store
func BenchmarkFrontEndFlowGraph24h(b *testing.B) {
	const services, edges, nodes = 100, 300, 3
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := start
	clock := func() time.Time { return now }
	open := func() *store.DB {
		db, err := store.Open(b.TempDir(), store.Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
			RollupFlushInterval: time.Hour, Now: clock})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
	single := open()
	parts := make([]*store.DB, nodes)
	for i := range parts {
		parts[i] = open()
	}
	all := append([]*store.DB{single}, parts...)
	write := func(db *store.DB, req *coltracepb.ExportTraceServiceRequest) {
		if len(req.ResourceSpans) == 0 {
			return
		}
		raw, err := proto.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.WriteTraces(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
	}
	mesh := otlptest.NewMesh(services, edges, start, 1)
	for minute := 0; minute < 24*60; minute++ {
		req := &coltracepb.ExportTraceServiceRequest{}
		split := make([]*coltracepb.ExportTraceServiceRequest, nodes)
		for i := range split {
			split[i] = &coltracepb.ExportTraceServiceRequest{}
		}
		for _, call := range mesh.Minute(minute) {
			req.ResourceSpans = append(req.ResourceSpans, call[0], call[1])
			h := fnv.New32a()
			h.Write(call[0].ScopeSpans[0].Spans[0].TraceId)
			o := split[h.Sum32()%nodes]
			o.ResourceSpans = append(o.ResourceSpans, call[0], call[1])
		}
		write(single, req)
		for i, part := range split {
			write(parts[i], part)
		}
		now = start.Add(time.Duration(minute+1) * time.Minute)
		for _, db := range all {
			if err := db.FlushRollupsForTest(true); err != nil {
				b.Fatal(err)
			}
			if minute%10 == 9 {
				if err := db.CompactRollupsForTest(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	now = start.Add(24*time.Hour + 30*time.Second)
	for _, db := range all {
		if err := db.FlushRollupsForTest(true); err != nil {
			b.Fatal(err)
		}
		if err := db.CompactRollupsForTest(); err != nil {
			b.Fatal(err)
		}
		if err := db.CheckpointForTest(); err != nil {
			b.Fatal(err)
		}
	}
	api := func(st query.Store) *httptest.Server {
		gw, err := query.NewGatewayHandler(context.Background(), query.NewService(st, query.ServiceOptions{Now: clock}))
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(fanout.Middleware(gw))
		b.Cleanup(srv.Close)
		return srv
	}
	var urls []string
	for _, db := range parts {
		srv := httptest.NewServer(fanout.NewPeerHandler(fanout.PeerOptions{Source: db, Geometry: db.Geometry()}))
		b.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	singleAPI := api(single)
	frontAPI := api(fanout.New(fanout.Options{Peers: benchPeers(urls), Local: single}))
	path := fmt.Sprintf("/api/v1/flowgraph?start=%d&end=%d", now.Add(-24*time.Hour).UnixMilli(), now.UnixMilli())
	fetch := func(base string) ([]byte, time.Duration) {
		t := time.Now()
		resp, err := http.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get(fanout.HeaderPartial) != "" {
			b.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, body)
		}
		return body, time.Since(t)
	}
	one, _ := fetch(singleAPI.URL)
	front, _ := fetch(frontAPI.URL)
	if string(one) != string(front) {
		b.Fatalf("the front end's 24 h flow graph differs from one node's (%d vs %d bytes)", len(front), len(one))
	}
	// With -v, where the front end's time goes: the nodes' graphs and
	// their encoding (each node alone), and the merge.
	if testing.Verbose() {
		ctx := context.Background()
		from, to := now.Add(-24*time.Hour), now
		for range 4 {
			t0 := time.Now()
			if _, err := single.FlowGraph(ctx, from, to, aggregate.GraphQuery{}); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			var per []time.Duration
			var encs [][]byte
			for _, p := range parts {
				a := time.Now()
				pg, err := p.FlowGraph(ctx, from, to, aggregate.GraphQuery{})
				if err != nil {
					b.Fatal(err)
				}
				per = append(per, time.Since(a))
				a = time.Now()
				encs = append(encs, aggregate.AppendGraph(nil, pg, p.Geometry()))
				per = append(per, time.Since(a))
			}
			t2 := time.Now()
			m := aggregate.NewGraphMerger()
			for _, e := range encs {
				if err := m.Add(e); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := m.Result(); err != nil {
				b.Fatal(err)
			}
			t3 := time.Now()
			b.Logf("single %v; nodes graph/encode %v; merge %v", t1.Sub(t0), per, t3.Sub(t2))
		}
	}
	var ts, tf []time.Duration
	b.ResetTimer()
	for b.Loop() {
		// Interleaved, so that both see the same machine.
		_, d := fetch(singleAPI.URL)
		ts = append(ts, d)
		_, d = fetch(frontAPI.URL)
		tf = append(tf, d)
	}
	slices.Sort(ts)
	slices.Sort(tf)
	p50 := func(x []time.Duration) float64 { return float64(x[len(x)/2].Microseconds()) / 1000 }
	p90 := func(x []time.Duration) float64 { return float64(x[len(x)*9/10].Microseconds()) / 1000 }
	b.ReportMetric(p50(ts), "single-p50-ms")
	b.ReportMetric(p50(tf), "front-p50-ms")
	b.ReportMetric(p90(ts), "single-p90-ms")
	b.ReportMetric(p90(tf), "front-p90-ms")
	b.ReportMetric(p50(tf)/p50(ts), "front/single-p50")
}
