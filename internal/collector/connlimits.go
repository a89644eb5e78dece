package collector

import (
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/flowscope/flowscope/internal/netlimit"
)

// Connection limits. The collector keeps a reserve of file descriptors
// (a quarter of RLIMIT_NOFILE, at least minFileReserve) for the store, the
// import spools and the API port; the rest is split evenly between the
// three ingest listeners (OTLP/gRPC, OTLP/HTTP, Zipkin). The API/UI port
// gets half of the reserve, at most maxAPIConns, so that /healthz, the
// API and the UI stay reachable when the ingest ports are flooded.
const (
	minFileReserve   = 256
	minIngestConns   = 8
	minAPIConns      = 16
	maxAPIConns      = 4096
	defaultFileLimit = 1024 // when RLIMIT_NOFILE is unknown
)

// fileLimit returns the limit of open files the connection limits derive
// from. A variable so that tests can pretend a small limit.
var fileLimit = netlimit.FileLimit

// gRPC keepalive. An idle connection (no RPC) is closed after
// grpcMaxConnectionIdle; a silent peer is pinged after grpcKeepaliveTime
// and dropped if it does not answer within grpcKeepaliveTimeout. Clients
// may ping every 10 s at most, also without an RPC (the OpenTelemetry
// SDKs' defaults pass). Variables so that tests can shorten them.
var (
	grpcMaxConnectionIdle = 5 * time.Minute
	grpcKeepaliveTime     = 2 * time.Minute
	grpcKeepaliveTimeout  = 20 * time.Second
)

// grpcKeepaliveOptions returns the keepalive settings of the gRPC server.
func grpcKeepaliveOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: grpcMaxConnectionIdle,
			Time:              grpcKeepaliveTime,
			Timeout:           grpcKeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
	}
}

// connLimits returns the most open connections of each listener, by
// listener name, for a process allowed nofile open files.
func connLimits(nofile uint64) map[string]int {
	reserve := max(nofile/4, minFileReserve)
	var ingest uint64
	if nofile > reserve {
		ingest = nofile - reserve
	}
	per := max(int(min(ingest/3, 1<<30)), minIngestConns)
	return map[string]int{
		"otlp_grpc": per,
		"otlp_http": per,
		"zipkin":    per,
		"http":      max(minAPIConns, int(min(reserve/2, maxAPIConns))),
	}
}

// processConnLimits returns the connection limits of this process.
func processConnLimits(logger *slog.Logger) map[string]int {
	n, err := fileLimit()
	if err != nil || n == 0 {
		logger.Warn("limit of open files unknown, connection limits assume the default", "files", defaultFileLimit, "err", err)
		n = defaultFileLimit
	}
	limits := connLimits(n)
	logger.Info("connection limits", "open_files", n, "otlp_grpc", limits["otlp_grpc"], "otlp_http", limits["otlp_http"],
		"zipkin", limits["zipkin"], "http", limits["http"])
	return limits
}

// limitListener wraps the listener called name in its connection limit
// and registers its self-metrics with reg.
func limitListener(name string, l net.Listener, limits map[string]int, reg prometheus.Registerer) net.Listener {
	ll := netlimit.NewListener(l, limits[name])
	labels := prometheus.Labels{"listener": name}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_listener_open_connections", ConstLabels: labels,
			Help: "Connections the listener holds open.",
		}, func() float64 { return float64(ll.Open()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_listener_max_connections", ConstLabels: labels,
			Help: "Most connections the listener holds open; further ones wait in the listen backlog.",
		}, func() float64 { return float64(ll.Limit()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "flowscope_listener_limit_waits_total", ConstLabels: labels,
			Help: "Times the listener reached its connection limit and waited for a connection to close before accepting.",
		}, func() float64 { return float64(ll.Waits()) }),
	)
	return ll
}

// spoolDir is the directory of the import spools: tmp in the data
// directory (locked by the store, so no other collector cleans it).
func spoolDir(dataDir string) string { return filepath.Join(dataDir, "tmp") }
