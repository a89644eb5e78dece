package collector

import (
	"net/http/httptest"
	"testing"

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
	} {
		if got := apiScope(httptest.NewRequest(tt.method, tt.path, nil)); got != tt.want {
			t.Errorf("%s %s needs %v, want %v", tt.method, tt.path, got, tt.want)
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
