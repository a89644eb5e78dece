// Package web serves the collector's HTTP port (8686 by default): the REST
// query API, health and readiness endpoints, the collector's own metrics in
// Prometheus text format, and the embedded UI.
//
// # Routes
//
//	/api/...   the query API (grpc-gateway), see query/API.md
//	/api/v1/dashboards, /api/v1/dashboards/{id}
//	           the dashboard definitions (built-in and DashboardsDir), see docs/dashboards.md
//	/api/v1/import (POST) the file import, when Options.Import is set
//	/healthz   200 "ok" while the process serves HTTP
//	/readyz    200 "ready" when the store is open and receivers listen; 503 with the reason otherwise
//	/metrics   self-metrics, Prometheus text exposition
//	/          the embedded UI (static/: ES modules, CSS, no build step), see docs/ui.md
//
// Every response of the UI carries a Content-Security-Policy that allows
// only scripts from this origin, so nothing derived from span data can run
// even if it reached the page as markup (the UI renders it as text).
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

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
	// Security serves GET /api/v1/security (what protects the collector,
	// and exposure warnings the UI shows). Nil leaves the route to API.
	Security http.Handler
	// Jaeger serves Jaeger's query API under /jaeger/api/ (the handler
	// sees the paths without the /jaeger prefix, as Jaeger serves them).
	// Nil serves none.
	Jaeger http.Handler
	// PrometheusMetrics serves GET /api/v1/prometheus/metrics (the RED
	// metrics of every service, operation and edge). Nil leaves the route
	// to API.
	PrometheusMetrics http.Handler
	// Peer serves a node's peer API under /api/v1/peer/ (the query front
	// end's fan-out, query/fanout). Nil leaves the route to API.
	Peer http.Handler
}

// NewHandler returns the handler of the UI and API port.
func NewHandler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", o.API)
	dh := dashboardHandler{dir: o.DashboardsDir}
	mux.HandleFunc("GET /api/v1/dashboards", dh.list)
	mux.HandleFunc("GET /api/v1/dashboards/{id}", dh.get)
	if o.Import != nil {
		mux.Handle("POST /api/v1/import", o.Import)
	}
	if o.Security != nil {
		mux.Handle("GET /api/v1/security", o.Security)
	}
	if o.Jaeger != nil {
		mux.Handle("/jaeger/api/", http.StripPrefix("/jaeger", o.Jaeger))
	}
	if o.PrometheusMetrics != nil {
		mux.Handle("GET /api/v1/prometheus/metrics", o.PrometheusMetrics)
	}
	if o.Peer != nil {
		mux.Handle("/api/v1/peer/", o.Peer)
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
	mux.Handle("/", securityHeaders(staticFiles(sub)))
	return mux
}

// contentTypes pins the types of the UI's assets rather than trusting the
// host's mime tables (a module script served as text/plain does not run).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// staticFiles serves the embedded UI. Embedded files carry no modification
// time, so the browser is told to revalidate: an upgraded binary's UI is
// picked up at once.
func staticFiles(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasSuffix(p, "/") {
			p += "index.html"
		}
		if ct, ok := contentTypes[path.Ext(p)]; ok {
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// securityHeaders forbids inline scripts from other origins and framing.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}
