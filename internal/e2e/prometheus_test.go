package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestPrometheusScrapesREDMetrics is the acceptance test of the RED
// metrics exposition (GET /api/v1/prometheus/metrics) with the real
// Prometheus (Debian's prometheus package: prometheus and promtool).
//
// The in-process collector receives a minute of shop traffic through the
// OpenTelemetry Go SDK — four services, four edges (one into an
// uninstrumented database), nine operations of every kind, errors and
// two-mode latencies — while a Prometheus server scrapes it every 2 s.
// promtool check metrics passes the exposition without a lint problem.
// Once the traffic stopped and Prometheus scraped again, its instant
// queries give for every edge, service and operation exactly the request
// and error counts of Flowscope's own flow graph and latency API over the
// range the counters count (from flowscope_red_start_time_seconds, the
// origin, to the end), the same histogram _count as the timed spans, and
// histogram_quantile of the classic buckets falls in the bucket that holds
// Flowscope's own quantile (the classic buckets are exact at HDR
// resolution, so that bucket is the one the rank is in).
func TestPrometheusScrapesREDMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus for a minute; skipped under -short")
	}
	promBin, promtool := lookPrometheus(t)
	// Start the collector early in a 10-second window, so that the first
	// traces (which end when sent) start before the counters' origin, the
	// start of that window: the comparison below must use the origin.
	if into := time.Now().UnixMilli() % 10000; into > 300 {
		time.Sleep(time.Duration(10000-into+50) * time.Millisecond)
	}
	begin := time.Now().Add(-time.Second)
	s := startServer(t, "")
	const path = "/api/v1/prometheus/metrics"

	traffic := startShopTraffic(t, s.addrs.OTLPGRPC, 20)
	prom := startPrometheus(t, promBin, s.addrs.HTTP, path)
	waitFor(t, 30*time.Second, "the exposition lists the shop's edges", func() (bool, string) {
		_, body := s.get(t, path)
		return strings.Count(string(body), "flowscope_red_edge_requests_total{") >= 4, fmt.Sprintf("%d traces sent", traffic.count())
	})
	checkPromtool(t, promtool, s, path)

	// About a minute of traffic, scraped as it comes.
	time.Sleep(50 * time.Second)
	stopAt := time.Now()
	traffic.stop() // flushes the SDKs: everything sent is acknowledged
	stopped := time.Now()
	t.Logf("%d traces sent in %.0fs", traffic.count(), stopped.Sub(begin).Seconds())
	// A non-NaN p99 was scraped while the traffic ran.
	if v := prom.query(t, `flowscope_red_edge_duration_quantile_seconds{source="checkout",target="payments",quantile="0.99"}`, stopAt); len(v) != 1 ||
		!(v[0].value > 0.01 && v[0].value < 1) {
		t.Errorf("p99 gauge of checkout → payments during the traffic: %+v", v)
	}
	waitFor(t, 30*time.Second, "Prometheus scrapes after the traffic stopped", func() (bool, string) {
		v := prom.query(t, `timestamp(up{job="flowscope"})`, time.Time{})
		return len(v) == 1 && v[0].value > float64(stopped.UnixMilli())/1e3, fmt.Sprintf("%+v", v)
	})
	if v := prom.query(t, `up{job="flowscope"}`, time.Time{}); len(v) != 1 || v[0].value != 1 {
		t.Fatalf("up = %+v: scrapes failed:\n%s", v, prom.logText())
	}
	end := time.Now()
	// The counters count from the origin, the start of the 10-second window
	// the collector started in; the traces end when sent, so the first ones
	// can start before it (up to half a second): Flowscope's own answers
	// are asked for [origin, end], the range the counters promise to equal.
	originS := prom.scalar(t, `flowscope_red_start_time_seconds{job="flowscope"}`)
	origin := time.Unix(int64(originS), 0)
	if originS != math.Trunc(originS) || int64(originS)%10 != 0 || origin.Before(begin.Add(-10*time.Second)) || origin.After(begin.Add(10*time.Second)) {
		t.Fatalf("flowscope_red_start_time_seconds = %v: want the start of the 10-second window the collector started in (about %s)", originS, begin.Format(time.RFC3339))
	}
	span := "start=" + url.QueryEscape(origin.UTC().Format(time.RFC3339Nano)) + "&end=" + url.QueryEscape(end.UTC().Format(time.RFC3339Nano))

	// Edges: the flow graph's calls and errors.
	var fg struct {
		Nodes []struct {
			ID      string
			Virtual bool
		}
		Edges []struct {
			Source, Target string
			Calls, Errors  float64
		}
	}
	getJSON(t, s, "/api/v1/flowgraph?"+span, &fg)
	promReqs := byLabels(prom.query(t, `flowscope_red_edge_requests_total`, time.Time{}), "source", "target")
	promErrs := byLabels(prom.query(t, `flowscope_red_edge_errors_total`, time.Time{}), "source", "target")
	if len(fg.Edges) != 4 || len(promReqs) != len(fg.Edges) {
		t.Errorf("flow graph edges %+v, Prometheus has %v", fg.Edges, promReqs)
	}
	var edges [][2]string
	for _, e := range fg.Edges {
		k := e.Source + "|" + e.Target
		if promReqs[k] != e.Calls || promErrs[k] != e.Errors || e.Calls == 0 {
			t.Errorf("edge %s → %s: Prometheus %v requests %v errors, flow graph %v calls %v errors", e.Source, e.Target, promReqs[k], promErrs[k], e.Calls, e.Errors)
		}
		edges = append(edges, [2]string{e.Source, e.Target})
	}
	if promErrs["checkout|payments"] == 0 {
		t.Error("no failed call from checkout to payments")
	}

	// Services and operations: /api/v1/latency's counts.
	var services []string
	for _, n := range fg.Nodes {
		if !n.Virtual {
			services = append(services, n.ID)
		}
	}
	svcReqs := byLabels(prom.query(t, `flowscope_red_service_requests_total`, time.Time{}), "service")
	if len(services) != 4 || len(svcReqs) != len(services) {
		t.Errorf("services %v, Prometheus has %v", services, svcReqs)
	}
	opReqs := byLabels(prom.query(t, `flowscope_red_operation_requests_total`, time.Time{}), "service", "operation", "kind")
	if len(opReqs) != len(shopOperations) {
		t.Errorf("Prometheus has operations %v, want %v", opReqs, shopOperations)
	}
	type sel struct {
		family  string // service, edge, operation
		labels  []string
		latency string // the /api/v1/latency query
	}
	var sels []sel
	for _, svc := range services {
		sels = append(sels, sel{"service", []string{"service", svc}, "service=" + url.QueryEscape(svc)})
	}
	for _, e := range edges {
		sels = append(sels, sel{"edge", []string{"source", e[0], "target", e[1]}, "source=" + url.QueryEscape(e[0]) + "&target=" + url.QueryEscape(e[1])})
	}
	for _, op := range shopOperations {
		sels = append(sels, sel{"operation", []string{"service", op[0], "operation", op[1], "kind", op[2]},
			"service=" + url.QueryEscape(op[0]) + "&operation=" + url.QueryEscape(op[1]) + "&kind=" + op[2]})
	}
	quantiles := []float64{0.5, 0.9, 0.99}
	for _, sl := range sels {
		matcher := promMatcher(sl.labels)
		name := "flowscope_red_" + sl.family
		var lat struct {
			Count, Errors, TimedCount float64
			Quantiles                 []struct {
				Quantile float64
				Value    *float64
			}
		}
		getJSON(t, s, "/api/v1/latency?"+span+"&quantiles=0.5,0.9,0.99&"+sl.latency, &lat)
		reqs := prom.scalar(t, name+"_requests_total"+matcher)
		errs := prom.scalar(t, name+"_errors_total"+matcher)
		count := prom.scalar(t, name+"_duration_seconds_count"+matcher)
		if reqs != lat.Count || errs != lat.Errors || count != lat.TimedCount || lat.Count == 0 {
			t.Errorf("%s%s: Prometheus requests %v errors %v _count %v; /latency count %v errors %v timedCount %v",
				name, matcher, reqs, errs, count, lat.Count, lat.Errors, lat.TimedCount)
		}
		buckets := prom.buckets(t, name+"_duration_seconds_bucket"+matcher)
		for i, q := range quantiles {
			if lat.Quantiles[i].Value == nil {
				t.Errorf("%s%s: /latency has no q%v", name, matcher, q)
				continue
			}
			flowscope := *lat.Quantiles[i].Value / 1e9
			estimate := prom.scalar(t, fmt.Sprintf("histogram_quantile(%v, %s_duration_seconds_bucket%s)", q, name, matcher))
			lo, hi := rankBucket(buckets, q)
			if !(estimate >= lo && estimate <= hi) || !(flowscope > lo && flowscope <= hi) {
				t.Errorf("%s%s q%v: histogram_quantile %v, Flowscope %v: want both in the bucket (%v, %v] holding the rank (buckets %v)",
					name, matcher, q, estimate, flowscope, lo, hi, buckets)
			}
		}
	}
	if t.Failed() {
		_, body := s.get(t, path)
		t.Logf("last exposition:\n%s", body)
	}
}

// lookPrometheus finds the prometheus and promtool binaries.
func lookPrometheus(t *testing.T) (prom, promtool string) {
	t.Helper()
	for _, name := range []string{"prometheus", "/usr/bin/prometheus"} {
		if p, err := exec.LookPath(name); err == nil {
			prom = p
			break
		}
	}
	for _, name := range []string{"promtool", "/usr/bin/promtool"} {
		if p, err := exec.LookPath(name); err == nil {
			promtool = p
			break
		}
	}
	if prom == "" || promtool == "" {
		skipUnlessCI(t, "Prometheus is not installed: apt-get install prometheus")
	}
	return prom, promtool
}

// checkPromtool runs promtool check metrics on an exposition: it must
// parse and raise no lint problem.
func checkPromtool(t *testing.T, promtool string, s *server, path string) {
	t.Helper()
	code, body := s.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out, body)
	}
}

// shopOperations are the operations of the shop traffic (service, span
// name, kind).
var shopOperations = [][3]string{
	{"gateway", "GET /shop", "server"},
	{"gateway", "GET /cart", "client"},
	{"gateway", "POST /checkout", "client"},
	{"cart", "GET /cart", "server"},
	{"cart", "render", "internal"},
	{"checkout", "POST /checkout", "server"},
	{"checkout", "INSERT orders", "client"},
	{"checkout", "charge", "client"},
	{"payments", "charge", "server"},
}

// shopTraffic sends the shop's traces through the OpenTelemetry SDK, one
// exporter per service: gateway serves GET /shop and calls cart (GET /cart,
// which renders: internal) and checkout (POST /checkout), which inserts
// into postgresql (no server half: a virtual node) and charges payments.
// Latencies have two modes; payments fails 8% of the charges, and the
// failure propagates to checkout and gateway.
type shopTraffic struct {
	tracers   map[string]trace.Tracer
	providers []*sdktrace.TracerProvider
	mu        sync.Mutex
	n         int
	quit      chan struct{}
	done      chan struct{}
	once      sync.Once
}

func startShopTraffic(t testing.TB, grpcAddr string, perSecond int) *shopTraffic {
	t.Helper()
	tr := &shopTraffic{tracers: map[string]trace.Tracer{}, quit: make(chan struct{}), done: make(chan struct{})}
	for _, svc := range []string{"gateway", "cart", "checkout", "payments"} {
		exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
			attribute.String("service.name", svc), attribute.String("service.instance.id", svc+"-1"))
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(100*time.Millisecond)))
		tr.providers = append(tr.providers, tp)
		tr.tracers[svc] = tp.Tracer("e2e/shop")
	}
	go tr.run(perSecond)
	t.Cleanup(tr.stop)
	return tr
}

func (tr *shopTraffic) run(perSecond int) {
	defer close(tr.done)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for {
		for range max(1, perSecond/10) {
			tr.one(rng)
		}
		select {
		case <-tr.quit:
			return
		case <-tk.C:
		}
	}
}

// between returns a duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// one emits one trace ending now.
func (tr *shopTraffic) one(rng *rand.Rand) {
	ms := time.Millisecond
	cartD := between(rng, 2*ms, 5*ms)
	if rng.IntN(10) < 3 {
		cartD = between(rng, 30*ms, 60*ms)
	}
	payD := between(rng, 15*ms, 30*ms)
	if rng.IntN(10) < 2 {
		payD = between(rng, 200*ms, 400*ms)
	}
	dbD := between(rng, ms, 3*ms)
	payFails := rng.IntN(100) < 8
	checkoutD := dbD + payD + 2*ms
	total := cartD + checkoutD + 4*ms
	end := time.Now()
	start := end.Add(-total)
	at := func(d time.Duration) trace.SpanStartEventOption { return trace.WithTimestamp(start.Add(d)) }
	endAt := func(s trace.Span, d time.Duration) { s.End(trace.WithTimestamp(start.Add(d))) }
	fail := func(s trace.Span) { s.SetStatus(codes.Error, "payment declined") }
	remote := func(s trace.Span) context.Context {
		return trace.ContextWithRemoteSpanContext(context.Background(), s.SpanContext())
	}

	ctx, root := tr.tracers["gateway"].Start(context.Background(), "GET /shop", trace.WithSpanKind(trace.SpanKindServer), at(0))
	_, cartC := tr.tracers["gateway"].Start(ctx, "GET /cart", trace.WithSpanKind(trace.SpanKindClient), at(ms),
		trace.WithAttributes(attribute.String("peer.service", "cart")))
	cctx, cartS := tr.tracers["cart"].Start(remote(cartC), "GET /cart", trace.WithSpanKind(trace.SpanKindServer), at(ms+ms/4))
	_, render := tr.tracers["cart"].Start(cctx, "render", trace.WithSpanKind(trace.SpanKindInternal), at(ms+ms/2))
	endAt(render, ms+ms/2+cartD/2)
	endAt(cartS, ms+cartD-ms/4)
	endAt(cartC, ms+cartD)

	off := 2*ms + cartD
	_, coC := tr.tracers["gateway"].Start(ctx, "POST /checkout", trace.WithSpanKind(trace.SpanKindClient), at(off),
		trace.WithAttributes(attribute.String("peer.service", "checkout")))
	kctx, coS := tr.tracers["checkout"].Start(remote(coC), "POST /checkout", trace.WithSpanKind(trace.SpanKindServer), at(off+ms/4))
	_, db := tr.tracers["checkout"].Start(kctx, "INSERT orders", trace.WithSpanKind(trace.SpanKindClient), at(off+ms/2),
		trace.WithAttributes(attribute.String("db.system", "postgresql")))
	endAt(db, off+ms/2+dbD)
	_, payC := tr.tracers["checkout"].Start(kctx, "charge", trace.WithSpanKind(trace.SpanKindClient), at(off+ms+dbD),
		trace.WithAttributes(attribute.String("peer.service", "payments")))
	_, payS := tr.tracers["payments"].Start(remote(payC), "charge", trace.WithSpanKind(trace.SpanKindServer), at(off+ms+dbD+ms/4))
	if payFails {
		fail(payS)
		fail(payC)
		fail(coS)
		fail(root)
	}
	endAt(payS, off+ms+dbD+payD-ms/4)
	endAt(payC, off+ms+dbD+payD)
	endAt(coS, off+checkoutD-ms/4)
	endAt(coC, off+checkoutD)
	endAt(root, total)
	tr.mu.Lock()
	tr.n++
	tr.mu.Unlock()
}

func (tr *shopTraffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.n
}

// stop ends the traffic and flushes the SDKs.
func (tr *shopTraffic) stop() {
	tr.once.Do(func() {
		close(tr.quit)
		<-tr.done
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		for _, tp := range tr.providers {
			_ = tp.Shutdown(ctx)
		}
	})
}

// promServer is a Prometheus process of the test.
type promServer struct {
	url string // http://127.0.0.1:PORT
	cmd *exec.Cmd

	mu  sync.Mutex
	log bytes.Buffer
}

func (p *promServer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *promServer) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startPrometheus starts Prometheus on its own port and storage, scraping
// path on target every 2 s.
func startPrometheus(t *testing.T, bin, target, path string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 1m
scrape_configs:
  - job_name: flowscope
    metrics_path: %s
    static_configs:
      - targets: [%q]
`, path, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	for try := 0; try < 3; try++ { // the reserved port may be taken meanwhile
		addr := reserveAddr(t)
		p := &promServer{url: "http://" + addr}
		p.cmd = exec.Command(bin,
			"--config.file="+cfgPath,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data%d", try)),
			"--web.listen-address="+addr,
			"--log.level=info")
		p.cmd.Stdout, p.cmd.Stderr = p, p
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { p.cmd.Wait(); close(exited) }()
		stop := func() {
			select {
			case <-exited:
				return
			default:
			}
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-exited
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			resp, err := http.Get(p.url + "/-/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Cleanup(func() {
						stop()
						if t.Failed() {
							t.Logf("Prometheus log:\n%s", p.logText())
						}
					})
					return p
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		stop()
		lastErr = p.logText()
	}
	t.Fatalf("Prometheus did not become ready:\n%s", lastErr)
	return nil
}

// promSample is one element of an instant vector.
type promSample struct {
	labels map[string]string
	value  float64
}

// query runs an instant query at ts (zero: now).
func (p *promServer) query(t testing.TB, q string, ts time.Time) []promSample {
	t.Helper()
	u := p.url + "/api/v1/query?query=" + url.QueryEscape(q)
	if !ts.IsZero() {
		u += "&time=" + strconv.FormatFloat(float64(ts.UnixMilli())/1e3, 'f', 3, 64)
	}
	resp, err := apiClient.Get(u)
	if err != nil {
		t.Fatalf("Prometheus query %s: %v", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" || r.Data.ResultType != "vector" {
		t.Fatalf("Prometheus query %s: %d %s", q, resp.StatusCode, body)
	}
	out := make([]promSample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			t.Fatalf("Prometheus query %s: value %v", q, s.Value)
		}
		out = append(out, promSample{labels: s.Metric, value: v})
	}
	return out
}

// scalar runs a query that must give one sample.
func (p *promServer) scalar(t testing.TB, q string) float64 {
	t.Helper()
	v := p.query(t, q, time.Time{})
	if len(v) != 1 {
		t.Fatalf("Prometheus query %s: %d samples, want 1: %+v", q, len(v), v)
	}
	return v[0].value
}

// promBucket is a classic bucket: upper bound and cumulative count.
type promBucket struct{ le, count float64 }

// buckets returns the _bucket series of one histogram, by ascending le.
func (p *promServer) buckets(t testing.TB, q string) []promBucket {
	t.Helper()
	var out []promBucket
	for _, s := range p.query(t, q, time.Time{}) {
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			t.Fatalf("le %q: %v", s.labels["le"], err)
		}
		out = append(out, promBucket{le, s.value})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].le < out[j].le })
	if len(out) == 0 || !math.IsInf(out[len(out)-1].le, 1) {
		t.Fatalf("%s: no +Inf bucket: %v", q, out)
	}
	return out
}

// rankBucket returns the bucket (lo, hi] holding the rank q·n, as
// histogram_quantile finds it: the first whose cumulative count reaches
// the rank.
func rankBucket(bs []promBucket, q float64) (lo, hi float64) {
	rank := q * bs[len(bs)-1].count
	for i, b := range bs {
		if b.count >= rank {
			if i > 0 {
				lo = bs[i-1].le
			}
			return lo, b.le
		}
	}
	return math.NaN(), math.NaN()
}

// byLabels maps samples by the values of the given labels, joined by |.
func byLabels(v []promSample, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v {
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = s.labels[n]
		}
		out[strings.Join(parts, "|")] = s.value
	}
	return out
}

// promMatcher renders label pairs as a PromQL selector.
func promMatcher(pairs []string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, pairs[i]+"="+strconv.Quote(pairs[i+1]))
	}
	slices.Sort(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

// getJSON decodes the JSON answer of an API path.
func getJSON(t testing.TB, s *server, path string, v any) {
	t.Helper()
	code, body := s.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}
