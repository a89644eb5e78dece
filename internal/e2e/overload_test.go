package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/collector"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Shape of the overload test (issue 10, item 6): 2 clients sending 13 MB
// OTLP/HTTP bodies and 8 sending small ones, against a collector with a
// 256 MiB memory budget and aggregation on.
const (
	overloadBudget      = 256 << 20
	overloadBigClients  = 2
	overloadBigBytes    = 13 << 20
	overloadSmall       = 8
	overloadSmallPairs  = 20        // client/server pairs per small request
	overloadSlowConns   = 200       // connections claiming 16 MiB and sending little
	overloadSlowSent    = 960 << 10 // what each of them sends: 1 MiB of buffer once read
	overloadMaxPending  = 100_000   // aggregation.max_pending (default 1,000,000)
	overloadPhase1      = 15 * time.Second
	overloadPhase2Max   = 30 * time.Second // bound on the SDK phase
	overloadSDKSenders  = 6                // 4 over OTLP/HTTP, 2 over OTLP/gRPC
	overloadSDKBatches  = 2                // export calls per sender
	overloadSDKPairs    = 200              // pairs per export call
	overloadPayloadSize = 4 << 10          // a big request's span attribute
	// overloadSlack is the allowed RSS growth over the budget: 25 %.
	overloadSlack = 1.25
	// overloadFileSlack allows for the pages of the store file the
	// collector maps while the test runs (clean page cache, which the
	// Go memory limit does not count) and for the soft memory limit's
	// overshoot.
	overloadFileSlack = 32 << 20
)

// overloadEdges are the calls of every big request, in turn.
var overloadEdges = [][2]string{{"gateway", "orders"}, {"gateway", "users"}, {"orders", "stock"}}

// TestOverloadMemoryBudget reproduces issue 10 item 6 on loopback against
// the collector binary (built without -race) with --memory-budget 256MiB,
// aggregation on and aggregation.max_pending at 100,000:
//
//   - phase 1 (15 s): 2 clients send 13 MB OTLP/HTTP protobuf bodies and 8
//     clients small ones, as fast as they are answered, while 200 slow
//     connections claim a 16 MiB body each and send 960 KiB of it (they
//     hold about 200 MiB of the budget until the end);
//   - phase 2 (at most 30 s): while the big clients keep the collector at
//     its limit, 6 OTel Go SDK exporters (default retry: 429 + Retry-After
//     over HTTP, RESOURCE_EXHAUSTED + RetryInfo over gRPC) export 2,400
//     client/server span pairs.
//
// It samples the collector's /proc status every 100 ms and checks:
//
//   - peak VmRSS ≤ RSS₀ + 1.25 × budget + collector.MemoryLimitHeadroom
//     (64 MiB) + 32 MiB, where RSS₀ is the VmRSS of the idle collector just
//     after it became ready (mostly the binary's file pages). The budget
//     bounds the client data in flight; the 25 % covers the garbage not yet
//     collected (the collector sets its Go memory limit to budget × 1.25 +
//     64 MiB); the 64 MiB covers the memory bounded by other settings: the
//     spans waiting for their other half (max_pending × about 200 B: 20 MB
//     here, 200 MB at the default, which is why the test lowers it), the
//     index tail, compression state, the goroutines of 200 connections; the
//     32 MiB covers the store file's pages mapped during the test (clean
//     page cache, outside the Go memory limit) and the soft limit's
//     overshoot;
//   - the collector stays up (answers /healthz, still running);
//   - every refused request (big, small and slow) got 429 with
//     Retry-After, and nothing else failed;
//   - every span pair the SDK exported, and every pair of an acknowledged
//     plain request, is an exact call count of the flow graph.
func TestOverloadMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a minute of overload against the collector binary; skipped under -short")
	}
	bin := sharedCollectorBin(t)
	p := procStartCollector(t, bin, filepath.Join(t.TempDir(), "data"),
		"--memory-budget", strconv.Itoa(overloadBudget), "--aggregation=true",
		"--edge-max-pending", strconv.Itoa(overloadMaxPending))
	p.waitReady(t, 15*time.Second)
	otlpHTTP := p.otlpHTTPAddr
	pid := p.cmd.Process.Pid
	time.Sleep(500 * time.Millisecond) // let the start-up settle
	rss0, err := readProcStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	sampler := startRSSSampler(pid, 100*time.Millisecond)
	defer sampler.stop()

	stop := make(chan struct{})
	var stopOnce sync.Once
	stopLoad := func() { stopOnce.Do(func() { close(stop) }) }
	defer stopLoad()
	var load sync.WaitGroup
	tally := &overloadTally{}
	client := &http.Client{Timeout: 45 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	url := "http://" + otlpHTTP + "/v1/traces"
	for i := range overloadBigClients {
		body := newOverloadBigBody(t, i)
		load.Add(1)
		go func() {
			defer load.Done()
			overloadSendLoop(client, url, stop, tally, &tally.big, func(seq uint32) ([]byte, map[[2]string]int) {
				return body.next(seq), body.pairs
			})
		}()
	}
	var smallSeq atomic.Uint64
	for range overloadSmall {
		load.Add(1)
		go func() {
			defer load.Done()
			overloadSendLoop(client, url, stop, tally, &tally.small, func(uint32) ([]byte, map[[2]string]int) {
				return overloadSmallBody(smallSeq.Add(1)), map[[2]string]int{{"small-client", "small-server"}: overloadSmallPairs}
			})
		}()
	}

	slow := overloadSlowClients(t, otlpHTTP)
	defer slow.close()

	time.Sleep(overloadPhase1)
	mid := sampler.peak()
	t.Logf("phase 1 (%s): peak VmRSS %s (RssAnon %s, RssFile %s); %s",
		overloadPhase1, mib(mid.rss), mib(mid.anon), mib(mid.file), tally)

	// Phase 2: the SDK's retrying exporters, at the limit.
	sdkCtx, cancelSDK := context.WithTimeout(context.Background(), overloadPhase2Max)
	defer cancelSDK()
	var sdk sync.WaitGroup
	sdkErrs := make(chan error, overloadSDKSenders*overloadSDKBatches)
	phase2 := time.Now()
	for i := range overloadSDKSenders {
		sdk.Add(1)
		go func() {
			defer sdk.Done()
			if err := overloadSDKExport(sdkCtx, i, otlpHTTP, p.grpcAddr); err != nil {
				sdkErrs <- fmt.Errorf("SDK sender %d: %w", i, err)
			}
		}()
	}
	sdk.Wait()
	close(sdkErrs)
	t.Logf("phase 2: the SDK exporters finished in %s", time.Since(phase2).Round(time.Millisecond))
	stopLoad()
	load.Wait()
	sampler.stop()
	slowAnswers := slow.close()
	for err := range sdkErrs {
		t.Error(err)
	}

	peak := sampler.peak()
	limit := rss0.rss + int64(overloadSlack*overloadBudget) + collector.MemoryLimitHeadroom + overloadFileSlack
	t.Logf("RSS₀ %s (RssAnon %s, RssFile %s); peak VmRSS %s (RssAnon %s, RssFile %s) over %d samples; limit RSS₀ + %.2f × %s + %s + %s = %s",
		mib(rss0.rss), mib(rss0.anon), mib(rss0.file), mib(peak.rss), mib(peak.anon), mib(peak.file), sampler.count(),
		overloadSlack, mib(overloadBudget), mib(collector.MemoryLimitHeadroom), mib(overloadFileSlack), mib(limit))
	t.Logf("load: %s; slow connections answered early: %d", tally, len(slowAnswers))
	if peak.rss > limit {
		t.Errorf("peak VmRSS %s over the limit %s", mib(peak.rss), mib(limit))
	}
	for _, a := range slowAnswers {
		if a != "429 1" {
			t.Errorf("slow connection answered %q, want 429 with Retry-After 1", a)
		}
	}

	// The collector is up and saw the budget refuse.
	if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("collector is gone: %v\n%s", err, p.logText())
	}
	if code, body := overloadGet(t, p.httpAddr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	_, metrics := overloadGet(t, p.httpAddr, "/metrics")
	t.Logf("self-metrics: %s", overloadMetricLines(string(metrics),
		"flowscope_memory_budget_bytes", "flowscope_memory_budget_used_bytes", "flowscope_memory_budget_refused_total"))

	tally.mu.Lock()
	defer tally.mu.Unlock()
	for _, f := range tally.failures {
		t.Error(f)
	}
	if tally.big.refused == 0 {
		t.Error("no big request was refused: the test did not reach the limit")
	}
	if tally.big.accepted == 0 || tally.small.accepted == 0 {
		t.Errorf("nothing accepted: big %d, small %d", tally.big.accepted, tally.small.accepted)
	}

	// Every acknowledged pair is exactly one call.
	want := map[[2]string]int{{"sdk-client", "sdk-server"}: overloadSDKSenders * overloadSDKBatches * overloadSDKPairs}
	for e, n := range tally.pairs {
		want[e] += n
	}
	var g struct {
		Edges []struct {
			Source, Target string
			Calls          float64
		}
	}
	code, body := overloadGet(t, p.httpAddr, "/api/v1/flowgraph?level=service")
	if code != http.StatusOK {
		t.Fatalf("flowgraph: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("decode flowgraph: %v\n%s", err, body)
	}
	got := map[[2]string]int{}
	for _, e := range g.Edges {
		got[[2]string{e.Source, e.Target}] = int(e.Calls)
	}
	for e, n := range want {
		if got[e] != n {
			t.Errorf("edge %s → %s: %d calls, want %d", e[0], e[1], got[e], n)
		}
	}
	for e, n := range got {
		if _, ok := want[e]; !ok {
			t.Errorf("unexpected edge %s → %s (%d calls)", e[0], e[1], n)
		}
	}
	if errs := p.errorLogs(); len(errs) > 0 {
		t.Logf("collector error logs:\n%s", strings.Join(errs, "\n"))
	}
}

// slowConns are connections that sent a request head claiming 16 MiB and
// part of the body, then wait.
type slowConns struct {
	conns []net.Conn
	wg    sync.WaitGroup
	once  sync.Once

	mu      sync.Mutex
	answers []string // "status Retry-After" of early answers
}

// overloadSlowClients opens overloadSlowConns connections to the OTLP/HTTP
// receiver, each posting a 16 MiB protobuf body of which it sends
// overloadSlowSent bytes.
func overloadSlowClients(t *testing.T, addr string) *slowConns {
	t.Helper()
	s := &slowConns{}
	head := fmt.Sprintf("POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n", addr, 16<<20)
	part := make([]byte, overloadSlowSent) // zeros: field 0 is invalid, so nothing would be stored
	for range overloadSlowConns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(append([]byte(head), part...)); err != nil {
				return // refused and closed while sending: its answer is read below if it came
			}
		}()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return
			}
			resp.Body.Close()
			s.mu.Lock()
			s.answers = append(s.answers, fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Retry-After")))
			s.mu.Unlock()
		}()
	}
	return s
}

// close closes the connections and returns the answers they got.
func (s *slowConns) close() []string {
	s.once.Do(func() {
		for _, c := range s.conns {
			c.Close()
		}
	})
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answers
}

// procStatus is the memory of a process, from /proc/PID/status.
type procStatus struct{ rss, anon, file int64 }

func readProcStatus(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStatus{}, fmt.Errorf("read process status: %w", err)
	}
	var s procStatus
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.rss = kb << 10
		case "RssAnon:":
			s.anon = kb << 10
		case "RssFile:":
			s.file = kb << 10
		}
	}
	return s, nil
}

// rssSampler reads a process's memory at an interval and keeps the peaks.
type rssSampler struct {
	quit chan struct{}
	done chan struct{}
	once sync.Once

	mu  sync.Mutex
	max procStatus // each field's own maximum
	n   int
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if st, err := readProcStatus(pid); err == nil {
				s.mu.Lock()
				s.max = procStatus{max(s.max.rss, st.rss), max(s.max.anon, st.anon), max(s.max.file, st.file)}
				s.n++
				s.mu.Unlock()
			}
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) peak() procStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

func (s *rssSampler) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *rssSampler) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// overloadCounts are the answers one kind of client got.
type overloadCounts struct {
	accepted, refused int
}

// overloadTally collects the answers of every plain-HTTP client.
type overloadTally struct {
	mu       sync.Mutex
	big      overloadCounts
	small    overloadCounts
	pairs    map[[2]string]int // acknowledged pairs per edge
	failures []string          // anything but 200 or 429 with Retry-After (first few)
	failed   int
}

func (t *overloadTally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("big requests %d accepted, %d refused; small %d accepted, %d refused; %d failures",
		t.big.accepted, t.big.refused, t.small.accepted, t.small.refused, t.failed)
}

func (t *overloadTally) fail(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed++
	if len(t.failures) < 10 {
		t.failures = append(t.failures, fmt.Sprintf(format, args...))
	}
}

// signalReader is a request body that reports when the transport closed
// it, that is when it no longer reads it.
type signalReader struct {
	*bytes.Reader
	closed chan struct{}
	once   sync.Once
}

func (r *signalReader) Close() error {
	r.once.Do(func() { close(r.closed) })
	return nil
}

// overloadSendLoop posts the bodies of next (given a sequence number) until
// stop is closed, counting the answers in c and the acknowledged pairs. A
// refused request is retried with a new body after 50 ms (the clients of
// the issue did not wait for Retry-After).
func overloadSendLoop(client *http.Client, url string, stop <-chan struct{}, tally *overloadTally, c *overloadCounts,
	next func(seq uint32) ([]byte, map[[2]string]int)) {
	for seq := uint32(1); ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		body, pairs := next(seq)
		rd := &signalReader{Reader: bytes.NewReader(body), closed: make(chan struct{})}
		req, err := http.NewRequest(http.MethodPost, url, rd)
		if err != nil {
			tally.fail("new request: %v", err)
			return
		}
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := client.Do(req)
		if err != nil {
			<-rd.closed
			tally.fail("POST of %d bytes: %v", len(body), err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		<-rd.closed // the body (a shared template) is ours again
		switch {
		case resp.StatusCode == http.StatusOK:
			tally.mu.Lock()
			c.accepted++
			if tally.pairs == nil {
				tally.pairs = map[[2]string]int{}
			}
			for e, n := range pairs {
				tally.pairs[e] += n
			}
			tally.mu.Unlock()
		case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
			tally.mu.Lock()
			c.refused++
			tally.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		default:
			tally.fail("POST of %d bytes: %s (Retry-After %q): %q", len(body), resp.Status, resp.Header.Get("Retry-After"), msg)
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// overloadBigBody is a pre-encoded 13 MB export request whose trace IDs are
// patched for every send, so that no two sends share a span.
type overloadBigBody struct {
	tpl   []byte
	at    []int // offsets of the 4 sequence bytes of every trace ID
	pairs map[[2]string]int
}

// newOverloadBigBody builds the request of big client k: client/server
// pairs over overloadEdges, each span with a 4 KiB attribute, up to
// overloadBigBytes bytes. Trace IDs are a random 8-byte marker, the pair's
// index and a sequence number.
func newOverloadBigBody(t *testing.T, k int) *overloadBigBody {
	t.Helper()
	var marker [8]byte
	if _, err := rand.Read(marker[:]); err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat(fmt.Sprintf("big client %d payload ", k), overloadPayloadSize/20)[:overloadPayloadSize]
	perPair := 2 * (overloadPayloadSize + 120)
	n := overloadBigBytes / perPair
	byService := map[string][]*tracepb.Span{}
	var order []string
	add := func(svc string, s *tracepb.Span) {
		if byService[svc] == nil {
			order = append(order, svc)
		}
		byService[svc] = append(byService[svc], s)
	}
	now := uint64(time.Now().UnixNano())
	pairs := map[[2]string]int{}
	for i := range n {
		e := overloadEdges[i%len(overloadEdges)]
		pairs[e]++
		tid := make([]byte, 16)
		copy(tid, marker[:])
		binary.BigEndian.PutUint32(tid[8:], uint32(i))
		cid := binary.BigEndian.AppendUint64(nil, uint64(2*i+1))
		sid := binary.BigEndian.AppendUint64(nil, uint64(2*i+2))
		st := now + uint64(i)*1000
		attrs := []*commonpb.KeyValue{{Key: "payload", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: payload}}}}
		add(e[0], &tracepb.Span{TraceId: tid, SpanId: cid, Name: "call " + e[1], Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: st, EndTimeUnixNano: st + 3e6, Attributes: attrs})
		add(e[1], &tracepb.Span{TraceId: tid, SpanId: sid, ParentSpanId: cid, Name: "handle", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: st + 5e5, EndTimeUnixNano: st + 25e5, Attributes: attrs})
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, svc := range order {
		req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: svc}}}}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: byService[svc]}},
		})
	}
	tpl, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	b := &overloadBigBody{tpl: tpl, pairs: pairs}
	for off := 0; ; {
		i := bytes.Index(tpl[off:], marker[:])
		if i < 0 {
			break
		}
		b.at = append(b.at, off+i+12)
		off += i + 16
	}
	if len(b.at) != 2*n {
		t.Fatalf("found %d trace IDs in the big body, want %d", len(b.at), 2*n)
	}
	t.Logf("big client %d: %d bytes, %d pairs per request", k, len(tpl), n)
	return b
}

// next patches the sequence number into every trace ID. The previous send
// must be over.
func (b *overloadBigBody) next(seq uint32) []byte {
	for _, at := range b.at {
		binary.BigEndian.PutUint32(b.tpl[at:], seq)
	}
	return b.tpl
}

// overloadSmallBody is a request of overloadSmallPairs client/server pairs
// between small-client and small-server, in traces of its own.
func overloadSmallBody(seq uint64) []byte {
	now := uint64(time.Now().UnixNano())
	var clients, servers []*tracepb.Span
	for i := range uint64(overloadSmallPairs) {
		tid := binary.BigEndian.AppendUint64([]byte{0x5e, 0xa1, 0, 0, 0, 0, 0, 1}, seq<<8|i)
		cid := binary.BigEndian.AppendUint64(nil, 2*i+1)
		sid := binary.BigEndian.AppendUint64(nil, 2*i+2)
		clients = append(clients, &tracepb.Span{TraceId: tid, SpanId: cid, Name: "call", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: now, EndTimeUnixNano: now + 3e6})
		servers = append(servers, &tracepb.Span{TraceId: tid, SpanId: sid, ParentSpanId: cid, Name: "handle", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: now + 5e5, EndTimeUnixNano: now + 25e5})
	}
	svc := func(name string) *resourcepb.Resource {
		return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: name}}}}}
	}
	b, _ := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: svc("small-client"), ScopeSpans: []*tracepb.ScopeSpans{{Spans: clients}}},
		{Resource: svc("small-server"), ScopeSpans: []*tracepb.ScopeSpans{{Spans: servers}}},
	}})
	return b
}

// overloadSDKExport makes overloadSDKBatches × overloadSDKPairs
// client/server span pairs with two OTel SDK tracer providers (services
// sdk-client and sdk-server) and exports them with an OTLP exporter
// (OTLP/HTTP for senders 0–3, OTLP/gRPC for the others) with its default
// retry, a batch of whole pairs per call, so that both halves of a call
// arrive in one request.
func overloadSDKExport(ctx context.Context, i int, otlpHTTP, otlpGRPC string) error {
	var (
		exp *otlptrace.Exporter
		err error
	)
	if i < 4 {
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(otlpHTTP), otlptracehttp.WithInsecure())
	} else {
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpGRPC), otlptracegrpc.WithInsecure())
	}
	if err != nil {
		return fmt.Errorf("new exporter: %w", err)
	}
	defer exp.Shutdown(context.Background())
	provider := func(svc string, rec *tracetest.SpanRecorder) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", svc))))
	}
	for b := range overloadSDKBatches {
		clientRec, serverRec := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
		clientTP, serverTP := provider("sdk-client", clientRec), provider("sdk-server", serverRec)
		for range overloadSDKPairs {
			cctx, c := clientTP.Tracer("overload").Start(context.Background(), "GET /item", trace.WithSpanKind(trace.SpanKindClient))
			_, s := serverTP.Tracer("overload").Start(cctx, "handle /item", trace.WithSpanKind(trace.SpanKindServer))
			s.End()
			c.End()
		}
		spans := append(clientRec.Ended(), serverRec.Ended()...)
		if len(spans) != 2*overloadSDKPairs {
			return fmt.Errorf("recorded %d spans", len(spans))
		}
		if err := exp.ExportSpans(ctx, spans); err != nil {
			return fmt.Errorf("export batch %d: %w", b, err)
		}
		_ = clientTP.Shutdown(context.Background())
		_ = serverTP.Shutdown(context.Background())
	}
	return nil
}

// overloadGet fetches a path of the collector's HTTP port.
func overloadGet(t *testing.T, addr, path string) (int, []byte) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// overloadMetricLines returns the sample lines of the named metrics.
func overloadMetricLines(text string, names ...string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n+" ") || strings.HasPrefix(line, n+"{") {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "; ")
}
