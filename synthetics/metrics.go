package synthetics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a scheduled run is skipped (flowscope_synthetic_runs_skipped_total).
const (
	skipOverlap     = "overlap"     // the check's previous run was still going
	skipConcurrency = "concurrency" // no run slot came free within the check's period
)

// metrics are the prober's self-metrics. A nil *metrics records nothing.
type metrics struct {
	runs          *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	skipped       *prometheus.CounterVec
	lag           prometheus.Histogram
	checks        prometheus.Gauge
	reloads       *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	inProgress    prometheus.Gauge
	writeFailures *prometheus.CounterVec
}

// newMetrics registers the prober's self-metrics with reg; nil reg: none.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_synthetic_runs_total", Help: "Synthetic check runs completed (the last attempt of each), by check and result.",
		}, []string{"check", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowscope_synthetic_run_duration_seconds",
			Help:    "Duration of synthetic check runs (each attempt), by check.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"check"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_synthetic_runs_skipped_total",
			Help: "Scheduled runs not made, by check and reason: overlap (the previous run was still going), concurrency (no run slot within the check's period).",
		}, []string{"check", "reason"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowscope_synthetic_schedule_lag_seconds",
			Help:    "Delay from a scheduled run's due time to its start.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		checks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowscope_synthetic_checks", Help: "Synthetic checks loaded.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_synthetic_checks_reloads_total", Help: "Synthetic check reloads (SIGHUP, POST /api/v1/synthetics:reload), by result.",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowscope_synthetic_checks_last_reload_successful",
			Help: "1 when the last reload of the synthetic checks succeeded (or none was tried), 0 when it failed and the previous checks are kept.",
		}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowscope_synthetic_runs_in_progress", Help: "Synthetic check runs in progress.",
		}),
		writeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowscope_synthetic_write_failures_total", Help: "Run results (what=run) and run traces (what=spans) that could not be stored.",
		}, []string{"what"}),
	}
	m.reloadOK.Set(1)
	reg.MustRegister(m.runs, m.duration, m.skipped, m.lag, m.checks, m.reloads, m.reloadOK, m.inProgress, m.writeFailures)
	return m
}

func (m *metrics) setChecks(n int) {
	if m != nil {
		m.checks.Set(float64(n))
	}
}

// removeCheck deletes the labelled series of a check that is gone.
func (m *metrics) removeCheck(name string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"check": name}
	m.runs.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.skipped.DeletePartialMatch(l)
}

func (m *metrics) reloaded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.reloadOK.Set(1)
	} else {
		m.reloads.WithLabelValues("failure").Inc()
		m.reloadOK.Set(0)
	}
}

func (m *metrics) skip(check, reason string) {
	if m != nil {
		m.skipped.WithLabelValues(check, reason).Inc()
	}
}

func (m *metrics) scheduleLag(d time.Duration) {
	if m != nil {
		m.lag.Observe(max(d, 0).Seconds())
	}
}

func (m *metrics) runStarted() {
	if m != nil {
		m.inProgress.Inc()
	}
}

func (m *metrics) runEnded() {
	if m != nil {
		m.inProgress.Dec()
	}
}

func (m *metrics) attempt(check string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(check).Observe(d.Seconds())
	}
}

func (m *metrics) result(check string, ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.runs.WithLabelValues(check, "success").Inc()
	} else {
		m.runs.WithLabelValues(check, "failure").Inc()
	}
}

func (m *metrics) writeFailed(what string) {
	if m != nil {
		m.writeFailures.WithLabelValues(what).Inc()
	}
}
