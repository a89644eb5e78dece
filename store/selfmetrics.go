package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics are the store's self-metrics (flowscope_store_*).
type storeMetrics struct {
	reg                prometheus.Registerer
	collectors         []prometheus.Collector
	spansAccepted      prometheus.Counter
	spansRejected      prometheus.Counter
	spansRefused       prometheus.Counter
	pointsAccepted     prometheus.Counter
	pointsRejected     prometheus.Counter
	pointsRefused      prometheus.Counter
	batchRequests      prometheus.Histogram
	batchBytes         prometheus.Histogram
	batchSpans         prometheus.Histogram
	commitDuration     prometheus.Histogram
	checkpointDuration prometheus.Histogram
	retentionDeleted   *prometheus.CounterVec
	rollupRecords      *prometheus.CounterVec
	rollupBytes        *prometheus.CounterVec
	flushDuration      prometheus.Histogram
	checkpointFailures prometheus.Counter
	commitFailures     *prometheus.CounterVec
	aggWaitTimeouts    prometheus.Counter
	replaySeconds      prometheus.Gauge
	reindexSeconds     prometheus.Gauge
	mappedResident     prometheus.Gauge
	mappedDrops        prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer, db *DB) *storeMetrics {
	items := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowscope_store_items_total",
		Help: "Spans and metric data points offered to the store, by signal and outcome: accepted (committed), rejected (failed validation), refused (overload or shutdown).",
	}, []string{"signal", "outcome"})
	m := &storeMetrics{
		reg:            reg,
		spansAccepted:  items.WithLabelValues("traces", "accepted"),
		spansRejected:  items.WithLabelValues("traces", "rejected"),
		spansRefused:   items.WithLabelValues("traces", "refused"),
		pointsAccepted: items.WithLabelValues("metrics", "accepted"),
		pointsRejected: items.WithLabelValues("metrics", "rejected"),
		pointsRefused:  items.WithLabelValues("metrics", "refused"),
		batchRequests: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowscope_store_commit_batch_requests",
			Help:    "Export requests committed per bbolt transaction (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowscope_store_commit_batch_bytes",
			Help:    "Compressed bytes written per commit.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		batchSpans: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowscope_store_commit_batch_spans",
			Help:    "Spans committed per bbolt transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 12),
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowscope_store_commit_duration_seconds",
			Help:    "Time to write and fsync one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		checkpointDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowscope_store_checkpoint_duration_seconds",
			Help:    "Time to persist the in-memory index of recent chunks as a segment.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		retentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_store_retention_deleted_total",
			Help: "Records deleted by retention, by kind (span_chunks, metric_chunks, segments, alert_events, synthetic_runs).",
		}, []string{"kind"}),
	}
	m.rollupRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowscope_rollup_records_written_total",
		Help: "Rollup window records written, by tier (10s deltas, 1m and 1h compactions).",
	}, []string{"tier"})
	m.rollupBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowscope_rollup_bytes_written_total",
		Help: "Compressed bytes of rollup window records written, by tier.",
	}, []string{"tier"})
	m.flushDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flowscope_rollup_flush_duration_seconds",
		Help:    "Time to persist the in-memory rollup deltas and the aggregation checkpoint.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	m.checkpointFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowscope_store_checkpoint_failures_total",
		Help: "Index checkpoints that failed (retried at the next one; the segment stays in memory and is re-indexed from the chunks after a restart).",
	})
	m.commitFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowscope_store_commit_failures_total",
		Help: "Export requests whose commit failed, by reason: disk_full, too_large (refused alone), io (other write errors).",
	}, []string{"reason"})
	m.aggWaitTimeouts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowscope_store_aggregation_wait_timeouts_total",
		Help: "Rollup queries (flow graph, latency) that stopped waiting for acknowledged spans to be aggregated after store.Options.AggregationWait and were served from the rollups as they were: their answers may miss spans acknowledged just before.",
	})
	m.replaySeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowscope_store_aggregator_replay_seconds",
		Help: "How long the aggregator took after the last start to load its state file (after a clean stop) or replay the chunks (after a crash); rollup queries answer 503 \"warming up\" until it is done, after waiting store.Options.AggregationWait; 0 while it runs.",
	})
	m.reindexSeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowscope_store_reindex_seconds",
		Help: "How long the store took after the last start to re-index the chunks committed after the last checkpoint (after a crash: at most store.checkpoint_interval of them); searches and trace reads answer 503 \"warming up\" until it is done, after waiting store.Options.AggregationWait; 0 while it runs.",
	})
	m.mappedResident, m.mappedDrops = mappedMetrics()
	m.collectors = []prometheus.Collector{items, m.checkpointFailures, m.commitFailures, m.aggWaitTimeouts, m.replaySeconds, m.reindexSeconds,
		m.mappedResident, m.mappedDrops,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_store_disk_full",
			Help: "1 while the last write to the store failed for lack of disk space (ingest answers 503 and /readyz fails), else 0.",
		}, func() float64 {
			if db.diskFull.Load() {
				return 1
			}
			return 0
		}), m.rollupRecords, m.rollupBytes, m.flushDuration, aggCollector{db}, m.batchRequests, m.batchBytes, m.batchSpans,
		m.commitDuration, m.checkpointDuration, m.retentionDeleted,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_store_size_bytes",
			Help: "Size of the bbolt file on disk.",
		}, func() float64 { return float64(db.SizeBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_store_queue_bytes",
			Help: "Bytes of export requests waiting for commit.",
		}, func() float64 { return float64(db.queuedBytes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_store_unindexed_spans",
			Help: "Spans committed since the last checkpoint (indexed in memory only).",
		}, func() float64 { return float64(db.tail.spanCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_store_segments",
			Help: "Persisted index segments.",
		}, func() float64 { db.catMu.RLock(); defer db.catMu.RUnlock(); return float64(len(db.segs)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flowscope_store_trace_index_runs",
			Help: "Persisted trace-ID index runs (fewer is faster lookup).",
		}, func() float64 { db.catMu.RLock(); defer db.catMu.RUnlock(); return float64(len(db.runs)) }),
	}
	if reg != nil {
		for _, c := range m.collectors {
			if err := reg.Register(c); err != nil {
				db.logger.Warn("register store metric", "err", err)
			}
		}
	}
	return m
}

func (m *storeMetrics) observeCommit(requests, bytes, spans int, d time.Duration) {
	m.batchRequests.Observe(float64(requests))
	m.batchBytes.Observe(float64(bytes))
	m.batchSpans.Observe(float64(spans))
	m.commitDuration.Observe(d.Seconds())
}

func (m *storeMetrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// aggCollector exposes the aggregator's pairing state and counters.
type aggCollector struct{ db *DB }

func aggDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("flowscope_aggregation_"+name, help, nil, nil)
}

var (
	descPendingClients  = aggDesc("pending_client_spans", "Client spans waiting for their server half.")
	descPendingServers  = aggDesc("pending_server_spans", "Server spans waiting for their parent.")
	descRemembered      = aggDesc("remembered_parent_spans", "Recent non-client spans kept as possible parents of server spans.")
	descUnpairedClients = aggDesc("unpaired_client_spans_total", "Client spans that found no server half and had no attribute naming a virtual callee.")
	descUnpairedServers = aggDesc("unpaired_server_spans_total", "Server spans whose parent never arrived.")
	descVirtualEdges    = aggDesc("virtual_edge_calls_total", "Calls recorded on edges to virtual (uninstrumented) nodes.")
	descPairedEdges     = aggDesc("paired_edge_calls_total", "Calls recorded on edges between instrumented services.")
	descEvicted         = aggDesc("evicted_pending_total", "Pending halves evicted early because the pending limit was reached.")
	descClamped         = aggDesc("clamped_durations_total", "Durations above the trackable maximum, recorded as the maximum.")
)

func (c aggCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPendingClients, descPendingServers, descRemembered, descUnpairedClients,
		descUnpairedServers, descVirtualEdges, descPairedEdges, descEvicted, descClamped} {
		ch <- d
	}
}

func (c aggCollector) Collect(ch chan<- prometheus.Metric) {
	if c.db.agg == nil {
		return
	}
	s := c.db.agg.Stats()
	g := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	k := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g(descPendingClients, s.PendingClients)
	g(descPendingServers, s.PendingServers)
	g(descRemembered, s.RememberedParents)
	k(descUnpairedClients, s.UnpairedClients)
	k(descUnpairedServers, s.UnpairedServers)
	k(descVirtualEdges, s.VirtualEdges)
	k(descPairedEdges, s.PairedEdges)
	k(descEvicted, s.Evicted)
	k(descClamped, s.Clamped)
}
