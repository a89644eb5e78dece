package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flowscope/flowscope/internal/jsondiff"
	"github.com/flowscope/flowscope/internal/otelcoltest"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// scaleHosts places the nodes of a cluster on hosts of their own: network
// namespaces joined to this one by veth pairs (as root, with ip), else
// (or with FLOWSCOPE_SCALE_HOSTS=loopback) loopback addresses 127.0.0.2,
// 127.0.0.3, ...
type scaleHosts struct {
	kind   string     // "netns" or "loopback"
	addrs  []string   // each node's IP address
	prefix [][]string // each node's command prefix (ip netns exec NS)
}

func newScaleHosts(t *testing.T, n int) *scaleHosts {
	t.Helper()
	if os.Getenv("FLOWSCOPE_SCALE_HOSTS") != "loopback" {
		h, err := netnsHosts(t, n)
		if err == nil {
			return h
		}
		t.Logf("network namespaces unavailable (%v): nodes on loopback addresses", err)
	}
	h := &scaleHosts{kind: "loopback"}
	for i := range n {
		h.addrs = append(h.addrs, fmt.Sprintf("127.0.0.%d", 2+i))
		h.prefix = append(h.prefix, nil)
	}
	return h
}

// netnsHosts makes n namespaces, each with a veth pair: 10.233.K.1 on
// this side, 10.233.K.2 in the namespace. They are deleted at the end.
func netnsHosts(t *testing.T, n int) (*scaleHosts, error) {
	ip, err := exec.LookPath("ip")
	if err != nil || os.Geteuid() != 0 {
		return nil, fmt.Errorf("need root and ip (uid %d, %v)", os.Geteuid(), err)
	}
	run := func(args ...string) error {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	h := &scaleHosts{kind: "netns"}
	base := os.Getpid() % 80 * 3
	for i := range n {
		ns := fmt.Sprintf("fsn%d-%d", os.Getpid(), i)
		host, peer := fmt.Sprintf("fsh%d%d", os.Getpid()%100000, i), fmt.Sprintf("fsp%d%d", os.Getpid()%100000, i)
		k := base + i
		steps := [][]string{
			{"netns", "add", ns},
			{"link", "add", host, "type", "veth", "peer", "name", peer},
			{"link", "set", peer, "netns", ns},
			{"addr", "add", fmt.Sprintf("10.233.%d.1/24", k), "dev", host},
			{"link", "set", host, "up"},
			{"-n", ns, "addr", "add", fmt.Sprintf("10.233.%d.2/24", k), "dev", peer},
			{"-n", ns, "link", "set", peer, "up"},
			{"-n", ns, "link", "set", "lo", "up"},
		}
		t.Cleanup(func() {
			exec.Command(ip, "netns", "del", ns).Run()
			exec.Command(ip, "link", "del", host).Run()
		})
		for _, s := range steps {
			if err := run(s...); err != nil {
				return nil, err
			}
		}
		h.addrs = append(h.addrs, fmt.Sprintf("10.233.%d.2", k))
		h.prefix = append(h.prefix, []string{ip, "netns", "exec", ns})
	}
	return h, nil
}

// lookOtelcol returns the Collector built by .ci/build-otelcol.
func lookOtelcol(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("FLOWSCOPE_OTELCOL_BIN"); p != "" {
		return p
	}
	tools := os.Getenv("FLOWSCOPE_TOOLS_DIR")
	if tools == "" {
		if home, err := os.UserHomeDir(); err == nil {
			tools = filepath.Join(home, ".cache", "flowscope")
		}
	}
	p := filepath.Join(tools, "otelcol-v0.161.0", "otelcol-flowscope")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	skipUnlessCI(t, "the OpenTelemetry Collector is not built: run .ci/build-otelcol (or set FLOWSCOPE_OTELCOL_BIN)")
	return ""
}

// startOtelcol runs the Collector in front of the nodes' OTLP/gRPC
// addresses and returns its OTLP/gRPC address.
func startOtelcol(t *testing.T, bin string, nodes []string) string {
	t.Helper()
	addr := freeLoopbackAddr(t)
	cfg := filepath.Join(t.TempDir(), "otelcol.yaml")
	// Each node's exporter retries for up to 10 minutes from its queue, so
	// that a node's restart loses nothing. One consumer per node keeps each
	// node's batches in the order they were sent: a trace search answers,
	// on every node, the limit traces stored last (sorted by start), so the
	// front end's page equals a single node's only when every node stores
	// the traces in the order the single node does (docs/scale-out.md).
	if err := os.WriteFile(cfg, []byte(otelcoltest.Config(addr, nodes, 1, 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	var log strings.Builder
	var mu sync.Mutex
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &log}, lockedWriter{&mu, &log}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the Collector: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("Collector log:\n%s", log.String())
			mu.Unlock()
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the Collector does not listen on %s after 30 s:\n%s", addr, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// freeLoopbackAddr returns 127.0.0.1:port with a port free now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

func freeAddrOn(t *testing.T, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// exportAll sends the requests over OTLP/gRPC to addr.
func exportAll(t *testing.T, addr string, reqs []*coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	for i, req := range reqs {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := client.Export(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("export request %d to %s: %v", i, addr, err)
		}
	}
}

// scaleNode is one node of the cluster: its process and its fixed
// addresses (a restart keeps them, as the Collector's resolver expects).
type scaleNode struct {
	p                          *procCollector
	prefix                     []string
	dir, grpc, http, otlp, zip string
	name                       string
}

func (n *scaleNode) start(t *testing.T, bin string) {
	t.Helper()
	argv := append(append([]string{}, n.prefix...), bin, "serve", "--data-dir", n.dir,
		"--otlp-grpc-addr", n.grpc, "--otlp-http-addr", n.otlp, "--http-addr", n.http, "--zipkin-addr", n.zip,
		"--edge-wait", "1s", "--node-name", n.name, "--log-format", "json")
	n.p = procStart(t, argv, "collector started")
}

// clusterGet reads path from the query API at base (http://host:port).
func clusterGet(t *testing.T, base, path string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	return resp.StatusCode, resp.Header, body
}

// spanTotal is the sum of the span counts of /api/v1/services over rng.
func spanTotal(t *testing.T, base, rng string) (int64, http.Header) {
	t.Helper()
	code, h, body := clusterGet(t, base, "/api/v1/services?"+rng)
	if code != http.StatusOK {
		return -1, h
	}
	var doc struct {
		Services []struct {
			SpanCount string `json:"spanCount"`
		} `json:"services"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("services: %v: %s", err, body)
	}
	var n int64
	for _, s := range doc.Services {
		var c int64
		fmt.Sscan(s.SpanCount, &c)
		n += c
	}
	return n, h
}

// scaleOutPaths are the query API requests whose answers must be the same
// from one node and from the front end over three.
func scaleOutPaths(top []*otlptest.Topology, start, end time.Time) []string {
	rng := fmt.Sprintf("start=%d&end=%d", start.UnixMilli(), end.UnixMilli())
	ps := []string{
		"/api/v1/services?" + rng,
		"/api/v1/services/checkout/operations",
		"/api/v1/services/catalog/operations",
		"/api/v1/flowgraph?" + rng,
		"/api/v1/flowgraph?level=instance&" + rng,
		"/api/v1/flowgraph?level=zone&" + rng,
		"/api/v1/flowgraph?level=region&" + rng,
		"/api/v1/flowgraph?format=vizceral&" + rng,
		"/api/v1/latency?service=frontend&" + rng,
		"/api/v1/latency?service=checkout&operation=checkout%2FPlace&step=1m&" + rng,
		"/api/v1/latency?source=catalog&target=postgres&" + rng,
		"/api/v1/latency?source=payments&target=stripe&step=30s&" + rng,
		"/api/v1/latency?source=frontend-0&target=checkout-1&level=instance&" + rng,
		"/api/v1/traces?service=frontend&limit=20&" + rng,
		"/api/v1/traces?service=payments&status=error&limit=1000&" + rng,
		"/api/v1/traces?service=cart&min_duration=40ms&limit=1000&" + rng,
		"/api/v1/traces?source=cart&target=postgres&limit=10&" + rng,
		"/api/v1/lint?" + rng,
	}
	for _, tp := range top {
		ps = append(ps,
			"/api/v1/traces/"+tp.TraceIDs[0],
			"/api/v1/traces/"+tp.TraceIDs[len(tp.TraceIDs)-1],
			"/api/v1/correlations/"+url.PathEscape(tp.Correlations[len(tp.Correlations)/2]))
	}
	return ps
}

// compareAnswers asks both APIs every path and reports differences; it
// returns how many paths differed.
func compareAnswers(t *testing.T, single, front string, paths []string, report bool) int {
	t.Helper()
	bad := 0
	for _, p := range paths {
		sc, _, sb := clusterGet(t, single, p)
		fc, fh, fb := clusterGet(t, front, p)
		var why string
		switch {
		case sc != http.StatusOK:
			why = fmt.Sprintf("one node answers %d: %s", sc, sb)
		case fc != sc:
			why = fmt.Sprintf("status %d on the front end, %d on one node: %s", fc, sc, fb)
		case fh.Get("Flowscope-Partial") != "":
			why = "the front end's answer is partial: " + fh.Get("Flowscope-Missing-Peers")
		default:
			why = jsondiff.Diff(dropEmptyStatus(t, sb), dropEmptyStatus(t, fb), 6)
		}
		if why != "" {
			bad++
			if report {
				t.Errorf("%s:\n%s", p, why)
			}
		}
	}
	return bad
}

// dropEmptyStatus removes the empty span statuses ("status": {}) of a
// trace: the Collector's pdata gives every span a status message, empty
// when the SDK sent none, which means the same (unset).
func dropEmptyStatus(t *testing.T, b []byte) []byte {
	t.Helper()
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return b
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if st, ok := x["status"].(map[string]any); ok && len(st) == 0 {
				delete(x, "status")
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScaleOutThroughCollector sends the same shop traffic (virtual nodes,
// errors, two-mode latencies, correlation IDs shared across traces) once
// to a single node and once through a real OpenTelemetry Collector, whose
// load-balancing exporter routes by trace ID to three nodes on hosts of
// their own (network namespaces, or loopback addresses), and checks that
// every answer of a query front end over the three equals the single
// node's. Then one node is killed with SIGKILL while traffic goes on: the
// front end answers partial naming it; once it is back, the Collector's
// retries have delivered its share and the answers are complete and equal
// again: nothing acknowledged is lost.
func TestScaleOutThroughCollector(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster; skipped under -short")
	}
	otelcol := lookOtelcol(t)
	bin := procBuildCollector(t)
	hosts := newScaleHosts(t, 3)
	t.Logf("nodes on %s hosts %v", hosts.kind, hosts.addrs)

	single := procStartCollector(t, bin, t.TempDir(), "--edge-wait", "1s", "--node-name", "single")
	nodes := make([]*scaleNode, 3)
	var grpcAddrs, peers []string
	for i := range nodes {
		a := hosts.addrs[i]
		n := &scaleNode{prefix: hosts.prefix[i], dir: t.TempDir(), name: fmt.Sprintf("node-%d", i+1)}
		if hosts.kind == "netns" {
			n.grpc, n.http, n.otlp, n.zip = a+":4317", a+":8686", a+":4318", a+":9411"
		} else {
			n.grpc, n.http, n.otlp, n.zip = freeAddrOn(t, a), freeAddrOn(t, a), freeAddrOn(t, a), freeAddrOn(t, a)
		}
		n.start(t, bin)
		nodes[i] = n
		grpcAddrs = append(grpcAddrs, n.grpc)
		peers = append(peers, "http://"+n.http)
	}
	collector := startOtelcol(t, otelcol, grpcAddrs)
	front := procStart(t, []string{bin, "query", "--data-dir", t.TempDir(), "--peers", strings.Join(peers, ","),
		"--peer-timeout", "3s", "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--zipkin-addr", "127.0.0.1:0",
		"--otlp-http-addr", "127.0.0.1:0", "--node-name", "front", "--log-format", "json"}, "query front end started")
	singleURL, frontURL := "http://"+single.httpAddr, "http://"+front.httpAddr

	now := time.Now()
	start, end := now.Add(-30*time.Minute), now.Add(10*time.Minute)
	rng := fmt.Sprintf("start=%d&end=%d", start.UnixMilli(), end.UnixMilli())
	first := otlptest.GenerateTopology(otlptest.TopologyOptions{Traces: 3000, Start: now.Add(-20 * time.Minute),
		Step: 400 * time.Millisecond, PerRequest: 25, Seed: 11})
	exportAll(t, single.grpcAddr, first.Requests)
	exportAll(t, collector, first.Requests)
	waitTotals := func(want int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			s, _ := spanTotal(t, singleURL, rng)
			f, h := spanTotal(t, frontURL, rng)
			if s == want && f == want && h.Get("Flowscope-Partial") == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v: %d spans on one node, %d on the front end (partial %q), want %d", within, s, f, h.Get("Flowscope-Missing-Peers"), want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitTotals(int64(first.Spans), time.Minute)
	// Every node holds a share.
	for _, n := range nodes {
		if got, _ := spanTotal(t, "http://"+n.http, rng); got <= int64(first.Spans)/6 {
			t.Errorf("%s holds %d of %d spans: the Collector did not spread the traces", n.name, got, first.Spans)
		}
	}
	paths := scaleOutPaths([]*otlptest.Topology{first}, start, end)
	// Calls settle once their edge wait (1 s) has passed.
	settle := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for compareAnswers(t, singleURL, frontURL, paths, false) > 0 && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
		}
		compareAnswers(t, singleURL, frontURL, paths, true)
	}
	settle()
	if t.Failed() {
		return
	}

	// A node dies. The front end answers from the others and names it.
	victim := nodes[1]
	victim.p.sigkill(t)
	for _, p := range []string{"/api/v1/services?" + rng, "/api/v1/flowgraph?" + rng, "/api/v1/traces?service=frontend&" + rng} {
		code, h, body := clusterGet(t, frontURL, p)
		var doc struct {
			Partial      bool     `json:"partial"`
			MissingPeers []string `json:"missingPeers"`
		}
		json.Unmarshal(body, &doc)
		if code != http.StatusOK || !doc.Partial || len(doc.MissingPeers) != 1 || doc.MissingPeers[0] != "http://"+victim.http ||
			h.Get("Flowscope-Missing-Peers") != "http://"+victim.http {
			t.Errorf("%s with %s down: status %d, partial %v, missingPeers %v, header %q; want 200, true, [http://%s]",
				p, victim.name, code, doc.Partial, doc.MissingPeers, h.Get("Flowscope-Missing-Peers"), victim.http)
		}
	}
	// Traffic goes on while it is down: the Collector acknowledges it and
	// holds the dead node's share.
	second := otlptest.GenerateTopology(otlptest.TopologyOptions{Traces: 1500, Start: now.Add(-5 * time.Minute),
		Step: 150 * time.Millisecond, PerRequest: 25, Seed: 12})
	exportAll(t, single.grpcAddr, second.Requests)
	exportAll(t, collector, second.Requests)
	time.Sleep(2 * time.Second)
	victim.start(t, bin)
	waitTotals(int64(first.Spans+second.Spans), 2*time.Minute)
	paths = scaleOutPaths([]*otlptest.Topology{first, second}, start, end)
	settle()
	for _, n := range append(nodes, &scaleNode{p: single, name: "single"}) {
		if errs := n.p.errorLogs(); len(errs) > 0 {
			t.Errorf("%s logged errors:\n%s", n.name, strings.Join(errs, "\n"))
		}
	}
	if errs := front.errorLogs(); len(errs) > 0 {
		t.Errorf("the front end logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
