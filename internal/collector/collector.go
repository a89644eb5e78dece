// Package collector wires the receivers, the store, the query service and the
// web server into one running collector.
//
// Start order: the store opens first (recovering anything committed after its
// last checkpoint), then every listener binds (so a busy port fails fast),
// then the servers start. Shutdown runs in reverse: receivers stop accepting
// and finish in-flight requests, then the store commits what is queued,
// persists its index and closes the file.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/importer"
	"github.com/flowscope/flowscope/ingest/otlpgrpc"
	"github.com/flowscope/flowscope/ingest/otlphttp"
	"github.com/flowscope/flowscope/ingest/zipkin"
	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/query"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/web"
)

// Collector is a running collector.
type Collector struct {
	cfg      config.Config
	logger   *slog.Logger
	DB       *store.DB
	Registry *prometheus.Registry

	grpcServer *grpc.Server
	otlpHTTP   *http.Server
	zipkin     *http.Server
	api        *http.Server
	listeners  map[string]net.Listener

	errc     chan error
	stopOnce sync.Once
	stopErr  error
}

// Addrs are the bound listen addresses (useful with port 0).
type Addrs struct {
	OTLPGRPC string
	OTLPHTTP string
	Zipkin   string
	HTTP     string
}

// OpenStore opens the store of cfg.DataDir with the settings of cfg,
// registering its self-metrics with reg (nil: none).
func OpenStore(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (*store.DB, error) {
	db, err := store.Open(cfg.DataDir, store.Options{
		Retention:       cfg.Store.Retention,
		QueueBytes:      cfg.Store.QueueBytes,
		CorrelationKeys: cfg.Correlation.Keys,
		Logger:          logger,
		Registerer:      reg,
		Aggregation: aggregate.Options{
			PairWait:          cfg.Aggregation.EdgeWait,
			SignificantDigits: cfg.Aggregation.SignificantDigits,
			MaxValue:          cfg.Aggregation.MaxLatency,
			MaxPending:        cfg.Aggregation.MaxPending,
		},
		DisableAggregation: !cfg.Aggregation.Enabled,
		RollupRetention:    [3]time.Duration{cfg.Aggregation.Retention10s, cfg.Aggregation.Retention1m, cfg.Aggregation.Retention1h},
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return db, nil
}

// Start opens the store, binds every listener and starts serving.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Collector, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	db, err := OpenStore(cfg, logger, reg)
	if err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, logger: logger, DB: db, Registry: reg, listeners: map[string]net.Listener{}, errc: make(chan error, 4)}
	fail := func(err error) (*Collector, error) {
		for _, l := range c.listeners {
			l.Close()
		}
		db.Close()
		return nil, err
	}
	for name, addr := range map[string]string{"otlp_grpc": cfg.Receivers.OTLPGRPCAddr, "otlp_http": cfg.Receivers.OTLPHTTPAddr, "zipkin": cfg.Receivers.ZipkinAddr, "http": cfg.HTTPAddr} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("listen %s on %s: %w", name, addr, err))
		}
		c.listeners[name] = l
	}

	consumer := importer.StoreSink(db) // the receivers' consumer too
	counts := ingest.NewRequestMetrics(reg)
	c.grpcServer = grpc.NewServer(
		grpc.ForceServerCodecV2(otlpgrpc.Codec()),
		grpc.MaxRecvMsgSize(int(cfg.Receivers.MaxRequestBytes)),
	)
	otlpgrpc.Register(c.grpcServer, consumer, consumer, counts)
	svc := query.NewService(db, query.ServiceOptions{Logger: logger})
	query.RegisterGRPC(c.grpcServer, svc)

	c.otlpHTTP = &http.Server{
		Handler: otlphttp.NewHandler(otlphttp.Options{
			Traces: consumer, Metrics: consumer, MaxBodyBytes: cfg.Receivers.MaxRequestBytes,
			Logger: logger, RequestMetrics: counts,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	c.zipkin = &http.Server{
		Handler: zipkin.NewHandler(zipkin.HandlerOptions{
			Traces: consumer, MaxBodyBytes: cfg.Receivers.MaxRequestBytes,
			Logger: logger, RequestMetrics: counts,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	gw, err := query.NewGatewayHandler(ctx, svc)
	if err != nil {
		return fail(fmt.Errorf("query gateway: %w", err))
	}
	c.api = &http.Server{
		Handler: web.NewHandler(web.Options{API: gw, Gatherer: reg, DashboardsDir: cfg.DashboardsDir,
			Import: newImportHandler(db, cfg.MaxImportBytes, logger), Ready: db.Ready}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { c.errc <- serveErr("otlp grpc", c.grpcServer.Serve(c.listeners["otlp_grpc"])) }()
	go func() { c.errc <- serveErr("otlp http", c.otlpHTTP.Serve(c.listeners["otlp_http"])) }()
	go func() { c.errc <- serveErr("zipkin", c.zipkin.Serve(c.listeners["zipkin"])) }()
	go func() { c.errc <- serveErr("http", c.api.Serve(c.listeners["http"])) }()
	a := c.Addrs()
	logger.Info("collector started", "data_dir", cfg.DataDir, "otlp_grpc", a.OTLPGRPC, "otlp_http", a.OTLPHTTP, "zipkin", a.Zipkin, "http", a.HTTP)
	return c, nil
}

func serveErr(name string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("%s server: %w", name, err)
}

// Addrs returns the bound addresses.
func (c *Collector) Addrs() Addrs {
	return Addrs{
		OTLPGRPC: c.listeners["otlp_grpc"].Addr().String(),
		OTLPHTTP: c.listeners["otlp_http"].Addr().String(),
		Zipkin:   c.listeners["zipkin"].Addr().String(),
		HTTP:     c.listeners["http"].Addr().String(),
	}
}

// Err returns a channel that receives a server's failure.
func (c *Collector) Err() <-chan error { return c.errc }

// Shutdown stops the receivers (letting in-flight requests finish until ctx
// ends), then closes the store, which commits everything acknowledged or
// queued. It is safe to call twice.
func (c *Collector) Shutdown(ctx context.Context) error {
	c.stopOnce.Do(func() {
		var errs []error
		done := make(chan struct{})
		go func() { c.grpcServer.GracefulStop(); close(done) }()
		if err := c.otlpHTTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop otlp http: %w", err))
		}
		if err := c.zipkin.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop zipkin: %w", err))
		}
		select {
		case <-done:
		case <-ctx.Done():
			c.grpcServer.Stop()
		}
		if err := c.DB.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
		if err := c.api.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http: %w", err))
		}
		c.stopErr = errors.Join(errs...)
		c.logger.Info("collector stopped")
	})
	return c.stopErr
}

// Run starts every component described by cfg and blocks until ctx is
// cancelled or a component fails; it then shuts everything down gracefully,
// committing everything already acknowledged.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	c, err := Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "reason", context.Cause(ctx))
	case runErr = <-c.errc:
		logger.Error("server failed, shutting down", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(runErr, c.Shutdown(sctx))
}
