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
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/flowscope/flowscope/ingest/importer/importhttp"
	"github.com/flowscope/flowscope/ingest/storesink"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/alerting"
	"github.com/flowscope/flowscope/alerting/notify"
	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/otlpgrpc"
	"github.com/flowscope/flowscope/ingest/otlphttp"
	"github.com/flowscope/flowscope/ingest/zipkin"
	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/membudget"
	"github.com/flowscope/flowscope/policies/monitor"
	"github.com/flowscope/flowscope/query"
	"github.com/flowscope/flowscope/query/fanout"
	"github.com/flowscope/flowscope/query/jaegerapi"
	"github.com/flowscope/flowscope/query/promexport"
	"github.com/flowscope/flowscope/query/zipkinapi"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics"
	"github.com/flowscope/flowscope/web"
)

// Collector is a running collector.
type Collector struct {
	cfg    config.Config
	logger *slog.Logger
	// DB is the process's own store: a node's data, or the front end's
	// alert states, synthetic runs and architectures.
	DB *store.DB
	// reader answers the queries: DB on a node, the merged view of the
	// peers on a query front end.
	reader query.Store
	// peers is the front end's peer set; nil on a node.
	peers *fanout.PeerSet
	// stopPeers ends the peer refresh; peersDone closes when it has.
	stopPeers context.CancelFunc
	peersDone chan struct{}
	Registry  *prometheus.Registry
	// Budget is the memory budget (memory_budget) shared by the receivers
	// and the store.
	Budget *membudget.Budget

	// Alerts evaluates the alert rules.
	Alerts *alerting.Engine
	// guard holds the TLS certificate, the tokens and the HTTP policies.
	guard *guard
	// Prober runs the synthetic checks; nil without --synthetics.
	Prober   *synthetics.Prober
	notifier *notify.Notifier
	// Policies runs the flow policies; nil without --policies.
	Policies *monitor.Runtime
	// stopPolicies ends their background evaluation; policiesDone closes
	// when it has.
	stopPolicies context.CancelFunc
	policiesDone chan struct{}
	// stopAlerts ends the evaluation loop; alertsDone closes when it has.
	stopAlerts context.CancelFunc
	alertsDone chan struct{}

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
// registering its self-metrics with reg (nil: none). The store has a
// memory budget of its own of cfg.MemoryBudget bytes.
func OpenStore(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (*store.DB, error) {
	return openStore(cfg, logger, reg, newBudget(cfg))
}

// newBudget returns the memory budget of cfg (nil, unlimited, when
// cfg.MemoryBudget is not positive: a Config that was never validated).
func newBudget(cfg config.Config) *membudget.Budget {
	if cfg.MemoryBudget <= 0 {
		return nil
	}
	return membudget.New(cfg.MemoryBudget)
}

// registerBudget exposes b's size, use and refusals as self-metrics.
func registerBudget(reg prometheus.Registerer, b *membudget.Budget) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_memory_budget_bytes",
			Help: "Size of the memory budget for client data in flight (memory_budget).",
		}, func() float64 { return float64(b.Limit()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_memory_budget_used_bytes",
			Help: "Bytes of the memory budget reserved now: request bodies, the commit queue and the aggregation backlog.",
		}, func() float64 { return float64(b.Used()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "flowscope_memory_budget_refused_total",
			Help: "Reservations the memory budget refused; each refused a request with a retry hint.",
		}, func() float64 { return float64(b.Refused()) }),
	)
}

// openStore is OpenStore with the process's memory budget.
func openStore(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer, budget *membudget.Budget) (*store.DB, error) {
	opts := storeOptions(cfg)
	opts.Budget, opts.Logger, opts.Registerer = budget, logger, reg
	db, err := store.Open(cfg.DataDir, opts)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return db, nil
}

// storeOptions maps the configuration onto the store's options.
func storeOptions(cfg config.Config) store.Options {
	return store.Options{
		Retention:       cfg.Store.Retention,
		QueueBytes:      cfg.Store.QueueBytes,
		SyncFreelist:    cfg.Store.SyncFreelist,
		CorrelationKeys: cfg.Correlation.Keys,
		Aggregation: aggregate.Options{
			PairWait:          cfg.Aggregation.EdgeWait,
			SignificantDigits: cfg.Aggregation.SignificantDigits,
			MaxValue:          cfg.Aggregation.MaxLatency,
			MaxPending:        cfg.Aggregation.MaxPending,
		},
		DisableAggregation: !cfg.Aggregation.Enabled,
		RollupRetention:    [3]time.Duration{cfg.Aggregation.Retention10s, cfg.Aggregation.Retention1m, cfg.Aggregation.Retention1h},
		SyntheticRetention: cfg.Synthetics.Retention,
	}
}

// Start opens the store, binds every listener and starts serving: a
// node, which ingests, stores and answers queries and the peer API.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Collector, error) {
	return start(ctx, cfg, logger, false)
}

// StartQuery starts a query front end (`collector query`): the query API,
// the UI and the compatibility APIs answered from the merged view of the
// peers cfg.Query names; alert rules, synthetic checks and flow policies
// run on that view. Its own store (cfg.DataDir) keeps only alert states,
// synthetic runs and architectures. It binds no OTLP/HTTP receiver; the
// OTLP/gRPC port serves the gRPC QueryService only and the Zipkin port
// Zipkin's query API only.
func StartQuery(ctx context.Context, cfg config.Config, logger *slog.Logger) (*Collector, error) {
	return start(ctx, cfg, logger, true)
}

func start(ctx context.Context, cfg config.Config, logger *slog.Logger, frontEnd bool) (*Collector, error) {
	started := time.Now()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	node := nodeName(cfg)
	registerNodeInfo(reg, node, frontEnd)
	budget := newBudget(cfg)
	registerBudget(reg, budget)
	db, err := openStore(cfg, logger, reg, budget)
	if err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, logger: logger, DB: db, reader: db, Registry: reg, Budget: budget, listeners: map[string]net.Listener{}, errc: make(chan error, 4)}
	fail := func(err error) (*Collector, error) {
		for _, l := range c.listeners {
			l.Close()
		}
		c.stopProber(context.Background())
		c.stopAlerting(context.Background())
		c.stopPeerRefresh()
		db.Close()
		return nil, err
	}
	if frontEnd {
		if err := c.startPeers(ctx, cfg, reg); err != nil {
			return fail(err)
		}
	}
	// The store holds the data directory's lock: the spools left there
	// are a dead collector's.
	if err := importhttp.CleanSpools(spoolDir(cfg.DataDir), started, logger); err != nil {
		return fail(err)
	}
	g, err := newGuard(cfg, logger, reg)
	if err != nil {
		return fail(err)
	}
	c.guard = g
	limits := processConnLimits(logger)
	addrs := map[string]string{"otlp_grpc": cfg.Receivers.OTLPGRPCAddr, "otlp_http": cfg.Receivers.OTLPHTTPAddr, "zipkin": cfg.Receivers.ZipkinAddr, "http": cfg.HTTPAddr}
	if frontEnd {
		delete(addrs, "otlp_http")
	}
	for name, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("listen %s on %s: %w", name, addr, err))
		}
		c.listeners[name] = limitListener(name, l, limits, reg)
	}

	g.checkExposure(c.listeners)
	consumer := storesink.New(db) // the receivers' consumer too
	counts := ingest.NewRequestMetrics(reg)
	grpcOpts := append(grpcKeepaliveOptions(),
		grpc.ForceServerCodecV2(otlpgrpc.Codec()),
		grpc.MaxRecvMsgSize(int(cfg.Receivers.MaxRequestBytes)),
		// grpc-go reads a whole message before the handler reserves it:
		// refuse new export streams while the budget is full.
		grpc.InTapHandle(otlpgrpc.OverloadTap(budget)),
	)
	if frontEnd {
		grpcOpts = append(grpcOpts, grpc.ChainUnaryInterceptor(fanout.UnaryInterceptor))
	}
	c.grpcServer = grpc.NewServer(append(grpcOpts, g.grpcOptions()...)...)
	if !frontEnd {
		otlpgrpc.RegisterOptions(c.grpcServer, otlpgrpc.Options{Traces: consumer, Metrics: consumer, RequestMetrics: counts, Budget: budget})
	}
	if cfg.Alerting.ExternalURL == "" {
		// Links in notifications name the port actually bound (port 0).
		bound := cfg
		bound.HTTPAddr = c.listeners["http"].Addr().String()
		cfg.Alerting.ExternalURL = bound.ExternalURL()
	}
	if err := c.startProber(cfg, reg); err != nil {
		return fail(err)
	}
	if err := c.startPolicies(cfg, reg); err != nil {
		return fail(err)
	}
	if err := c.startAlerting(cfg, reg); err != nil {
		return fail(err)
	}
	svcOpts := query.ServiceOptions{Logger: logger, Alerting: c.Alerts, SyntheticRuns: db}
	if c.Policies != nil {
		svcOpts.Policies = c.Policies
	}
	if c.Prober != nil {
		svcOpts.Synthetics = proberStatus{c.Prober}
	}
	svc := query.NewService(c.reader, svcOpts)
	query.RegisterGRPC(c.grpcServer, svc)
	// markPartial marks a front end's answers that miss a peer.
	markPartial := func(h http.Handler) http.Handler {
		if frontEnd {
			return fanout.Middleware(h)
		}
		return h
	}

	c.otlpHTTP = &http.Server{} // never served by a front end
	if !frontEnd {
		c.otlpHTTP = &http.Server{
			Handler: g.http("otlp_http", c.listeners["otlp_http"], otlphttp.NewHandler(otlphttp.Options{
				Traces: consumer, Metrics: consumer, MaxBodyBytes: cfg.Receivers.MaxRequestBytes,
				Logger: logger, RequestMetrics: counts, Budget: budget,
			}), ingestScope),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			IdleTimeout:       2 * time.Minute,
		}
	}
	var zipkinIngest http.Handler = zipkin.NewHandler(zipkin.HandlerOptions{
		Traces: consumer, MaxBodyBytes: cfg.Receivers.MaxRequestBytes,
		Logger: logger, RequestMetrics: counts, Budget: budget,
	})
	if frontEnd {
		zipkinIngest = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "this is a Flowscope query front end: send spans to the OpenTelemetry Collector in front of the nodes", http.StatusMethodNotAllowed)
		})
	}
	c.zipkin = &http.Server{
		Handler: g.http("zipkin", c.listeners["zipkin"], zipkinPort(zipkinIngest,
			markPartial(zipkinapi.NewHandler(zipkinapi.Options{Store: c.reader, Logger: logger}))), zipkinScope),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	gw, err := query.NewGatewayHandler(ctx, svc)
	if err != nil {
		return fail(fmt.Errorf("query gateway: %w", err))
	}
	webOpts := web.Options{API: gw, Gatherer: reg, DashboardsDir: cfg.DashboardsDir,
		Import: importhttp.NewHandler(importhttp.Options{Sink: consumer, MaxBytes: cfg.MaxImportBytes, SpoolDir: spoolDir(cfg.DataDir), Logger: logger}), Ready: db.Ready,
		Security: g.statusHandler(),
		Jaeger:   jaegerapi.NewHandler(jaegerapi.Options{Store: c.reader, Logger: logger}),
		Peer:     fanout.NewPeerHandler(fanout.PeerOptions{Source: db, Geometry: db.Geometry(), Node: node, Logger: logger}),
		PrometheusMetrics: promexport.NewHandler(promexport.Options{Store: c.reader, Logger: logger,
			Buckets: cfg.REDMetrics.Buckets, Quantiles: cfg.REDMetrics.Quantiles,
			QuantileWindow: cfg.REDMetrics.QuantileWindow, MaxSeries: cfg.REDMetrics.MaxSeries,
			// A window settles once a late server half can no longer
			// move its calls (edge_wait) and the flush is long done.
			Settle: max(5*time.Minute, cfg.Aggregation.EdgeWait+2*time.Minute)}),
	}
	if frontEnd {
		webOpts.Import = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "this is a Flowscope query front end: import files into a node", http.StatusMethodNotAllowed)
		})
		webOpts.Peer = nil
	}
	c.api = &http.Server{
		Handler:           g.http("http", c.listeners["http"], markPartial(web.NewHandler(webOpts)), apiScope),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	alertCtx, stopAlerts := context.WithCancel(context.WithoutCancel(ctx))
	c.stopAlerts, c.alertsDone = stopAlerts, make(chan struct{})
	go func() { defer close(c.alertsDone); c.Alerts.Run(alertCtx) }()
	if c.Prober != nil {
		c.Prober.Start()
	}
	c.runPolicies(ctx)
	go func() { c.errc <- serveErr("otlp grpc", c.grpcServer.Serve(c.listeners["otlp_grpc"])) }()
	if !frontEnd {
		go func() { c.errc <- serveErr("otlp http", c.otlpHTTP.Serve(g.listener(c.listeners["otlp_http"]))) }()
	}
	go func() { c.errc <- serveErr("zipkin", c.zipkin.Serve(g.listener(c.listeners["zipkin"]))) }()
	go func() { c.errc <- serveErr("http", c.api.Serve(g.listener(c.listeners["http"]))) }()
	a := c.Addrs()
	if frontEnd {
		logger.Info("query front end started", "node", node, "data_dir", cfg.DataDir, "peers", len(c.peers.Current()), "grpc", a.OTLPGRPC, "zipkin", a.Zipkin, "http", a.HTTP)
		return c, nil
	}
	logger.Info("collector started", "node", node, "data_dir", cfg.DataDir, "otlp_grpc", a.OTLPGRPC, "otlp_http", a.OTLPHTTP, "zipkin", a.Zipkin, "http", a.HTTP)
	return c, nil
}

// zipkinPort routes the Zipkin port: spans are sent with POST (ingest),
// and every other method reads Zipkin's query API v2 (query).
func zipkinPort(ingest, query http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			ingest.ServeHTTP(w, r)
			return
		}
		query.ServeHTTP(w, r)
	})
}

func serveErr(name string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("%s server: %w", name, err)
}

// Addrs returns the bound addresses.
// A front end has no OTLP/HTTP address.
func (c *Collector) Addrs() Addrs {
	a := Addrs{
		OTLPGRPC: c.listeners["otlp_grpc"].Addr().String(),
		Zipkin:   c.listeners["zipkin"].Addr().String(),
		HTTP:     c.listeners["http"].Addr().String(),
	}
	if l := c.listeners["otlp_http"]; l != nil {
		a.OTLPHTTP = l.Addr().String()
	}
	return a
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
		c.stopProber(ctx)
		c.stopAlerting(ctx)
		c.stopPolicyEvaluation()
		c.stopPeerRefresh()
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

// startAlerting creates the notifier and the rule engine, loads the rules
// and restores the alert states. Evaluation starts with the servers.
func (c *Collector) startAlerting(cfg config.Config, reg prometheus.Registerer) error {
	var eng *alerting.Engine
	n := cfg.Alerting.Notify
	if len(n.Alertmanager) > 0 || len(n.Webhooks) > 0 {
		hooks := make([]notify.Webhook, 0, len(n.Webhooks))
		for _, w := range n.Webhooks {
			hooks = append(hooks, notify.Webhook{URL: w.URL, Headers: w.Headers})
		}
		notifier, err := notify.New(notify.Options{
			Alertmanagers: n.Alertmanager, Webhooks: hooks, ExternalURL: cfg.ExternalURL(),
			OnDelivery: func(d notify.Delivery) { eng.OnDelivery(d) },
			Logger:     c.logger, Registerer: reg,
		})
		if err != nil {
			return fmt.Errorf("alert notifications: %w", err)
		}
		c.notifier = notifier
	}
	opts := alerting.Options{
		RulesPath: cfg.Alerting.Rules, Interval: cfg.Alerting.Interval, ExternalURL: cfg.ExternalURL(),
		Webhooks: len(n.Webhooks), Logger: c.logger, Metrics: alerting.NewMetrics(reg),
		Extra: alerting.Signals{Synthetic: alerting.SyntheticSignals{Runs: c.DB}},
	}
	if c.Policies != nil {
		opts.Extra = alerting.Signals{Synthetic: alerting.SyntheticSignals{Runs: c.DB}, Policy: alerting.PolicySignals{Source: c.Policies}}
	}
	if c.notifier != nil {
		opts.Notifier = c.notifier
	}
	var src alerting.Source = c.DB
	if c.peers != nil {
		// Rules are evaluated on the merged view of every node, and not
		// at all while a node is missing: a partial view would resolve
		// (or fire) alerts on the node's absence.
		src = strictSource{c.reader}
	}
	eng = alerting.New(src, c.DB, opts)
	if err := eng.Start(); err != nil {
		return err
	}
	c.Alerts = eng
	return nil
}

// stopAlerting ends rule evaluation and lets the notifier deliver what it
// holds until ctx ends.
func (c *Collector) stopAlerting(ctx context.Context) {
	if c.stopAlerts != nil {
		c.stopAlerts()
		<-c.alertsDone
		c.stopAlerts = nil
	}
	if c.notifier != nil {
		if err := c.notifier.Close(ctx); err != nil {
			c.logger.Warn("alert notifications not all delivered at shutdown", "err", err)
		}
		c.notifier = nil
	}
	if c.Alerts != nil {
		c.Alerts.Flush()
	}
}

// ReloadRules rereads the alert rules (what SIGHUP does). A rule set that
// does not load keeps the rules in use and the error says why.
func (c *Collector) ReloadRules(ctx context.Context) error {
	return c.Alerts.Reload(ctx)
}

// MemoryLimitHeadroom is what the Go memory limit of the collector process
// allows beyond memory_budget + 25 %: the memory bounded by other settings
// (spans waiting for their other half, the index tail, compression state)
// at small budgets.
const MemoryLimitHeadroom = 64 << 20

// setMemoryLimit sets the Go runtime's soft memory limit of the process to
// cfg.MemoryBudget × 1.25 + MemoryLimitHeadroom, unless GOMEMLIMIT is set:
// without it the garbage collector lets the heap grow to twice what is
// live (GOGC=100), and big requests make that much garbage quickly.
func setMemoryLimit(cfg config.Config, logger *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || cfg.MemoryBudget <= 0 {
		return
	}
	limit := cfg.MemoryBudget + cfg.MemoryBudget/4 + MemoryLimitHeadroom
	debug.SetMemoryLimit(limit)
	logger.Info("go memory limit", "bytes", limit, "memory_budget", cfg.MemoryBudget)
}

// Run starts every component described by cfg and blocks until ctx is
// cancelled or a component fails; it then shuts everything down gracefully,
// committing everything already acknowledged.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return run(ctx, cfg, logger, Start)
}

// RunQuery is Run for a query front end (StartQuery).
func RunQuery(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return run(ctx, cfg, logger, StartQuery)
}

func run(ctx context.Context, cfg config.Config, logger *slog.Logger, start func(context.Context, config.Config, *slog.Logger) (*Collector, error)) error {
	setMemoryLimit(cfg, logger)
	// SIGHUP reloads the rules and the synthetic checks; registered first, so that one arriving
	// while the store opens does not end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	c, err := start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	var runErr error
wait:
	for {
		select {
		case <-hup:
			c.reloadAll(ctx)
		case <-ctx.Done():
			logger.Info("shutting down", "reason", context.Cause(ctx))
			break wait
		case runErr = <-c.errc:
			logger.Error("server failed, shutting down", "err", runErr)
			break wait
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(runErr, c.Shutdown(sctx))
}
