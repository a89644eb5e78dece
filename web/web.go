// Package web serves the collector's HTTP port (8686 by default): the REST
// query API, health and readiness endpoints, the collector's own metrics in
// Prometheus text format, and the embedded UI.
//
// # Routes
//
//	/api/...   the query API (grpc-gateway), see query/API.md
//	/healthz   200 "ok" while the process serves HTTP
//	/readyz    200 "ready" when the store is open and receivers listen; 503 with the reason otherwise
//	/metrics   self-metrics, Prometheus text exposition
//	/          the embedded UI
package web

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed static
var static embed.FS

// Options configure the handler.
type Options struct {
	// API serves /api/. Required.
	API http.Handler
	// Gatherer provides /metrics. Nil serves no metrics.
	Gatherer prometheus.Gatherer
	// Ready reports readiness; nil means always ready.
	Ready func() error
	// Import serves POST /api/v1/import (file upload, see docs/import.md).
	// Nil leaves the route to API.
	Import http.Handler
	// DashboardsDir is a directory of the user's own dashboard definitions,
	// listed after the built-in ones. Empty means built-in only.
	DashboardsDir string
}

// NewHandler returns the handler of the UI and API port.
func NewHandler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", o.API)
	if o.Import != nil {
		mux.Handle("POST /api/v1/import", o.Import)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Ready != nil {
			if err := o.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	if o.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("BUG: embedded static dir: " + err.Error())
	}
	mux.Handle("/", securityHeaders(http.FileServerFS(sub)))
	return mux
}

// securityHeaders forbids inline scripts from other origins and framing.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
