package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/fanout"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/yamlfile"
)

// Config is the complete configuration of a collector process. The zero
// value is not useful: start from Default, or use Load.
//
// Each leaf field is one setting with a YAML key (the field's yaml tag, nested
// by section), a command-line flag and an environment variable; Load's --help
// output and docs/configuration.md list them.
type Config struct {
	// DataDir is the directory that holds the embedded store. It is created
	// if missing. It must not be empty.
	DataDir string `yaml:"data_dir"`
	// HTTPAddr is the host:port of the UI, the REST API, /healthz, /readyz
	// and the Prometheus self-metrics. Port 0 picks a free port.
	HTTPAddr string `yaml:"http_addr"`
	// ShutdownTimeout bounds how long a graceful shutdown may take
	// (draining receivers, committing what was acknowledged, closing the
	// store). It must be positive.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// DashboardsDir is a directory of the user's own dashboard definitions
	// (*.json, schema in dashboards/README.md), listed by the UI after the
	// built-in ones. Empty means only the built-in dashboards.
	DashboardsDir string `yaml:"dashboards_dir"`
	// Policies is a flow policies file or a directory of *.yml/*.yaml
	// policy files (docs/architecture-rules.md); empty means none.
	// Reloaded on SIGHUP and POST /api/v1/policies:reload.
	Policies string `yaml:"policies"`
	// MaxImportBytes limits the size of a file uploaded to
	// POST /api/v1/import. It must be positive.
	MaxImportBytes int64 `yaml:"max_import_bytes"`
	// MemoryBudget bounds the bytes of client data the process holds at
	// once: request bodies being read and decompressed, requests waiting
	// for their commit and committed requests waiting for aggregation.
	// At the limit new requests are refused before they are read, with a
	// retry hint. It must be at least twice receivers.max_request_bytes.
	MemoryBudget int64 `yaml:"memory_budget"`

	// Receivers configures the ingest listeners.
	Receivers Receivers `yaml:"receivers"`
	// Store configures the embedded store.
	Store Store `yaml:"store"`
	// Correlation configures how correlation IDs are found.
	Correlation Correlation `yaml:"correlation"`
	// Aggregation configures the live latency rollups and the flow graph.
	Aggregation Aggregation `yaml:"aggregation"`
	// Alerting configures the alert rules and their notifications.
	Alerting Alerting `yaml:"alerting"`
	// Synthetics configures the synthetic checks.
	Synthetics Synthetics `yaml:"synthetics"`
	// REDMetrics configures the Prometheus exposition of RED metrics,
	// GET /api/v1/prometheus/metrics (docs/integrations.md).
	REDMetrics REDMetrics `yaml:"red_metrics"`
	// Node names this process in a cluster (docs/scale-out.md).
	Node Node `yaml:"node"`
	// Query configures the query front end, `collector query`
	// (docs/scale-out.md).
	Query QueryFrontend `yaml:"query"`
	// Log configures the process logger; see Config.NewLogger.
	Log Logging `yaml:"log"`
	// Security configures TLS, bearer tokens and the browser protections.
	Security Security `yaml:"security"`
}

// REDMetrics configures the Prometheus exposition of the request, error
// and duration metrics of every service, operation and edge.
type REDMetrics struct {
	// Buckets are the upper bounds of the classic histogram buckets of
	// the duration histograms, ascending (+Inf is implied).
	Buckets []time.Duration `yaml:"buckets"`
	// Quantiles are the quantiles exposed as gauges, each in (0, 1).
	Quantiles []float64 `yaml:"quantiles"`
	// QuantileWindow is the time range, ending at the scrape, the
	// quantile gauges are computed over from the HDR histograms.
	QuantileWindow time.Duration `yaml:"quantile_window"`
	// MaxSeries bounds the series of one exposition; what is over is
	// left out and counted.
	MaxSeries int `yaml:"max_series"`
}

// Security configures TLS on every listener, bearer tokens per scope, and
// the names and origins the HTTP listeners accept (docs/security.md).
type Security struct {
	// TLS serves every listener over TLS when CertFile and KeyFile are
	// set; ClientCAFile also requires client certificates signed by it.
	TLS TLS `yaml:"tls"`
	// IngestTokenFile, ReadTokenFile and WriteTokenFile hold the bearer
	// token of each scope (the file's content, trimmed). Empty: the token
	// comes from IngestToken etc., or the scope needs none.
	IngestTokenFile string `yaml:"ingest_token_file"`
	ReadTokenFile   string `yaml:"read_token_file"`
	WriteTokenFile  string `yaml:"write_token_file"`
	// IngestToken, ReadToken and WriteToken are token values. They are
	// only ever read from the environment (FLOWSCOPE_INGEST_TOKEN,
	// FLOWSCOPE_READ_TOKEN, FLOWSCOPE_WRITE_TOKEN), never from flags
	// (process listings show them) nor the config file.
	IngestToken string `yaml:"-"`
	ReadToken   string `yaml:"-"`
	WriteToken  string `yaml:"-"`
	// AllowedHosts are the names, besides the listen address and (on
	// loopback listeners) the loopback names, accepted in the Host header
	// of HTTP requests; "*" accepts any.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// CORSAllowedOrigins are the origins (scheme://host[:port]) that may
	// call the HTTP listeners from another origin's pages; empty: none.
	CORSAllowedOrigins []string `yaml:"cors_allowed_origins"`
}

// TLS names the PEM files of the server certificate, its key, and the CA
// bundle client certificates must chain to (mTLS).
type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// TokenEnv lists the environment variables token values are read from,
// by scope.
var TokenEnv = struct{ Ingest, Read, Write string }{"FLOWSCOPE_INGEST_TOKEN", "FLOWSCOPE_READ_TOKEN", "FLOWSCOPE_WRITE_TOKEN"}

// Alerting configures alert rule evaluation (docs/alerting.md).
type Alerting struct {
	// Rules is a rules file or a directory of *.yml/*.yaml rule files;
	// empty means no rules. Reloaded on SIGHUP and POST
	// /api/v1/rules:reload.
	Rules string `yaml:"rules"`
	// Interval is how often every rule is evaluated, 100ms to 1m.
	Interval time.Duration `yaml:"interval"`
	// ExternalURL is the UI's address as the receivers of notifications
	// reach it, for generatorURL and exemplar links; empty means
	// http://HTTPAddr.
	ExternalURL string `yaml:"external_url"`
	// Notify lists the notification receivers.
	Notify Notify `yaml:"notify"`
}

// Node names the process in a cluster of nodes behind a load balancer.
type Node struct {
	// Name is the node's identity: the node label of its self-metric
	// flowscope_node_info and the name the peer API reports. Empty means
	// the host name.
	Name string `yaml:"name"`
}

// QueryFrontend configures `collector query`, the front end that fans
// every query out to the nodes of a cluster and merges their answers.
type QueryFrontend struct {
	// Peers are the nodes: http(s)://host:port of each node's HTTP port,
	// dns+host:port (every address of a headless service) or
	// dnssrv+_name._tcp.domain (SRV records).
	Peers []string `yaml:"peers"`
	// PeersFile holds more peers, one per line; it is reread every
	// RefreshInterval and on SIGHUP.
	PeersFile string `yaml:"peers_file"`
	// PeerTimeout bounds each node's answer to one query; a node slower
	// than that is left out of the answer, which is marked partial.
	PeerTimeout time.Duration `yaml:"peer_timeout"`
	// RefreshInterval is how often the peers file is reread and the DNS
	// names resolved again.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// PeerTokenFile holds the bearer token sent to the nodes (their read
	// token); empty sends none.
	PeerTokenFile string `yaml:"peer_token_file"`
}

// Synthetics configures the synthetic checks (docs/synthetics.md).
type Synthetics struct {
	// Checks is a checks file or a directory of *.yml/*.yaml check files;
	// empty means no checks. Reloaded on SIGHUP and POST
	// /api/v1/synthetics:reload. Only these files define checks.
	Checks string `yaml:"checks"`
	// Retention is how long run results are kept (at least 1m).
	Retention time.Duration `yaml:"retention"`
	// CorrelationHeader is the request header carrying each run's
	// correlation ID.
	CorrelationHeader string `yaml:"correlation_header"`
	// MaxConcurrent bounds the runs in progress at once (1 to 1000).
	MaxConcurrent int `yaml:"max_concurrent"`
	// ExportURL, when set, is an OTLP/HTTP traces endpoint
	// (http://collector:4318/v1/traces) the checks' spans are sent to
	// instead of this process's store: on a query front end, so that they
	// reach, through the Collector, the node holding the rest of each
	// run's trace (docs/scale-out.md).
	ExportURL string `yaml:"export_url"`
}

// Notify lists where alerts are sent.
type Notify struct {
	// Alertmanager are Alertmanager base URLs (alerts are posted to
	// URL/api/v2/alerts).
	Alertmanager []string `yaml:"alertmanager"`
	// Webhooks receive Alertmanager's webhook JSON on every change to
	// firing or resolved.
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is a webhook receiver: its URL and extra request headers (for
// example an Authorization header; headers can only be set in the file).
type Webhook struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
}

// Receivers configures the ingest listeners. Addresses are host:port; an
// empty host listens on every interface and port 0 picks a free port.
type Receivers struct {
	// OTLPGRPCAddr is the listen address of the OTLP/gRPC receiver.
	OTLPGRPCAddr string `yaml:"otlp_grpc_addr"`
	// OTLPHTTPAddr is the listen address of the OTLP/HTTP receiver.
	OTLPHTTPAddr string `yaml:"otlp_http_addr"`
	// ZipkinAddr is the listen address of the Zipkin-compatible receiver
	// (POST /api/v1/spans and /api/v2/spans).
	ZipkinAddr string `yaml:"zipkin_addr"`
	// MaxRequestBytes limits the size of one request: a decompressed HTTP
	// body or a gRPC message. Larger requests are refused. It must be
	// positive.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
}

// Store configures the embedded store.
type Store struct {
	// Retention is how long spans, metric points and rollups are kept.
	// It must be at least one minute.
	Retention time.Duration `yaml:"retention"`
	// QueueBytes bounds the bytes of accepted requests waiting for their
	// commit. When the queue is full new requests are refused as
	// overloaded (HTTP 429, gRPC RESOURCE_EXHAUSTED). It must be at least
	// Receivers.MaxRequestBytes, so that one maximal request always fits.
	QueueBytes int64 `yaml:"queue_bytes"`
	// SyncFreelist writes the bbolt freelist in every commit, so that a
	// restart after a crash does not walk the whole file to rebuild it
	// (seconds per few GB), at about 10 % of ingest throughput. A clean
	// shutdown writes the freelist either way.
	SyncFreelist bool `yaml:"sync_freelist"`
}

// Aggregation configures the live HDR latency rollups and the flow graph.
type Aggregation struct {
	// Enabled turns aggregation on. Off only for benchmarks and diagnosis:
	// the flow graph and latency API then return nothing.
	Enabled bool `yaml:"enabled"`
	// SignificantDigits is the HDR histogram precision, 1–5. Two digits keep
	// every quantile within 1% of the exact value.
	SignificantDigits int `yaml:"significant_digits"`
	// MaxLatency is the largest duration tracked exactly; longer spans are
	// recorded as MaxLatency. At least 1ms.
	MaxLatency time.Duration `yaml:"max_latency"`
	// EdgeWait is how long a client span waits for its server half (and
	// vice versa) before it is flushed as what is known: an edge to a
	// virtual node, or an unpaired half. 1s to 5m.
	EdgeWait time.Duration `yaml:"edge_wait"`
	// MaxPending bounds the spans waiting for their other half; beyond it
	// the oldest are resolved early. At least 1000.
	MaxPending int `yaml:"max_pending"`
	// Retention10s, Retention1m and Retention1h keep the rollup tiers of
	// 10-second, 1-minute and 1-hour windows. Each at least 1m.
	Retention10s time.Duration `yaml:"retention_10s"`
	Retention1m  time.Duration `yaml:"retention_1m"`
	Retention1h  time.Duration `yaml:"retention_1h"`
}

// Correlation configures how correlation IDs are found.
type Correlation struct {
	// Keys are the span attribute and baggage keys whose values are
	// indexed as correlation IDs, in order of preference. An empty list
	// turns correlation indexing off. Keys must be non-empty and unique.
	Keys []string `yaml:"keys"`
}

// Logging configures the process logger.
type Logging struct {
	// Level is the minimum level logged: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is the log line format: text (logfmt-like key=value) or json.
	Format string `yaml:"format"`
}

// Default returns the built-in configuration: everything listens on
// 127.0.0.1 only and the store lives in ./data.
//
// The defaults of the store and of the aggregation are theirs
// (store.DefaultOptions, aggregate.DefaultOptions), not restated here.
func Default() Config {
	st := store.DefaultOptions()
	agg := aggregate.DefaultOptions()
	return Config{
		DataDir:         "./data",
		HTTPAddr:        "127.0.0.1:8686",
		ShutdownTimeout: 30 * time.Second,
		MaxImportBytes:  4 << 30,
		MemoryBudget:    384 << 20,
		Receivers: Receivers{
			OTLPGRPCAddr:    "127.0.0.1:4317",
			OTLPHTTPAddr:    "127.0.0.1:4318",
			ZipkinAddr:      "127.0.0.1:9411",
			MaxRequestBytes: 16 << 20,
		},
		REDMetrics: REDMetrics{
			Buckets: []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
				50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
				time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second},
			Quantiles:      []float64{0.5, 0.9, 0.99},
			QuantileWindow: time.Minute,
			MaxSeries:      20000,
		},
		Store: Store{
			Retention:  st.Retention,
			QueueBytes: st.QueueBytes,
		},
		Correlation: Correlation{
			Keys: store.DefaultCorrelationKeys(),
		},
		Aggregation: Aggregation{
			Enabled:           true,
			SignificantDigits: agg.SignificantDigits,
			MaxLatency:        agg.MaxValue,
			EdgeWait:          agg.PairWait,
			MaxPending:        agg.MaxPending,
			Retention10s:      st.RollupRetention[0],
			Retention1m:       st.RollupRetention[1],
			Retention1h:       st.RollupRetention[2],
		},
		Alerting: Alerting{
			Interval: time.Second,
		},
		Synthetics: Synthetics{
			Retention:         st.SyntheticRetention,
			CorrelationHeader: "X-Correlation-ID",
			MaxConcurrent:     16,
		},
		Query: QueryFrontend{
			Peers:           []string{},
			PeerTimeout:     10 * time.Second,
			RefreshInterval: 30 * time.Second,
		},
		Log: Logging{
			Level:  "info",
			Format: "text",
		},
	}
}

// MinRetention is the smallest accepted Store.Retention.
const MinRetention = time.Minute

// logLevels maps the accepted Logging.Level values to slog levels.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Validate reports every invalid setting of c, one per line of the returned
// error. Each line names the setting by its YAML key, its flag and its
// environment variable. Validate returns nil when c can be used.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, value any, format string, args ...any) {
		errs = append(errs, settingError(key, value, fmt.Sprintf(format, args...)))
	}

	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", c.DataDir, "must not be empty")
	}

	addrs := []struct{ key, addr string }{
		{"receivers.otlp_grpc_addr", c.Receivers.OTLPGRPCAddr},
		{"receivers.otlp_http_addr", c.Receivers.OTLPHTTPAddr},
		{"receivers.zipkin_addr", c.Receivers.ZipkinAddr},
		{"http_addr", c.HTTPAddr},
	}
	usedBy := map[string]string{}
	for _, a := range addrs {
		norm, err := checkAddr(a.addr)
		if err != nil {
			bad(a.key, a.addr, "%v", err)
			continue
		}
		if strings.HasSuffix(norm, ":0") {
			continue // every port-0 listener gets its own port
		}
		if other, ok := usedBy[norm]; ok {
			bad(a.key, a.addr, "already used by %s", other)
			continue
		}
		usedBy[norm] = a.key
	}

	if c.Query.PeerTimeout <= 0 {
		bad("query.peer_timeout", c.Query.PeerTimeout, "must be positive")
	}
	if c.Query.RefreshInterval < time.Second {
		bad("query.refresh_interval", c.Query.RefreshInterval, "must be at least 1s")
	}
	for _, p := range c.Query.Peers {
		if err := fanout.ParsePeer(p); err != nil {
			bad("query.peers", p, "%v", err)
		}
	}

	if c.MaxImportBytes <= 0 {
		bad("max_import_bytes", c.MaxImportBytes, "must be positive")
	}
	if c.DashboardsDir != "" {
		if fi, err := os.Stat(c.DashboardsDir); err != nil || !fi.IsDir() {
			bad("dashboards_dir", c.DashboardsDir, "must be an existing directory")
		}
	}
	if c.Receivers.MaxRequestBytes <= 0 {
		bad("receivers.max_request_bytes", c.Receivers.MaxRequestBytes, "must be positive")
	}
	if c.MemoryBudget < 2*c.Receivers.MaxRequestBytes || c.MemoryBudget <= 0 {
		bad("memory_budget", c.MemoryBudget, "must be positive and at least twice receivers.max_request_bytes (%d)", 2*c.Receivers.MaxRequestBytes)
	}
	if c.Store.Retention < MinRetention {
		bad("store.retention", c.Store.Retention, "must be at least %s", yamlfile.FormatDuration(MinRetention))
	}
	if c.Store.QueueBytes < c.Receivers.MaxRequestBytes || c.Store.QueueBytes <= 0 {
		bad("store.queue_bytes", c.Store.QueueBytes, "must be positive and at least receivers.max_request_bytes (%d)", c.Receivers.MaxRequestBytes)
	}

	seen := map[string]bool{}
	for i, k := range c.Correlation.Keys {
		switch {
		case strings.TrimSpace(k) == "":
			bad("correlation.keys", c.Correlation.Keys, "entry %d is empty", i)
		case k != strings.TrimSpace(k):
			bad("correlation.keys", c.Correlation.Keys, "entry %q has leading or trailing spaces", k)
		case seen[k]:
			bad("correlation.keys", c.Correlation.Keys, "entry %q is listed twice", k)
		}
		seen[k] = true
	}

	a := c.Aggregation
	if a.SignificantDigits < 1 || a.SignificantDigits > 5 {
		bad("aggregation.significant_digits", a.SignificantDigits, "must be between 1 and 5")
	}
	if a.MaxLatency < time.Millisecond {
		bad("aggregation.max_latency", a.MaxLatency, "must be at least 1ms")
	}
	if a.EdgeWait < time.Second || a.EdgeWait > 5*time.Minute {
		bad("aggregation.edge_wait", a.EdgeWait, "must be between 1s and 5m")
	}
	if a.MaxPending < 1000 {
		bad("aggregation.max_pending", a.MaxPending, "must be at least 1000")
	}
	for _, r := range []struct {
		key string
		d   time.Duration
	}{{"aggregation.retention_10s", a.Retention10s}, {"aggregation.retention_1m", a.Retention1m}, {"aggregation.retention_1h", a.Retention1h}} {
		if r.d < MinRetention {
			bad(r.key, r.d, "must be at least %s", yamlfile.FormatDuration(MinRetention))
		}
	}

	if c.Alerting.Interval < 100*time.Millisecond || c.Alerting.Interval > time.Minute {
		bad("alerting.interval", c.Alerting.Interval, "must be between 100ms and 1m")
	}
	if c.Alerting.Rules != "" {
		if _, err := os.Stat(c.Alerting.Rules); err != nil {
			bad("alerting.rules", c.Alerting.Rules, "must be an existing file or directory")
		}
	}
	if c.Policies != "" {
		if _, err := os.Stat(c.Policies); err != nil {
			bad("policies", c.Policies, "must be an existing file or directory")
		}
	}
	if c.Synthetics.Checks != "" {
		if _, err := os.Stat(c.Synthetics.Checks); err != nil {
			bad("synthetics.checks", c.Synthetics.Checks, "must be an existing file or directory")
		}
	}
	if c.Synthetics.Retention < MinRetention {
		bad("synthetics.retention", c.Synthetics.Retention, "must be at least %s", MinRetention)
	}
	if !headerName(c.Synthetics.CorrelationHeader) {
		bad("synthetics.correlation_header", c.Synthetics.CorrelationHeader, "must be an HTTP header name")
	}
	if c.Synthetics.ExportURL != "" && !httpURL(c.Synthetics.ExportURL) {
		bad("synthetics.export_url", c.Synthetics.ExportURL, "must be an http:// or https:// URL")
	}
	if c.Synthetics.MaxConcurrent < 1 || c.Synthetics.MaxConcurrent > 1000 {
		bad("synthetics.max_concurrent", c.Synthetics.MaxConcurrent, "must be between 1 and 1000")
	}
	if u := c.Alerting.ExternalURL; u != "" && !httpURL(u) {
		bad("alerting.external_url", u, "must be an absolute http or https URL")
	}
	for _, u := range c.Alerting.Notify.Alertmanager {
		if !httpURL(u) {
			bad("alerting.notify.alertmanager", c.Alerting.Notify.Alertmanager, "entry %q must be an absolute http or https URL", u)
		}
	}
	for _, w := range c.Alerting.Notify.Webhooks {
		if !httpURL(w.URL) {
			bad("alerting.notify.webhooks", webhookURLs(c.Alerting.Notify.Webhooks), "entry %q must be an absolute http or https URL", w.URL)
		}
	}

	c.validateREDMetrics(bad)
	c.validateSecurity(bad)

	if _, ok := logLevels[c.Log.Level]; !ok {
		bad("log.level", c.Log.Level, "must be one of debug, info, warn, error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", c.Log.Format, "must be text or json")
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", c.ShutdownTimeout, "must be positive")
	}
	return errors.Join(errs...)
}

// Limits of the red_metrics settings.
const (
	// MaxREDBuckets bounds red_metrics.buckets: every bound is a series of
	// every service, edge and operation.
	MaxREDBuckets = 64
	// MaxREDQuantiles bounds red_metrics.quantiles.
	MaxREDQuantiles = 16
	// MinREDQuantileWindow is the smallest red_metrics.quantile_window:
	// one rollup window.
	MinREDQuantileWindow = 10 * time.Second
)

// validateREDMetrics checks the red_metrics section.
func (c Config) validateREDMetrics(bad func(key string, value any, format string, args ...any)) {
	r := c.REDMetrics
	switch {
	case len(r.Buckets) == 0 || len(r.Buckets) > MaxREDBuckets:
		bad("red_metrics.buckets", r.Buckets, "must list 1 to %d bucket bounds", MaxREDBuckets)
	default:
		for i, b := range r.Buckets {
			if b <= 0 {
				bad("red_metrics.buckets", r.Buckets, "bound %s is not positive", yamlfile.FormatDuration(b))
				break
			}
			if i > 0 && b <= r.Buckets[i-1] {
				bad("red_metrics.buckets", r.Buckets, "bounds must ascend: %s follows %s", yamlfile.FormatDuration(b), yamlfile.FormatDuration(r.Buckets[i-1]))
				break
			}
		}
	}
	if len(r.Quantiles) > MaxREDQuantiles {
		bad("red_metrics.quantiles", r.Quantiles, "must list at most %d quantiles", MaxREDQuantiles)
	}
	for i, q := range r.Quantiles {
		if !(q > 0 && q < 1) {
			bad("red_metrics.quantiles", r.Quantiles, "quantile %v is not in (0, 1): write 0.99 for p99", q)
			break
		}
		if slices.Contains(r.Quantiles[:i], q) {
			bad("red_metrics.quantiles", r.Quantiles, "quantile %v is listed twice", q)
			break
		}
	}
	if r.QuantileWindow < MinREDQuantileWindow {
		bad("red_metrics.quantile_window", r.QuantileWindow, "must be at least %s", yamlfile.FormatDuration(MinREDQuantileWindow))
	}
	if r.MaxSeries < 1 {
		bad("red_metrics.max_series", r.MaxSeries, "must be at least 1")
	}
}

// httpURL reports whether s is an absolute http or https URL with a host.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// webhookURLs lists the webhooks' URLs.
func webhookURLs(ws []Webhook) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.URL)
	}
	return out
}

// ExternalURL returns alerting.external_url, or http://HTTPAddr (with
// 127.0.0.1 for an empty host) when it is not set.
func (c Config) ExternalURL() string {
	if c.Alerting.ExternalURL != "" {
		return strings.TrimRight(c.Alerting.ExternalURL, "/")
	}
	host, port, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil {
		return "http://" + c.HTTPAddr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// settingError formats a problem with one setting, naming every way to set it.
func settingError(key string, value any, problem string) error {
	s := lookupSetting(key)
	if s == nil {
		panic("BUG: config: no setting with key " + key)
	}
	return fmt.Errorf("%s = %s: %s (flag --%s, env %s)", key, quoteValue(value), problem, s.flag, s.env)
}

// quoteValue renders a setting's value for an error message.
func quoteValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []string:
		return "[" + strings.Join(v, ",") + "]"
	case time.Duration:
		return yamlfile.FormatDuration(v)
	case []time.Duration:
		return "[" + formatDurations(v) + "]"
	case []float64:
		return "[" + formatFloats(v) + "]"
	default:
		return fmt.Sprint(v)
	}
}

// checkAddr checks that addr is host:port with a numeric port and returns it
// in canonical form.
func checkAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errors.New("must be host:port, for example 127.0.0.1:4317")
	}
	if strings.ContainsAny(host, " \t") {
		return "", fmt.Errorf("host %q contains spaces", host)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	return net.JoinHostPort(host, port), nil
}

// NewLogger returns a logger writing to w with the level and format of
// c.Log. Values that Validate would reject fall back to info and text.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	level, ok := logLevels[c.Log.Level]
	if !ok {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty entries. It never returns nil.
func splitList(s string) []string {
	out := []string{}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// formatDurations joins durations with commas, as flags take them.
func formatDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = yamlfile.FormatDuration(d)
	}
	return strings.Join(parts, ",")
}

// formatFloats joins numbers with commas, as flags take them.
func formatFloats(fs []float64) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// ConfigEnv is the environment variable that names the YAML configuration
// file when --config is not given.
const ConfigEnv = "FLOWSCOPE_CONFIG"

// setting describes one leaf of Config: how it is named in YAML, on the
// command line and in the environment, and how to set it from a string.
type setting struct {
	key     string // dotted YAML key
	flag    string // flag name without dashes
	env     string // environment variable
	arg     string // placeholder for the value in --help
	usage   string // one-line meaning, for --help
	set     func(c *Config, s string) error
	display func(c *Config) string // the current value, for --help
}

// settings lists every setting in the order --help shows them.
var settings = []setting{
	stringSetting("data_dir", "data-dir", "DIR", "directory of the embedded store (created if missing)",
		func(c *Config) *string { return &c.DataDir }),
	stringSetting("receivers.otlp_grpc_addr", "otlp-grpc-addr", "ADDR", "OTLP/gRPC listen address",
		func(c *Config) *string { return &c.Receivers.OTLPGRPCAddr }),
	stringSetting("receivers.otlp_http_addr", "otlp-http-addr", "ADDR", "OTLP/HTTP listen address",
		func(c *Config) *string { return &c.Receivers.OTLPHTTPAddr }),
	stringSetting("receivers.zipkin_addr", "zipkin-addr", "ADDR", "Zipkin-compatible listen address (/api/v1/spans, /api/v2/spans)",
		func(c *Config) *string { return &c.Receivers.ZipkinAddr }),
	bytesSetting("receivers.max_request_bytes", "max-request-bytes", "largest request accepted, decompressed HTTP body or gRPC message",
		func(c *Config) *int64 { return &c.Receivers.MaxRequestBytes }),
	stringSetting("http_addr", "http-addr", "ADDR", "UI, REST API, health and self-metrics listen address",
		func(c *Config) *string { return &c.HTTPAddr }),
	stringSetting("dashboards_dir", "dashboards-dir", "DIR", "directory of your own dashboard definitions (*.json), shown after the built-in ones",
		func(c *Config) *string { return &c.DashboardsDir }),
	bytesSetting("memory_budget", "memory-budget", "bytes of client data in flight (bodies, commit queue, aggregation backlog) before new requests are refused with a retry hint",
		func(c *Config) *int64 { return &c.MemoryBudget }),
	bytesSetting("max_import_bytes", "max-import-bytes", "largest file accepted by POST /api/v1/import",
		func(c *Config) *int64 { return &c.MaxImportBytes }),
	durationSetting("store.retention", "retention", "how long data is kept (at least 1m)",
		func(c *Config) *time.Duration { return &c.Store.Retention }),
	bytesSetting("store.queue_bytes", "store-queue-bytes", "bytes of requests waiting for commit before new ones are refused as overloaded",
		func(c *Config) *int64 { return &c.Store.QueueBytes }),
	boolSetting("store.sync_freelist", "store-sync-freelist", "write the store's freelist in every commit: restart after a crash in constant time, at about 10% of ingest throughput",
		func(c *Config) *bool { return &c.Store.SyncFreelist }),
	listSetting("correlation.keys", "correlation-keys", "comma-separated attribute and baggage keys holding correlation IDs (empty: off)",
		func(c *Config) *[]string { return &c.Correlation.Keys }),
	boolSetting("aggregation.enabled", "aggregation", "live latency rollups and flow graph (false only for benchmarks)",
		func(c *Config) *bool { return &c.Aggregation.Enabled }),
	intSetting("aggregation.significant_digits", "latency-digits", "HDR histogram precision, 1-5 (2 keeps quantiles within 1%)",
		func(c *Config) *int { return &c.Aggregation.SignificantDigits }),
	durationSetting("aggregation.max_latency", "latency-max", "largest duration tracked; longer spans count as this",
		func(c *Config) *time.Duration { return &c.Aggregation.MaxLatency }),
	durationSetting("aggregation.edge_wait", "edge-wait", "how long a client span waits for its server half before a virtual or unpaired edge",
		func(c *Config) *time.Duration { return &c.Aggregation.EdgeWait }),
	intSetting("aggregation.max_pending", "edge-max-pending", "most spans waiting for their other half",
		func(c *Config) *int { return &c.Aggregation.MaxPending }),
	durationSetting("aggregation.retention_10s", "rollup-retention-10s", "how long 10-second rollup windows are kept",
		func(c *Config) *time.Duration { return &c.Aggregation.Retention10s }),
	durationSetting("aggregation.retention_1m", "rollup-retention-1m", "how long 1-minute rollup windows are kept",
		func(c *Config) *time.Duration { return &c.Aggregation.Retention1m }),
	durationSetting("aggregation.retention_1h", "rollup-retention-1h", "how long 1-hour rollup windows are kept",
		func(c *Config) *time.Duration { return &c.Aggregation.Retention1h }),
	stringSetting("alerting.rules", "rules", "PATH", "alert rules file or directory of *.yml rule files (reloaded on SIGHUP and POST /api/v1/rules:reload)",
		func(c *Config) *string { return &c.Alerting.Rules }),
	durationSetting("alerting.interval", "alerting-interval", "how often the alert rules are evaluated (100ms to 1m)",
		func(c *Config) *time.Duration { return &c.Alerting.Interval }),
	stringSetting("alerting.external_url", "external-url", "URL", "the UI's URL as notification receivers reach it, for alert links (empty: http://HTTP_ADDR)",
		func(c *Config) *string { return &c.Alerting.ExternalURL }),
	listSetting("alerting.notify.alertmanager", "alertmanager-url", "comma-separated Alertmanager base URLs alerts are posted to (/api/v2/alerts)",
		func(c *Config) *[]string { return &c.Alerting.Notify.Alertmanager }),
	{
		key: "alerting.notify.webhooks", flag: "webhook-url", env: envName("webhook-url"), arg: "LIST",
		usage: "comma-separated webhook URLs receiving Alertmanager's webhook JSON (headers: config file only)",
		set: func(c *Config, s string) error {
			c.Alerting.Notify.Webhooks = nil
			for _, u := range splitList(s) {
				c.Alerting.Notify.Webhooks = append(c.Alerting.Notify.Webhooks, Webhook{URL: u})
			}
			return nil
		},
		display: func(c *Config) string { return strings.Join(webhookURLs(c.Alerting.Notify.Webhooks), ",") },
	},
	stringSetting("policies", "policies", "PATH", "flow policies file or directory of *.yml policy files, with the lint thresholds (reloaded on SIGHUP and POST /api/v1/policies:reload)",
		func(c *Config) *string { return &c.Policies }),
	stringSetting("synthetics.checks", "synthetics", "PATH", "synthetic checks file or directory of *.yml check files (reloaded on SIGHUP and POST /api/v1/synthetics:reload)",
		func(c *Config) *string { return &c.Synthetics.Checks }),
	durationSetting("synthetics.retention", "synthetics-retention", "how long synthetic run results are kept (at least 1m)",
		func(c *Config) *time.Duration { return &c.Synthetics.Retention }),
	stringSetting("synthetics.correlation_header", "synthetics-correlation-header", "NAME", "request header carrying each synthetic run's correlation ID",
		func(c *Config) *string { return &c.Synthetics.CorrelationHeader }),
	stringSetting("synthetics.export_url", "synthetics-export-url", "URL", "OTLP/HTTP traces endpoint the checks' spans are sent to instead of the own store (a query front end: the Collector's /v1/traces)",
		func(c *Config) *string { return &c.Synthetics.ExportURL }),
	intSetting("synthetics.max_concurrent", "synthetics-max-concurrent", "most synthetic runs in progress at once (1 to 1000)",
		func(c *Config) *int { return &c.Synthetics.MaxConcurrent }),
	{
		key: "red_metrics.buckets", flag: "red-buckets", env: envName("red-buckets"), arg: "LIST",
		usage: "comma-separated ascending upper bounds of the duration histogram buckets of /api/v1/prometheus/metrics (1 to 64 durations)",
		set: func(c *Config, s string) error {
			var ds []time.Duration
			for _, part := range splitList(s) {
				d, err := time.ParseDuration(part)
				if err != nil {
					return fmt.Errorf("invalid duration %q in the list: want durations such as 5ms, 250ms or 2.5s", part)
				}
				ds = append(ds, d)
			}
			c.REDMetrics.Buckets = ds
			return nil
		},
		display: func(c *Config) string { return formatDurations(c.REDMetrics.Buckets) },
	},
	{
		key: "red_metrics.quantiles", flag: "red-quantiles", env: envName("red-quantiles"), arg: "LIST",
		usage: "comma-separated quantiles in (0, 1) exposed as gauges by /api/v1/prometheus/metrics (empty: none)",
		set: func(c *Config, s string) error {
			qs := []float64{}
			for _, part := range splitList(s) {
				q, err := strconv.ParseFloat(part, 64)
				if err != nil {
					return fmt.Errorf("invalid quantile %q in the list: want numbers such as 0.5 or 0.99", part)
				}
				qs = append(qs, q)
			}
			c.REDMetrics.Quantiles = qs
			return nil
		},
		display: func(c *Config) string { return formatFloats(c.REDMetrics.Quantiles) },
	},
	durationSetting("red_metrics.quantile_window", "red-quantile-window", "range, ending at the scrape, the quantile gauges of /api/v1/prometheus/metrics are computed over (at least 10s)",
		func(c *Config) *time.Duration { return &c.REDMetrics.QuantileWindow }),
	intSetting("red_metrics.max_series", "red-max-series", "most series in one /api/v1/prometheus/metrics exposition; the services, edges and operations over it are left out and counted",
		func(c *Config) *int { return &c.REDMetrics.MaxSeries }),
	stringSetting("security.tls.cert_file", "tls-cert-file", "PATH", "PEM server certificate: every listener serves TLS (reloaded when the file changes and on SIGHUP)",
		func(c *Config) *string { return &c.Security.TLS.CertFile }),
	stringSetting("security.tls.key_file", "tls-key-file", "PATH", "PEM private key of --tls-cert-file",
		func(c *Config) *string { return &c.Security.TLS.KeyFile }),
	stringSetting("security.tls.client_ca_file", "tls-client-ca-file", "PATH", "PEM CA bundle: every listener requires a client certificate signed by it (mTLS)",
		func(c *Config) *string { return &c.Security.TLS.ClientCAFile }),
	stringSetting("security.ingest_token_file", "ingest-token-file", "PATH", "file holding the bearer token for sending telemetry (or set FLOWSCOPE_INGEST_TOKEN)",
		func(c *Config) *string { return &c.Security.IngestTokenFile }),
	stringSetting("security.read_token_file", "read-token-file", "PATH", "file holding the bearer token for reading the API, UI and /metrics (or set FLOWSCOPE_READ_TOKEN)",
		func(c *Config) *string { return &c.Security.ReadTokenFile }),
	stringSetting("security.write_token_file", "write-token-file", "PATH", "file holding the bearer token for imports, reloads and manual checks; it also reads (or set FLOWSCOPE_WRITE_TOKEN)",
		func(c *Config) *string { return &c.Security.WriteTokenFile }),
	listSetting("security.allowed_hosts", "allowed-hosts", "comma-separated names accepted in the Host header besides the listen address and loopback names (* for any)",
		func(c *Config) *[]string { return &c.Security.AllowedHosts }),
	listSetting("security.cors_allowed_origins", "cors-allowed-origins", "comma-separated origins (scheme://host[:port]) allowed to call the HTTP listeners cross-origin (default none)",
		func(c *Config) *[]string { return &c.Security.CORSAllowedOrigins }),
	stringSetting("node.name", "node-name", "NAME", "this node's name in a cluster: the node label of flowscope_node_info (empty: the host name)",
		func(c *Config) *string { return &c.Node.Name }),
	listSetting("query.peers", "peers", "collector query only: comma-separated nodes, http://host:port, dns+host:port or dnssrv+NAME",
		func(c *Config) *[]string { return &c.Query.Peers }),
	stringSetting("query.peers_file", "peers-file", "PATH", "collector query only: file of more peers, one per line (reread every refresh interval and on SIGHUP)",
		func(c *Config) *string { return &c.Query.PeersFile }),
	durationSetting("query.peer_timeout", "peer-timeout", "collector query only: longest wait for one node's answer; a slower node is left out and the answer marked partial",
		func(c *Config) *time.Duration { return &c.Query.PeerTimeout }),
	durationSetting("query.refresh_interval", "peers-refresh", "collector query only: how often the peers file is reread and DNS names resolved",
		func(c *Config) *time.Duration { return &c.Query.RefreshInterval }),
	stringSetting("query.peer_token_file", "peer-token-file", "PATH", "collector query only: file holding the bearer token sent to the nodes (their read token)",
		func(c *Config) *string { return &c.Query.PeerTokenFile }),
	stringSetting("log.level", "log-level", "LEVEL", "minimum log level: debug, info, warn or error",
		func(c *Config) *string { return &c.Log.Level }),
	stringSetting("log.format", "log-format", "FORMAT", "log format: text or json",
		func(c *Config) *string { return &c.Log.Format }),
	durationSetting("shutdown_timeout", "shutdown-timeout", "longest graceful shutdown",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
}

// headerName reports whether s is an HTTP header field name (an RFC 9110
// token).
func headerName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// envName derives a setting's environment variable from its flag name.
func envName(flagName string) string {
	return "FLOWSCOPE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func stringSetting(key, flagName, arg, usage string, field func(*Config) *string) setting {
	return setting{
		key: key, flag: flagName, env: envName(flagName), arg: arg, usage: usage,
		set:     func(c *Config, s string) error { *field(c) = s; return nil },
		display: func(c *Config) string { return *field(c) },
	}
}

func bytesSetting(key, flagName, usage string, field func(*Config) *int64) setting {
	return setting{
		key: key, flag: flagName, env: envName(flagName), arg: "BYTES", usage: usage,
		set: func(c *Config, s string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return fmt.Errorf("invalid byte count %q: want a whole number of bytes", s)
			}
			*field(c) = n
			return nil
		},
		display: func(c *Config) string { return strconv.FormatInt(*field(c), 10) },
	}
}

func durationSetting(key, flagName, usage string, field func(*Config) *time.Duration) setting {
	return setting{
		key: key, flag: flagName, env: envName(flagName), arg: "DURATION", usage: usage,
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("invalid duration %q: want a number with a unit, such as 30s, 15m or 168h", s)
			}
			*field(c) = d
			return nil
		},
		display: func(c *Config) string { return yamlfile.FormatDuration(*field(c)) },
	}
}

func boolSetting(key, flagName, usage string, field func(*Config) *bool) setting {
	return setting{
		key: key, flag: flagName, env: envName(flagName), arg: "BOOL", usage: usage,
		set: func(c *Config, s string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("invalid boolean %q: want true or false", s)
			}
			*field(c) = b
			return nil
		},
		display: func(c *Config) string { return strconv.FormatBool(*field(c)) },
	}
}

func intSetting(key, flagName, usage string, field func(*Config) *int) setting {
	return setting{
		key: key, flag: flagName, env: envName(flagName), arg: "N", usage: usage,
		set: func(c *Config, s string) error {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("invalid number %q: want a whole number", s)
			}
			*field(c) = n
			return nil
		},
		display: func(c *Config) string { return strconv.Itoa(*field(c)) },
	}
}

func listSetting(key, flagName, usage string, field func(*Config) *[]string) setting {
	return setting{
		key: key, flag: flagName, env: envName(flagName), arg: "LIST", usage: usage,
		set:     func(c *Config, s string) error { *field(c) = splitList(s); return nil },
		display: func(c *Config) string { return strings.Join(*field(c), ",") },
	}
}

// lookupSetting returns the setting with the given YAML key, or nil.
func lookupSetting(key string) *setting {
	for i := range settings {
		if settings[i].key == key {
			return &settings[i]
		}
	}
	return nil
}

// Load builds the configuration of `collector serve` from, in increasing
// precedence: Default, the YAML file named by --config (or by the
// FLOWSCOPE_CONFIG environment variable), the FLOWSCOPE_* environment
// variables read with getenv, and the flags in args. args are the arguments
// after the subcommand. Empty environment variables count as unset.
//
// With -h or --help, Load prints every setting, its default and its
// environment variable to stderr and returns flag.ErrHelp. Load writes
// nothing else to stderr: errors (a bad flag, an unreadable or invalid file,
// an unparsable environment value, a failed Validate) are returned, and
// each names the setting or the file line at fault.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("collector serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	var configPath string
	fs.StringVar(&configPath, "config", "", "YAML configuration file")
	type override struct {
		s     *setting
		value string
	}
	var overrides []override
	for i := range settings {
		s := &settings[i]
		fs.Func(s.flag, s.usage, func(v string) error {
			var scratch Config
			if err := s.set(&scratch, v); err != nil {
				return err
			}
			overrides = append(overrides, override{s, v})
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			PrintUsage(stderr)
		}
		return Config{}, FlagError(err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q: serve takes only flags", fs.Arg(0))
	}

	cfg := Default()
	if configPath == "" {
		configPath = getenv(ConfigEnv)
	}
	if configPath != "" {
		if err := loadFile(&cfg, configPath); err != nil {
			return Config{}, err
		}
	}
	for i := range settings {
		s := &settings[i]
		if v := getenv(s.env); v != "" {
			if err := s.set(&cfg, v); err != nil {
				return Config{}, fmt.Errorf("environment variable %s: %w", s.env, err)
			}
		}
	}
	cfg.Security.IngestToken = getenv(TokenEnv.Ingest)
	cfg.Security.ReadToken = getenv(TokenEnv.Read)
	cfg.Security.WriteToken = getenv(TokenEnv.Write)
	for _, o := range overrides {
		if err := o.s.set(&cfg, o.value); err != nil {
			// Not expected: the value was already checked while parsing.
			return Config{}, fmt.Errorf("flag --%s: %w", o.s.flag, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// FlagError returns err, an error of flag.FlagSet.Parse, with the flag
// spelled as help spells it, with two dashes: package flag says "flag
// provided but not defined: -retentoin" and "invalid value "x" for flag
// -retention: …" even when the command line said --retention, while help
// lists --retention. flag.ErrHelp and nil are returned as they are, and so
// is any other error; the result of a rewrite does not wrap err, as
// package flag's errors are plain strings.
func FlagError(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := err.Error()
	// The messages of package flag that name a flag after a single dash
	// (flag.go, FlagSet.parseOne); the value in "invalid value %q" is
	// skipped as a quoted string, as it may hold anything.
	for _, prefix := range []string{
		"flag provided but not defined: ",
		"flag needs an argument: ",
	} {
		if rest, ok := strings.CutPrefix(msg, prefix); ok {
			return errors.New(prefix + dashDash(rest))
		}
	}
	for _, prefix := range []string{"invalid value ", "invalid boolean value "} {
		rest, ok := strings.CutPrefix(msg, prefix)
		if !ok {
			continue
		}
		quoted, err := strconv.QuotedPrefix(rest)
		if err != nil {
			break
		}
		rest = rest[len(quoted):]
		for _, infix := range []string{" for flag -", " for -"} {
			if name, ok := strings.CutPrefix(rest, infix); ok {
				return errors.New(prefix + quoted + infix + "-" + name)
			}
		}
	}
	return err
}

// dashDash spells the flag at the start of s, written with one dash, with
// two; s is returned as it is when it does not start with a dash.
func dashDash(s string) string {
	if strings.HasPrefix(s, "-") {
		return "-" + s
	}
	return s
}

// PrintUsage writes the help of `collector serve` to w: every flag with its
// default, environment variable and YAML key.
func PrintUsage(w io.Writer) {
	def := Default()
	var b strings.Builder
	b.WriteString(`Usage: collector serve [flags]

Run the collector: receive, store, aggregate and serve telemetry.

Each setting is taken from, in increasing precedence: its built-in default,
the YAML file named by --config, its FLOWSCOPE_* environment variable (empty
counts as unset), and its flag. Durations use Go syntax (30s, 15m, 168h);
sizes are whole bytes; addresses are host:port (port 0 picks a free port).

Flags:
`)
	fmt.Fprintf(&b, "  --config PATH\n        YAML configuration file\n        env %s, default none\n", ConfigEnv)
	for i := range settings {
		s := &settings[i]
		fmt.Fprintf(&b, "  --%s %s\n        %s\n        env %s, yaml %s, default %s\n",
			s.flag, s.arg, s.usage, s.env, s.key, strconv.Quote(s.display(&def)))
	}
	b.WriteString("  -h, --help\n        print this help\n")
	io.WriteString(w, b.String())
}

// loadFile overlays the settings present in the YAML file at path onto cfg.
func loadFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	if err := decodeYAML(cfg, data); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// decodeYAML overlays the settings present in the YAML document data onto
// cfg. Keys that are not settings are errors. On error cfg is unchanged.
func decodeYAML(cfg *Config, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	next := *cfg
	next.Correlation.Keys = slices.Clone(cfg.Correlation.Keys)
	next.Alerting.Notify.Alertmanager = slices.Clone(cfg.Alerting.Notify.Alertmanager)
	next.Alerting.Notify.Webhooks = slices.Clone(cfg.Alerting.Notify.Webhooks)
	next.REDMetrics.Buckets = slices.Clone(cfg.REDMetrics.Buckets)
	next.REDMetrics.Quantiles = slices.Clone(cfg.REDMetrics.Quantiles)
	if err := dec.Decode(&next); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: nothing to overlay
		}
		return explainYAML(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return fmt.Errorf("line %d: a second YAML document; the file must hold one", extra.Line)
	}
	// An empty list ([]) and no list mean the same: no receivers, no
	// extra hosts or origins.
	if len(next.Alerting.Notify.Alertmanager) == 0 {
		next.Alerting.Notify.Alertmanager = nil
	}
	if len(next.Alerting.Notify.Webhooks) == 0 {
		next.Alerting.Notify.Webhooks = nil
	}
	if len(next.Security.AllowedHosts) == 0 {
		next.Security.AllowedHosts = nil
	}
	if len(next.Security.CORSAllowedOrigins) == 0 {
		next.Security.CORSAllowedOrigins = nil
	}
	*cfg = next
	return nil
}

// explainYAML turns an error of yaml.v3's decoder into one that names the
// offending key by its full dotted path, by walking the document against
// Config. It returns decodeErr itself when the walk finds nothing more
// precise (for example on a syntax error).
func explainYAML(data []byte, decodeErr error) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return decodeErr
	}
	var scratch Config
	if err := walkYAML(doc.Content[0], reflect.ValueOf(&scratch).Elem(), ""); err != nil {
		return err
	}
	return decodeErr
}

var durationType = reflect.TypeFor[time.Duration]()

// walkYAML decodes node into v, which is addressable, reporting the first
// unknown key or badly typed value with its line and dotted key path.
func walkYAML(node *yaml.Node, v reflect.Value, path string) error {
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if v.Kind() == reflect.Struct {
		if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
			return nil
		}
		if node.Kind != yaml.MappingNode {
			name := path
			if name == "" {
				name = "the document"
			}
			return fmt.Errorf("line %d: %s must be a mapping of keys to values, not %s", node.Line, name, describeNode(node))
		}
		t := v.Type()
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			key := joinKey(path, k.Value)
			var valid []string
			found := -1
			for f := range t.NumField() {
				tag, _, _ := strings.Cut(t.Field(f).Tag.Get("yaml"), ",")
				if tag == "-" {
					continue // never from the file
				}
				valid = append(valid, tag)
				if tag == k.Value {
					found = f
				}
			}
			if found < 0 {
				return fmt.Errorf("line %d: unknown key %q (valid keys here: %s)", k.Line, key, strings.Join(valid, ", "))
			}
			if err := walkYAML(val, v.Field(found), key); err != nil {
				return err
			}
		}
		return nil
	}
	if v.Kind() == reflect.Slice && node.Kind == yaml.SequenceNode && v.Type().Elem().Kind() != reflect.Struct {
		// Name the entry at fault.
		for i, el := range node.Content {
			if err := walkYAML(el, reflect.New(v.Type().Elem()).Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	if err := node.Decode(v.Addr().Interface()); err != nil {
		var want string
		switch {
		case v.Type() == durationType:
			want = "a duration such as 30s, 15m or 168h"
		case v.Kind() == reflect.Int64:
			want = "a whole number of bytes"
		case v.Kind() == reflect.Int:
			want = "a whole number"
		case v.Kind() == reflect.Float64:
			want = "a number"
		case v.Kind() == reflect.Slice && v.Type().Elem() == durationType:
			want = "a list of durations such as 5ms, 250ms or 2.5s"
		case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Float64:
			want = "a list of numbers"
		case v.Kind() == reflect.Slice:
			want = "a list of strings"
		default:
			want = "a string"
		}
		return fmt.Errorf("line %d: %s must be %s, not %s", node.Line, path, want, describeNode(node))
	}
	return nil
}

// describeNode names a YAML node's value for an error message.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
