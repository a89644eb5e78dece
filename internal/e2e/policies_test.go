package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/flowscope/flowscope/internal/config"
)

// policiesJSON is the answer of GET /api/v1/policies.
type policiesJSON struct {
	Path     string
	Problems []string
	Policies []struct {
		Name, Kind, Level string
		Violations        []struct {
			Source, Target      string
			Calls               float64
			FirstSeen, LastSeen string
			ExemplarTraceID     string `json:"exemplarTraceId"`
		}
	}
}

// violations flattens an answer to "policy source -> target" → exemplar.
func (p policiesJSON) violations() map[string]string {
	out := map[string]string{}
	for _, pol := range p.Policies {
		for _, v := range pol.Violations {
			out[pol.Name+" "+v.Source+" -> "+v.Target] = v.ExemplarTraceID
		}
	}
	return out
}

// sdkMesh sends calls between services with the OpenTelemetry Go SDK, one
// tracer provider per service, and remembers the trace IDs of every edge.
type sdkMesh struct {
	t         *testing.T
	addr      string
	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider
	traces    map[string][]string // "source -> target" → trace IDs
}

func newSDKMesh(t *testing.T, grpcAddr string) *sdkMesh {
	m := &sdkMesh{t: t, addr: grpcAddr, providers: map[string]*sdktrace.TracerProvider{}, traces: map[string][]string{}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, tp := range m.providers {
			_ = tp.Shutdown(ctx)
		}
	})
	return m
}

func (m *sdkMesh) tracer(service string) trace.Tracer {
	m.mu.Lock()
	defer m.mu.Unlock()
	tp := m.providers[service]
	if tp == nil {
		exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(m.addr), otlptracegrpc.WithInsecure())
		if err != nil {
			m.t.Fatal(err)
		}
		attrs := []attribute.KeyValue{attribute.String("service.name", service)}
		if ns, name, ok := strings.Cut(service, "/"); ok { // a namespaced node ID
			attrs = []attribute.KeyValue{attribute.String("service.namespace", ns), attribute.String("service.name", name)}
		}
		res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attrs...)
		tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(100*time.Millisecond)))
		m.providers[service] = tp
	}
	return tp.Tracer("e2e/policies")
}

// call sends one request into source (a server span) that calls target (a
// client span and the target's server span), ending now.
func (m *sdkMesh) call(source, target string) {
	end := time.Now()
	start := end.Add(-20 * time.Millisecond)
	ctx, root := m.tracer(source).Start(context.Background(), "GET /", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	_, client := m.tracer(source).Start(ctx, "call "+target, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(time.Millisecond)))
	sctx := trace.ContextWithRemoteSpanContext(context.Background(), client.SpanContext())
	_, server := m.tracer(target).Start(sctx, "serve", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(2*time.Millisecond)))
	server.End(trace.WithTimestamp(end.Add(-2 * time.Millisecond)))
	client.End(trace.WithTimestamp(end.Add(-time.Millisecond)))
	root.End(trace.WithTimestamp(end))
	m.mu.Lock()
	k := source + " -> " + target
	m.traces[k] = append(m.traces[k], client.SpanContext().TraceID().String())
	m.mu.Unlock()
}

func (m *sdkMesh) sent(edge string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.traces[edge])
}

const meshPolicies = `policies:
  - name: no-direct-db
    deny: {from: "web*", to: "db*"}
  - name: payments-callers
    allow_only: {to: payments, from: [checkout]}
`

// TestPoliciesEndToEnd sends a topology with allowed and forbidden calls
// through the OpenTelemetry SDK: each forbidden edge is reported by GET
// /api/v1/policies within 6 s of its first call, with an exemplar trace
// that holds the call, and marked on the flow graph; no allowed edge is
// ever reported; and the alert signal policy_violations fires.
func TestPoliciesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policies.yml")
	if err := os.WriteFile(path, []byte(meshPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	rulesPath := writeRules(t, dir, "rules.yml", `
  - alert: ForbiddenCalls
    signal: policy_violations
    each: edge
    above: 0
    window: 10s
    labels: {severity: page}
`)
	s := startServer(t, "", func(c *config.Config) {
		c.Policies = path
		c.Alerting.Rules = rulesPath
		c.Alerting.Interval = time.Second
	})
	m := newSDKMesh(t, s.addrs.OTLPGRPC)
	allowed := [][2]string{{"web-a", "api"}, {"api", "db-main"}, {"checkout", "payments"}, {"web-b", "cache"}}
	forbidden := map[string][2]string{
		"no-direct-db web-b -> db-main":        {"web-b", "db-main"},
		"no-direct-db web-a -> db-cache":       {"web-a", "db-cache"},
		"payments-callers refunds -> payments": {"refunds", "payments"},
	}

	// Allowed traffic only, for a while: nothing may be reported.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for {
			for _, e := range allowed {
				m.call(e[0], e[1])
			}
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		g := getFlowGraph(t, s, "")
		if len(g.Edges) >= len(allowed) || time.Now().After(deadline) {
			if len(g.Edges) < len(allowed) {
				t.Fatalf("allowed edges not in the graph: %+v", g.Edges)
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var p policiesJSON
	s.getJSON(t, "/api/v1/policies", &p)
	if v := p.violations(); len(v) != 0 || len(p.Policies) != 2 || p.Path != path {
		t.Fatalf("allowed traffic only: violations %v, policies %+v", v, p)
	}

	// Forbidden calls, one each per 100 ms from now on.
	first := map[string]time.Time{}
	for k, e := range forbidden {
		first[k] = time.Now()
		m.call(e[0], e[1])
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, e := range forbidden {
				m.call(e[0], e[1])
			}
		}
	}()
	reported := map[string]time.Duration{}
	deadline = time.Now().Add(30 * time.Second)
	for len(reported) < len(forbidden) && time.Now().Before(deadline) {
		s.getJSON(t, "/api/v1/policies", &p)
		for k, exemplar := range p.violations() {
			e, ok := forbidden[k]
			if !ok {
				t.Fatalf("reported a violation that is none: %s (all: %v)", k, p.violations())
			}
			if _, done := reported[k]; done {
				continue
			}
			reported[k] = time.Since(first[k])
			if exemplar == "" || !slices.Contains(m.sent(e[0]+" -> "+e[1]), exemplar) {
				t.Errorf("%s: exemplar %q is not a trace with that call", k, exemplar)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for k := range forbidden {
		d, ok := reported[k]
		switch {
		case !ok:
			t.Errorf("%s: never reported", k)
		case d > 6*time.Second:
			t.Errorf("%s: reported %v after its first call, want within 6 s", k, d.Round(time.Millisecond))
		default:
			t.Logf("%s: reported %v after its first call", k, d.Round(time.Millisecond))
		}
	}

	// The alert signal: one firing instance per forbidden edge, none for
	// an allowed one.
	waitFor(t, 30*time.Second, "ForbiddenCalls firing for the 3 forbidden edges", func() (bool, string) {
		var r struct {
			Alerts []struct {
				Rule, State string
				Labels      map[string]string
				Exemplars   []string
			}
		}
		s.getJSON(t, "/api/v1/alerts", &r)
		firing := map[string]bool{}
		for _, a := range r.Alerts {
			if a.Rule == "ForbiddenCalls" && a.State == "firing" {
				firing[a.Labels["source"]+" -> "+a.Labels["target"]] = true
			}
		}
		for k, e := range forbidden {
			if !firing[e[0]+" -> "+e[1]] {
				return false, fmt.Sprintf("%s not firing: %+v", k, r.Alerts)
			}
		}
		if len(firing) != len(forbidden) {
			return false, fmt.Sprintf("firing %v, want the forbidden edges only", firing)
		}
		return true, ""
	})

	// The flow graph marks the violating edges, and only them.
	var fg struct {
		Edges []struct {
			Source, Target string
			Violations     []string
		}
	}
	s.getJSON(t, "/api/v1/flowgraph", &fg)
	for _, e := range fg.Edges {
		var want []string
		for k, fe := range forbidden {
			if fe == [2]string{e.Source, e.Target} {
				want = append(want, k[:len(k)-len(fmt.Sprintf(" %s -> %s", fe[0], fe[1]))])
			}
		}
		if fmt.Sprint(e.Violations) != fmt.Sprint(want) && !(len(want) == 0 && len(e.Violations) == 0) {
			t.Errorf("flow graph edge %s -> %s: violations %v, want %v", e.Source, e.Target, e.Violations, want)
		}
	}
}

// TestPoliciesLamp checks deny_undeclared with the spigo lamp sample: its
// simulated flows (imported with collector import) break nothing of the
// declared lamp architecture; one rogue call, rds-mysql calling www back,
// is exactly one violation, with its exemplar.
func TestPoliciesLamp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policies.yml")
	if err := os.WriteFile(path, []byte("policies:\n  - name: as-designed\n    deny_undeclared: lamp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "", func(c *config.Config) { c.Policies = path })
	var p policiesJSON
	s.getJSON(t, "/api/v1/policies", &p)
	if len(p.Problems) != 1 || !strings.Contains(p.Problems[0], "lamp") {
		t.Errorf("before the import: problems %q, want the missing architecture lamp", p.Problems)
	}
	for _, f := range []string{"json_arch/lamp_arch.json", "json_metrics/lamp_flow.json"} {
		if code, out, errOut := runImport(t, "--to", "http://"+s.addrs.HTTP, spigoDir+f); code != 0 {
			t.Fatalf("import %s: exit %d\n%s\n%s", f, code, out, errOut)
		}
	}
	rng := "start=2016-01-01T00:00:00Z&end=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	g := getFlowGraph(t, s, rng)
	if len(g.Edges) < 3 {
		t.Fatalf("lamp's flows: %d edges", len(g.Edges))
	}
	s.getJSON(t, "/api/v1/policies?"+rng, &p)
	if v := p.violations(); len(v) != 0 || len(p.Problems) != 0 {
		t.Fatalf("lamp's own flows: violations %v, problems %q", v, p.Problems)
	}

	m := newSDKMesh(t, s.addrs.OTLPGRPC)
	m.call("lamp/rds-mysql", "lamp/www")
	want := "as-designed lamp/rds-mysql -> lamp/www"
	waitFor(t, 15*time.Second, "the rogue call reported", func() (bool, string) {
		s.getJSON(t, "/api/v1/policies?"+rng, &p)
		v := p.violations()
		return len(v) == 1 && v[want] != "", fmt.Sprint(v)
	})
	if ex := p.violations()[want]; !slices.Contains(m.sent("lamp/rds-mysql -> lamp/www"), ex) {
		t.Errorf("exemplar %s is not the rogue call's trace %v", ex, m.sent("lamp/rds-mysql -> lamp/www"))
	}
}
