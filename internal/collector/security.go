package collector

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/security"
)

// guard is the collector's TLS, tokens and HTTP policies
// (docs/security.md).
type guard struct {
	cfg    config.Security
	logger *slog.Logger
	tls    *security.TLS // nil without TLS
	tokens *security.Tokens
	// refused counts requests refused by the HTTP guards.
	refused *prometheus.CounterVec
	// warnings are the exposure warnings logged at start and shown by the
	// UI (GET /api/v1/security).
	warnings []string
}

// newGuard loads the TLS certificate and the tokens of cfg.
func newGuard(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (*guard, error) {
	s := cfg.Security
	tokens, err := security.LoadTokens(security.TokenSources{
		Ingest: security.TokenSource{File: s.IngestTokenFile, Value: s.IngestToken},
		Read:   security.TokenSource{File: s.ReadTokenFile, Value: s.ReadToken},
		Write:  security.TokenSource{File: s.WriteTokenFile, Value: s.WriteToken},
	})
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	g := &guard{cfg: s, logger: logger, tokens: tokens,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_http_requests_refused_total",
			Help: "HTTP requests refused before they were read, by listener and reason: host (not an allowed Host header), csrf (a cross-origin write), content_type (a type browsers send cross-site), token (missing or wrong bearer token).",
		}, []string{"listener", "reason"}),
	}
	reg.MustRegister(g.refused)
	if s.TLS.CertFile != "" {
		g.tls, err = security.NewTLS(security.TLSFiles{CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile, ClientCAFile: s.TLS.ClientCAFile}, logger)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	return g, nil
}

// listener serves TLS on l when TLS is configured.
func (g *guard) listener(l net.Listener) net.Listener {
	if g.tls == nil {
		return l
	}
	return tls.NewListener(l, g.tls.Config())
}

// grpcOptions are the OTLP/query gRPC server's TLS credentials and token
// interceptors.
func (g *guard) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(security.UnaryServerInterceptor(g.tokens, grpcScope)),
		grpc.ChainStreamInterceptor(security.StreamServerInterceptor(g.tokens, grpcScope)),
	}
	if g.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(g.tls.Config())))
	}
	return opts
}

// grpcScope is what a gRPC method needs: the OTLP services ingest; the
// query service reads, except its reloads and manual runs, which write.
func grpcScope(fullMethod string) security.Scope {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch {
	case strings.HasPrefix(service, "opentelemetry.proto.collector."):
		return security.ScopeIngest
	case method == "ReloadRules" || method == "ReloadSynthetics" || method == "RunSynthetic":
		return security.ScopeWrite
	}
	return security.ScopeRead
}

// apiScope is what a request to the API and UI port needs: health probes,
// GET /api/v1/security and the UI's files nothing; other reads the read
// scope; requests that change something (import, reloads, manual runs)
// the write scope.
func apiScope(r *http.Request) security.Scope {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/readyz" || p == securityPath:
		return security.ScopeNone
	case strings.HasPrefix(p, "/jaeger/"):
		// Jaeger's query API only reads (POST /jaeger/api/transform
		// converts the body it is given).
		return security.ScopeRead
	case strings.HasPrefix(p, "/api/v1/peer/"):
		// The peer API reads; its queries are POSTed as JSON.
		return security.ScopeRead
	case !strings.HasPrefix(p, "/api/") && p != "/metrics":
		return security.ScopeNone
	case r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions:
		return security.ScopeRead
	}
	return security.ScopeWrite
}

func ingestScope(*http.Request) security.Scope { return security.ScopeIngest }

// zipkinScope is what a request to the Zipkin port needs: POST sends
// spans (ingest); GET, HEAD and OPTIONS read Zipkin's query API.
func zipkinScope(r *http.Request) security.Scope {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return security.ScopeRead
	}
	return security.ScopeIngest
}

// securityPath is the route of the security status the UI shows.
const securityPath = "/api/v1/security"

// http wraps an HTTP listener's handler with its guard.
func (g *guard) http(name string, l net.Listener, h http.Handler, scope func(*http.Request) security.Scope) http.Handler {
	return security.Guard(h, security.HTTPPolicy{
		Listener: name, Tokens: g.tokens, Scope: scope, ListenAddr: l.Addr().String(),
		AllowedHosts: g.cfg.AllowedHosts, AllowedOrigins: g.cfg.CORSAllowedOrigins, Logger: g.logger,
		OnRefuse: func(reason string) { g.refused.WithLabelValues(name, reason).Inc() },
	})
}

// checkExposure warns, loudly, about every listener reachable beyond
// loopback without TLS, without the token of its scope, or (HTTP) without
// the names its Host header may carry.
func (g *guard) checkExposure(listeners map[string]net.Listener) {
	ingest, read, _ := g.tokens.Configured()
	names := make([]string, 0, len(listeners))
	for name := range listeners {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		addr := listeners[name].Addr().(*net.TCPAddr)
		if addr.IP.IsLoopback() {
			continue
		}
		var missing []string
		if g.tls == nil {
			missing = append(missing, "TLS (security.tls)")
		}
		token, tokenKey := ingest, "an ingest token (FLOWSCOPE_INGEST_TOKEN)"
		if name == "http" {
			token, tokenKey = read, "a read token (FLOWSCOPE_READ_TOKEN)"
		}
		if !token {
			missing = append(missing, tokenKey)
		}
		if name != "otlp_grpc" && addr.IP.IsUnspecified() && len(g.cfg.AllowedHosts) == 0 {
			missing = append(missing, "its host names (security.allowed_hosts), so any Host header is accepted")
		}
		if len(missing) == 0 {
			continue
		}
		w := fmt.Sprintf("listener %s on %s is reachable beyond loopback without %s", name, addr, strings.Join(missing, ", "))
		g.warnings = append(g.warnings, w)
		g.logger.Warn("SECURITY: "+w+"; anyone who reaches it can read every trace or send data (docs/security.md)", "listener", name, "addr", addr.String())
	}
}

// reload rereads the certificate and the token files (SIGHUP); failures
// keep what is in use and are logged.
func (g *guard) reload() {
	if g.tls != nil {
		if err := g.tls.Reload(); err != nil {
			g.logger.Error("TLS certificate not reloaded, keeping the one in use", "err", err)
		}
	}
	if err := g.tokens.Reload(); err != nil {
		g.logger.Error("tokens not reloaded, keeping the ones in use", "err", err)
	}
}

// statusHandler serves GET /api/v1/security: what protects the collector,
// and the exposure warnings. It holds no secret, so it needs no token.
func (g *guard) statusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ingest, read, write := g.tokens.Configured()
		st := struct {
			TLS       bool            `json:"tls"`
			MutualTLS bool            `json:"mutualTls"`
			Tokens    map[string]bool `json:"tokens"`
			Warnings  []string        `json:"warnings"`
		}{
			TLS: g.tls != nil, MutualTLS: g.tls != nil && g.tls.MutualTLS(),
			Tokens:   map[string]bool{"ingest": ingest, "read": read, "write": write},
			Warnings: append([]string{}, g.warnings...),
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(st)
	})
}
