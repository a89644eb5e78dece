package collector

import (
	"bytes"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/security"
)

// TestScopes pins what each route and gRPC method needs.
func TestScopes(t *testing.T) {
	for _, tt := range []struct {
		method, path string
		want         security.Scope
	}{
		{"GET", "/", security.ScopeNone},
		{"GET", "/js/main.js", security.ScopeNone},
		{"GET", "/healthz", security.ScopeNone},
		{"GET", "/readyz", security.ScopeNone},
		{"GET", "/api/v1/security", security.ScopeNone},
		{"GET", "/api/v1/services", security.ScopeRead},
		{"HEAD", "/api/v1/traces/abc", security.ScopeRead},
		{"GET", "/metrics", security.ScopeRead},
		{"GET", "/api/v1/dashboards", security.ScopeRead},
		{"POST", "/api/v1/import", security.ScopeWrite},
		{"POST", "/api/v1/rules:reload", security.ScopeWrite},
		{"POST", "/api/v1/synthetics:reload", security.ScopeWrite},
		{"POST", "/api/v1/synthetics/journey:run", security.ScopeWrite},
		{"POST", "/api/v1/services", security.ScopeWrite}, // unknown writes need the most
		{"DELETE", "/api/v1/traces/abc", security.ScopeWrite},
		{"POST", "/metrics", security.ScopeWrite},
		{"GET", "/api/v1/prometheus/metrics", security.ScopeRead},
		{"GET", "/jaeger/api/services", security.ScopeRead},
		{"POST", "/jaeger/api/transform", security.ScopeRead}, // converts, stores nothing
	} {
		if got := apiScope(httptest.NewRequest(tt.method, tt.path, nil)); got != tt.want {
			t.Errorf("%s %s needs %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
	for _, tt := range []struct {
		method string
		want   security.Scope
	}{
		{"POST", security.ScopeIngest}, {"PUT", security.ScopeIngest},
		{"GET", security.ScopeRead}, {"HEAD", security.ScopeRead}, {"OPTIONS", security.ScopeRead},
	} {
		if got := zipkinScope(httptest.NewRequest(tt.method, "/api/v2/spans", nil)); got != tt.want {
			t.Errorf("zipkin port: %s needs %v, want %v", tt.method, got, tt.want)
		}
	}
	for method, want := range map[string]security.Scope{
		"/opentelemetry.proto.collector.trace.v1.TraceService/Export":     security.ScopeIngest,
		"/opentelemetry.proto.collector.metrics.v1.MetricsService/Export": security.ScopeIngest,
		"/flowscope.query.v1.QueryService/GetTrace":                       security.ScopeRead,
		"/flowscope.query.v1.QueryService/ListSynthetics":                 security.ScopeRead,
		"/flowscope.query.v1.QueryService/ReloadRules":                    security.ScopeWrite,
		"/flowscope.query.v1.QueryService/ReloadSynthetics":               security.ScopeWrite,
		"/flowscope.query.v1.QueryService/RunSynthetic":                   security.ScopeWrite,
		"/grpc.health.v1.Health/Check":                                    security.ScopeRead,
	} {
		if got := grpcScope(method); got != want {
			t.Errorf("%s needs %v, want %v", method, got, want)
		}
	}
}

// fakeListener is a listener that only has an address (checkExposure
// reads nothing else), so that exposure can be tested without binding
// beyond loopback.
type fakeListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeListener) Addr() net.Addr { return l.addr }

func listenerAt(ip string, port int) net.Listener {
	return fakeListener{addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
}

// TestCheckExposure checks the start-up warnings: none on loopback; for
// each listener beyond it, what it lacks (TLS, the token of its scope, its
// host names) — logged at Warn and kept for GET /api/v1/security.
func TestCheckExposure(t *testing.T) {
	listeners := map[string]net.Listener{
		"otlp_grpc": listenerAt("0.0.0.0", 4317), "otlp_http": listenerAt("10.1.2.3", 4318),
		"zipkin": listenerAt("127.0.0.1", 9411), "http": listenerAt("::", 8686),
	}
	for _, tt := range []struct {
		name string
		cfg  config.Security
		want []string
	}{
		{"nothing", config.Security{}, []string{
			"listener http on [::]:8686 is reachable beyond loopback without TLS (security.tls), a read token (FLOWSCOPE_READ_TOKEN), its host names (security.allowed_hosts), so any Host header is accepted",
			"listener otlp_grpc on 0.0.0.0:4317 is reachable beyond loopback without TLS (security.tls), an ingest token (FLOWSCOPE_INGEST_TOKEN)",
			"listener otlp_http on 10.1.2.3:4318 is reachable beyond loopback without TLS (security.tls), an ingest token (FLOWSCOPE_INGEST_TOKEN)",
		}},
		{"tokens and hosts", config.Security{IngestToken: "ingest-0123456789abcdef", ReadToken: "read-0123456789abcdef01", AllowedHosts: []string{"flowscope.example"}}, []string{
			"listener http on [::]:8686 is reachable beyond loopback without TLS (security.tls)",
			"listener otlp_grpc on 0.0.0.0:4317 is reachable beyond loopback without TLS (security.tls)",
			"listener otlp_http on 10.1.2.3:4318 is reachable beyond loopback without TLS (security.tls)",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Security = tt.cfg
			var logs bytes.Buffer
			g, err := newGuard(cfg, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			g.checkExposure(listeners)
			if !slices.Equal(g.warnings, tt.want) {
				t.Errorf("warnings\n%s\nwant\n%s", strings.Join(g.warnings, "\n"), strings.Join(tt.want, "\n"))
			}
			if n := strings.Count(logs.String(), `level=WARN msg="SECURITY:`); n != len(tt.want) {
				t.Errorf("%d SECURITY warnings logged, want %d:\n%s", n, len(tt.want), logs.String())
			}
			rec := httptest.NewRecorder()
			g.statusHandler().ServeHTTP(rec, httptest.NewRequest("GET", securityPath, nil))
			for _, w := range tt.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("GET %s does not list %q: %s", securityPath, w, rec.Body)
				}
			}
		})
	}
}
